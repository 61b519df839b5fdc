"""Recurrent blocks: the follow-up study's one-step ConvLSTM and bioflow's unrolled BLT block.

The registered specs (:class:`ConvLSTMRecurrence`, :class:`BLTRecurrence`, in
:data:`bioflow.registry.RECURRENCES`) say where the block goes, through :meth:`Recurrence.apply`;
the Keras layers (:class:`OneStepConvLSTM2D`, :class:`BLTRecurrentBlock`) compute it.
"""
import dataclasses
from typing import Callable, Sequence

import keras
import tensorflow as tf

from bioflow.components.convolution import (
    check_method,
    check_padding,
    conv2d,
    output_size,
)
from bioflow.errors import check_choice
from bioflow.registry import RECURRENCES
from bioflow.validation import check_positive_int

#: ``BLTRecurrence.readout``: the last step's state only (the classifier sees it), or every step's.
READOUTS = ("last", "every_step")


@keras.saving.register_keras_serializable(package="bioflow")
class OneStepConvLSTM2D(keras.layers.Layer):
    """Keras ``ConvLSTM2D`` over a one-step sequence from a zero state, without the zero work.

    It owns exactly ``ConvLSTM2D``'s weights (``kernel``, ``recurrent_kernel``, ``bias``; gates
    ordered i, f, c, o), so ``set_weights`` takes a ``ConvLSTM2D``'s ``get_weights()``. With
    ``h0 = c0 = 0`` the recurrent kernel and the forget gate multiply zeros, so the layer computes
    ``o * tanh(i * tanh(conv_c(x)))`` from three of the four gate convolutions. It takes
    ``(B, H, W, C)`` images, not sequences. Large kernels use the FFT route (``method``).
    """

    def __init__(self, filters, kernel_size, strides=1, padding="same", method="auto",
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", unit_forget_bias=True, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        self.strides = int(strides) if not isinstance(strides, (tuple, list)) else int(strides[0])
        self.padding = check_padding(padding)
        self.method = check_method(method)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.unit_forget_bias = unit_forget_bias

    def build(self, input_shape):
        c, f = int(input_shape[-1]), self.filters
        self.kernel = self.add_weight(name="kernel", shape=self.kernel_size + (c, 4 * f),
                                      initializer=self.kernel_initializer)
        self.recurrent_kernel = self.add_weight(name="recurrent_kernel", shape=self.kernel_size + (f, 4 * f),
                                                initializer=self.recurrent_initializer)
        if self.unit_forget_bias:
            base = self.bias_initializer

            def bias_init(shape, dtype=None):
                return keras.ops.concatenate([base((f,), dtype=dtype), keras.ops.ones((f,), dtype=dtype),
                                              base((2 * f,), dtype=dtype)])
        else:
            bias_init = self.bias_initializer
        self.bias = self.add_weight(name="bias", shape=(4 * f,), initializer=bias_init)

    def call(self, inputs):
        f = self.filters
        # Gates i, c, o only: the forget gate multiplies the zero cell state.
        kernel = tf.concat([self.kernel[..., :f], self.kernel[..., 2 * f:]], axis=-1)
        bias = tf.concat([self.bias[:f], self.bias[2 * f:]], axis=0)
        method = self.method if inputs.shape[1] is not None and inputs.shape[2] is not None else "direct"
        z = conv2d(inputs, kernel, padding=self.padding, strides=self.strides, method=method)
        z = tf.nn.bias_add(z, tf.cast(bias, z.dtype))
        z_i, z_c, z_o = tf.split(z, 3, axis=-1)
        cell = tf.sigmoid(z_i) * tf.tanh(z_c)
        return tf.sigmoid(z_o) * tf.tanh(cell)

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        kh, kw = self.kernel_size
        return (b, output_size(h, kh, self.padding, self.strides), output_size(w, kw, self.padding, self.strides),
                self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size, strides=self.strides,
                      padding=self.padding, method=self.method,
                      kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
                      recurrent_initializer=keras.initializers.serialize(self.recurrent_initializer),
                      bias_initializer=keras.initializers.serialize(self.bias_initializer),
                      unit_forget_bias=self.unit_forget_bias)
        return config


@keras.saving.register_keras_serializable(package="bioflow")
class BLTRecurrentBlock(keras.layers.Layer):
    """A convolutional block unrolled over ``steps`` time steps (Spoerer et al. 2017, BLT).

    Area A (``filters`` maps at the input's resolution) gets the same bottom-up input at every
    step plus lateral input from its own previous state; with ``top_down``, area B (at half
    resolution, fed by A through 2×2 max pooling) sends top-down input back to A. Weights are
    shared over time and the output is area A at the last step::

        a_0 = relu(Wb x)
        a_t = relu(Wb x + Wl a_{t-1} [+ up(Wt b_{t-1})])
        b_t = relu(Vb pool(a_t) + Vl b_{t-1})

    With ``readout='every_step'`` the output is every step's area A, stacked along the batch axis
    step by step (``steps · B`` images: step 0's batch first), so that the rest of the network
    reads each step out with the same weights; :class:`StepOutputs` unstacks its predictions.
    """

    def __init__(self, filters=64, kernel_size=3, steps=4, top_down=True, readout="last", **kwargs):
        super().__init__(**kwargs)
        check_positive_int(steps, "BLTRecurrentBlock: steps", minimum=2)
        check_positive_int(filters, "BLTRecurrentBlock: filters")
        check_choice(readout, READOUTS, "BLTRecurrentBlock: readout", "readouts")
        self.filters, self.kernel_size, self.steps, self.top_down = filters, kernel_size, steps, bool(top_down)
        self.readout = readout

        def conv(name, bias=True):
            return keras.layers.Conv2D(filters, kernel_size, padding="same", use_bias=bias, name=name)

        self.bottom_up = conv("bottom_up")
        self.lateral = conv("lateral", bias=False)
        if self.top_down:
            self.pool = keras.layers.MaxPooling2D(2, padding="same", name="pool")
            self.next_bottom_up = conv("next_bottom_up")
            self.next_lateral = conv("next_lateral", bias=False)
            self.top_down_conv = conv("top_down", bias=False)

    def build(self, input_shape):
        b, h, w, _ = input_shape
        self.bottom_up.build(input_shape)
        self.lateral.build((b, h, w, self.filters))
        if self.top_down:
            half = (b, None if h is None else -(-h // 2), None if w is None else -(-w // 2), self.filters)
            self.next_bottom_up.build(half)
            self.next_lateral.build(half)
            self.top_down_conv.build(half)

    def _top_down(self, state_b, like):
        up = tf.repeat(tf.repeat(self.top_down_conv(state_b), 2, axis=1), 2, axis=2)
        return up[:, :tf.shape(like)[1], :tf.shape(like)[2], :]

    def call(self, inputs):
        drive = self.bottom_up(inputs)  # the same input at every step: computed once
        a = tf.nn.relu(drive)
        b = tf.nn.relu(self.next_bottom_up(self.pool(a))) if self.top_down else None
        states = [a]
        for _ in range(1, self.steps):
            z = drive + self.lateral(a)
            if self.top_down:
                z = z + self._top_down(b, a)
            a = tf.nn.relu(z)
            if self.top_down:
                b = tf.nn.relu(self.next_bottom_up(self.pool(a)) + self.next_lateral(b))
            states.append(a)
        return tf.concat(states, axis=0) if self.readout == "every_step" else a

    def compute_output_shape(self, input_shape):
        batch = input_shape[0]
        if self.readout == "every_step":
            batch = None if batch is None else batch * self.steps
        return (batch,) + tuple(input_shape[1:3]) + (self.filters,)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size, steps=self.steps, top_down=self.top_down,
                      readout=self.readout)
        return config


@keras.saving.register_keras_serializable(package="bioflow")
class StepOutputs(keras.layers.Layer):
    """The network's predictions of every step, unstacked: ``(steps · B, K)`` → ``(B, steps, K)``.

    It undoes :class:`BLTRecurrentBlock`'s stacking (``readout='every_step'``) at the end of the network.
    """

    def __init__(self, steps, **kwargs):
        super().__init__(**kwargs)
        check_positive_int(steps, "StepOutputs: steps", minimum=2)
        self.steps = int(steps)

    def call(self, inputs):
        per_step = tf.reshape(inputs, tf.concat([[self.steps, -1], tf.shape(inputs)[1:]], 0))
        return tf.transpose(per_step, [1, 0, 2])

    def compute_output_shape(self, input_shape):
        batch = input_shape[0]
        return (None if batch is None else batch // self.steps, self.steps) + tuple(input_shape[1:])

    def get_config(self):
        config = super().get_config()
        config.update(steps=self.steps)
        return config


@keras.saving.register_keras_serializable(package="bioflow")
class FinalStep(keras.layers.Layer):
    """The last step's predictions of :class:`StepOutputs`' ``(B, steps, K)``: the network's output."""

    def call(self, inputs):
        return inputs[:, -1]

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + tuple(input_shape[2:])


@dataclasses.dataclass(frozen=True)
class ConvStage:
    """One convolution of the front end: a filter-bank stage, or the base's own first convolution.

    ``build(x)`` applies the stage's layer; a recurrence may instead replace the stage by a layer
    with the same ``filters``, ``kernel_size``, ``strides`` and ``padding``, and keeps its ``noise``
    (the stddev of the bank's training-time noise, or None).
    """

    filters: int
    kernel_size: int
    strides: int
    padding: str
    build: Callable
    noise: float | None = None


class Recurrence:
    """Base of the recurrences: where a recurrent block goes in the front end.

    Subclasses set ``kind`` (used in model names) and override :meth:`apply`; ``replaces_first_conv``
    says whether the block takes the place of the first convolution (then a one-stage bank is
    recorded as replaced, ``convolution = kind``).
    """

    kind = "recurrence"
    replaces_first_conv = False
    #: The number of steps read out one by one (:class:`StepOutputs`), or None: one output.
    readout_steps = None

    def apply(self, x, stages: Sequence[ConvStage]):
        """The front end on ``x``: here, the ``stages`` in order (no recurrence)."""
        for stage in stages:
            x = stage.build(x)
        return x

    def get_config(self) -> dict:
        return {}


@RECURRENCES.register("convlstm")
class ConvLSTMRecurrence(Recurrence):
    """Faithful recurrence (follow-up study): a one-step ConvLSTM replaces the first convolution
    after the bottleneck (the filter bank, or the base's first conv with ``Original``), keeping
    its filters, kernel size, padding and strides. The bank's kernels are not carried over."""

    kind = "convlstm"
    replaces_first_conv = True

    def __init__(self, method: str = "auto"):
        self.method = check_method(method)

    def apply(self, x, stages):
        """A one-step ConvLSTM in place of the first stage (its noise kept after it), then the other stages."""
        first = stages[0]
        x = OneStepConvLSTM2D(first.filters, first.kernel_size, strides=first.strides, padding=first.padding,
                              method=self.method, name="recurrent_convlstm")(x)
        if first.noise:  # the study's code kept the bank's noise layer, after the ConvLSTM
            x = keras.layers.GaussianNoise(first.noise, name="recurrent_convlstm_noise")(x)
        return super().apply(x, stages[1:])

    def get_config(self):
        return dict(method=self.method)


@RECURRENCES.register("blt")
class BLTRecurrence(Recurrence):
    """bioflow's recurrence: a :class:`BLTRecurrentBlock` inserted after the (frozen) filter bank.

    ``readout='every_step'`` reads every step out through the rest of the network (shared weights):
    the model then also holds each step's predictions (``bioflow.model.step_model``), its output is
    still the last step's, and ``Fit.step_loss`` says which steps training weighs.
    """

    kind = "blt"

    def __init__(self, filters: int = 64, kernel_size: int = 3, steps: int = 4, top_down: bool = True,
                 readout: str = "last"):
        self.filters, self.kernel_size, self.steps, self.top_down = filters, kernel_size, steps, top_down
        self.readout = check_choice(readout, READOUTS, "BLTRecurrence.readout", "readouts")
        BLTRecurrentBlock(filters, kernel_size, steps, top_down, readout)  # validate now, with a clear error

    @property
    def readout_steps(self):
        return self.steps if self.readout == "every_step" else None

    def apply(self, x, stages):
        """The stages in order, then the unrolled block."""
        x = super().apply(x, stages)
        return BLTRecurrentBlock(self.filters, self.kernel_size, self.steps, self.top_down, self.readout,
                                 name="recurrent_blt")(x)

    def get_config(self):
        return dict(filters=self.filters, kernel_size=self.kernel_size, steps=self.steps, top_down=self.top_down,
                    readout=self.readout)
