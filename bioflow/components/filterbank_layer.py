"""The Keras layer that applies a fixed filter bank: conv (frozen) + bias + ReLU [+ noise]."""
import keras
import numpy as np
import tensorflow as tf

from bioflow.components.convolution import (
    check_method,
    check_padding,
    conv2d,
    output_size,
    resolve_method,
)
from bioflow.components.filterbanks import (
    FilterBank,
    bank_from_config,
    bank_to_config,
    single_stage_names,
)
from bioflow.errors import BioflowError


@keras.saving.register_keras_serializable(package="bioflow")
class FilterBankConv(keras.layers.Layer):
    """Convolution with a fixed filter bank (docs/science.md, "Filter banks").

    ``n_kernels`` filters, stride 1, a zero-initialised bias and a ReLU. The layer is frozen
    (``trainable=False``) by default, like ``use_initializer`` in the original code; pass
    ``trainable=True`` to train kernel and bias (the follow-up study's behaviour).

    Args:
        filter_bank: a single-stage bank (a registered :class:`FilterBank`, such as :class:`Gabor`)
            or its ``bank_to_config`` dict.
        method: ``'direct'`` (``tf.nn.conv2d``), ``'fft'`` or ``'auto'`` (FFT for large kernels).
        padding: ``'same'`` (default) or ``'valid'``.
        internal_noise: stddev of Gaussian noise added to the output in training only.
        seed: seed of that noise.
    """

    def __init__(self, filter_bank: FilterBank | dict, method: str = "auto", padding: str = "same",
                 internal_noise: float | None = None, seed: int | None = None, trainable: bool = False, **kwargs):
        super().__init__(trainable=trainable, **kwargs)
        if isinstance(filter_bank, dict):
            filter_bank = bank_from_config(filter_bank)
        if not isinstance(filter_bank, FilterBank):
            raise BioflowError(f"FilterBankConv needs a single-stage bank ({single_stage_names()}), got "
                               f"{filter_bank!r}. A multi-stage bank is applied as one layer per stage (see "
                               "bioflow.model).")
        if internal_noise is not None and not internal_noise >= 0:
            raise BioflowError(f"internal_noise must be None or >= 0, got {internal_noise!r}.")
        self.filter_bank = filter_bank
        self.method = check_method(method)
        self.padding = check_padding(padding)
        self.internal_noise = internal_noise
        self.seed = seed
        self.n_kernels = filter_bank.n_kernels
        self.ksize = filter_bank.ksize
        self._noise_seed = keras.random.SeedGenerator(seed) if internal_noise else None

    def build(self, input_shape):
        in_channels = input_shape[-1]
        if in_channels is None:
            raise BioflowError(f"{self.name}: the number of input channels must be known.")
        for size in input_shape[1:3]:
            if self.padding == "valid" and size is not None and size < self.ksize:
                raise BioflowError(f"{self.name}: input of {input_shape[1]}x{input_shape[2]} is too small for "
                                   f"{self.ksize}x{self.ksize} kernels with 'valid' padding.")
        values = self.filter_bank.kernels(int(in_channels)).astype(np.float32)
        self.kernel = self.add_weight(name="kernel", shape=values.shape,
                                      initializer=keras.initializers.Constant(values))
        self.bias = self.add_weight(name="bias", shape=(self.n_kernels,), initializer="zeros")

    @property
    def resolved_method(self):
        """The method actually used (``direct`` or ``fft``)."""
        return resolve_method(self.method, (self.ksize, self.ksize))

    def call(self, inputs, training=False):
        method = self.method
        if method == "fft" or (method == "auto" and self.resolved_method == "fft"):
            if inputs.shape[1] is None or inputs.shape[2] is None:
                method = "direct"  # the FFT route needs static spatial sizes
        y = conv2d(inputs, self.kernel, padding=self.padding, method=method)
        y = tf.nn.relu(tf.nn.bias_add(y, tf.cast(self.bias, y.dtype)))
        if self.internal_noise and training:
            y = y + keras.random.normal(tf.shape(y), stddev=self.internal_noise, dtype=y.dtype,
                                        seed=self._noise_seed)
        return y

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        return (b, output_size(h, self.ksize, self.padding), output_size(w, self.ksize, self.padding),
                self.n_kernels)

    def get_config(self):
        config = super().get_config()
        config.update(filter_bank=bank_to_config(self.filter_bank), method=self.method, padding=self.padding,
                      internal_noise=self.internal_noise, seed=self.seed)
        return config
