"""Model assembly: the root gin entry point that builds a whole network (docs/science.md, "Assembling a network").

    input (H, W, C) → [retina_*] → v1_* filter bank(s) → [recurrent_*] → rest of the base → softmax
                                                                      [→ step_outputs → final_step]

Every component comes from its registry (:mod:`bioflow.registry`); each one builds its own layers
(a bank its stages, a recurrence its :meth:`~bioflow.components.recurrent.Recurrence.apply`), so
this module has no per-kind branches. The :class:`~bioflow.architecture.Architecture` is recorded
here, while the network is built.
"""
from __future__ import annotations

import logging
from typing import Callable

import gin
import keras

from bioflow import bases as bases_lib
from bioflow.architecture import Architecture, parameter_counts
from bioflow.components import Combined, FilterBank, FilterBankConv, RetinalBottleneck
from bioflow.components.convolution import check_method
from bioflow.components.recurrent import ConvStage, FinalStep, Recurrence, StepOutputs
from bioflow.errors import BioflowError
from bioflow.registry import BASES, BOTTLENECKS, FILTER_BANKS, RECURRENCES
from bioflow.validation import check_positive_int, safe_name

log = logging.getLogger(__name__)

#: The filter-bank name that keeps the base's own first convolution.
ORIGINAL = "original"
#: The layer that holds every step's predictions ``(B, steps, K)`` of a network read out at every step.
STEP_OUTPUTS = "step_outputs"


def resolve_base(base: str | Callable) -> tuple[str, Callable]:
    """A base name (or a base function given by a gin reference) → (name, function)."""
    if callable(base):
        return getattr(base, "__name__", str(base)), base
    BASES.entry(base)  # an unknown name lists the registered bases
    return base.lower(), gin.get_configurable(BASES.get(base))


def resolve_filter_bank(filter_bank: str | FilterBank | Combined | None) -> FilterBank | Combined | None:
    """``None``, ``'original'``, a registered name (``'gabor'``, ``'combined-trim'``) or a bank object → bank
    (None keeps the base's own first convolution)."""
    if filter_bank is None or (isinstance(filter_bank, str) and filter_bank.lower() == ORIGINAL):
        return None
    return FILTER_BANKS.resolve(filter_bank, "build_model.filter_bank", also=(ORIGINAL,))


def resolve_bottleneck(bottleneck: int | str | RetinalBottleneck | None) -> RetinalBottleneck | None:
    """``None``, a width N (a :class:`RetinalBottleneck` of that width), a registered name or a bottleneck object."""
    if bottleneck is None:
        return None
    if isinstance(bottleneck, int) and not isinstance(bottleneck, bool):
        return BOTTLENECKS.create("rib", width=bottleneck)
    return BOTTLENECKS.resolve(bottleneck, "build_model.bottleneck (or a width N)")


def resolve_recurrence(recurrence: str | Recurrence | None) -> Recurrence | None:
    """``None``, a registered name (``'convlstm'``, ``'blt'``) or a recurrence object."""
    if recurrence is None or isinstance(recurrence, Recurrence):
        return recurrence
    return RECURRENCES.resolve(recurrence, "build_model.recurrence")


def _check_input_shape(input_shape):
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    if shape is None or len(shape) != 3 or not all(isinstance(s, int) and s > 0 for s in shape):
        raise BioflowError(f"input_shape must be (height, width, channels) of positive integers, got {input_shape!r}.")
    return shape


def model_name(base: str, bank, bottleneck, recurrence) -> str:
    """A descriptive default model name, e.g. ``vgg16_gabor_rib2_convlstm`` (``…_blt_steps``: every step read out)."""
    parts = [base, ORIGINAL if bank is None else bank.label]
    if bottleneck is not None:
        parts.append(bottleneck.label)
    if recurrence is not None:
        parts.append(recurrence.kind + ("_steps" if recurrence.readout_steps else ""))
    return "_".join(parts)


def _convolution(bank, recurrence):
    """What computes the first layer, as the result tables name it (see :class:`Architecture`)."""
    n_stages = len(bank.stages()) if bank is not None else 1
    if recurrence is not None and recurrence.replaces_first_conv and n_stages == 1:
        return recurrence.kind
    return ORIGINAL if bank is None else bank.kind


def _front_end_stages(spec, bank, conv_method, internal_noise, train_bank):
    """The convolutions of the front end: the base's own first conv, or one per bank stage."""
    if bank is None:
        return [ConvStage(spec.filters, spec.kernel_size, spec.strides, spec.padding,
                          lambda x: bases_lib.standard_first_layer(x, spec))]

    def stage_layer(stage, trainable):
        return FilterBankConv(stage, method=conv_method, padding=spec.padding, internal_noise=internal_noise,
                              trainable=trainable, name=f"v1_{stage.kind}")

    # Behind the bottleneck the study rebuilt (and so trained) only the first bank layer: the DoG stage of a
    # Combined bank.
    return [ConvStage(stage.n_kernels, stage.ksize, 1, spec.padding, stage_layer(stage, train_bank and i == 0),
                      noise=internal_noise)
            for i, stage in enumerate(bank.stages())]


@gin.configurable(module="bioflow", denylist=["name_only"])
def build_model(input_shape: tuple[int, int, int] = (224, 224, 1), classes: int = 10, base: str | Callable = "vgg16",
                filter_bank: str | FilterBank | Combined | None = None,
                bottleneck: int | str | RetinalBottleneck | None = None, recurrence: str | Recurrence | None = None,
                internal_noise: float | None = None, conv_method: str = "auto", weights: str | None = None,
                name: str | None = None, name_only: bool = False) -> keras.Model | str:
    """Build the whole network; returns an uncompiled ``keras.Model``.

    Args:
        input_shape: ``(H, W, C)``; any size the base allows (VGG and ResNet need 32×32).
        classes: number of output classes.
        base: ``'vgg16'``, ``'vgg19'``, ``'resnet50'`` or ``'allcnn'``; options via gin (``vgg16.width``).
        filter_bank: ``None``/``'original'`` keeps the base's first conv; a name (``'gabor'``,
            ``'dog'``, ``'lowpass'``, ``'combined-trim'``, …) or a bank object replaces it.
        bottleneck: ``None``, a width N, or ``@RetinalBottleneck()``.
        recurrence: ``None``, ``'convlstm'`` (faithful), ``'blt'`` (unrolled) or a recurrence object.
        internal_noise: stddev of training-time Gaussian noise after each filter-bank layer.
        conv_method: ``'auto'``, ``'direct'`` or ``'fft'`` for the filter banks.
        weights: ``None``, ``'imagenet'`` or the path of a Keras Applications weight file
            (``Original`` bases only; the first conv is adapted to grayscale).
        name: the model's name (default: from the components).
        name_only: return the name the model would get (it names the run directory), without building it.
    """
    shape = _check_input_shape(input_shape)
    if name is not None:
        safe_name(name, "The model name", " (it names the run's folder)")
    check_positive_int(classes, "build_model.classes", minimum=2)
    base_name, base_fn = resolve_base(base)
    bank = resolve_filter_bank(filter_bank)
    retina = resolve_bottleneck(bottleneck)
    rec = resolve_recurrence(recurrence)
    check_method(conv_method)
    if weights is not None and bank is not None:
        raise BioflowError(f"Pretrained weights ({weights!r}) are only available for Original bases; "
                           f"this model uses the filter bank {bank!r}.")
    if name_only:
        return name or model_name(base_name, bank, retina, rec)
    train_bank = retina.train_filter_bank if retina is not None else False

    def first_layer(x, spec):
        stages = _front_end_stages(spec, bank, conv_method, internal_noise, train_bank)
        return rec.apply(x, stages) if rec is not None else Recurrence().apply(x, stages)

    inputs = keras.Input(shape=shape, name="image")
    x = retina(inputs) if retina is not None else inputs
    try:
        outputs = base_fn(x, first_layer, classes)
    except BioflowError as err:
        if repr(base_name) in str(err):
            raise
        raise BioflowError(f"Cannot build base {base_name!r} on input {shape}: {err}") from err
    if rec is not None and rec.readout_steps:
        outputs = FinalStep(name="final_step")(StepOutputs(rec.readout_steps, name=STEP_OUTPUTS)(outputs))
    model = keras.Model(inputs, outputs, name=name or model_name(base_name, bank, retina, rec))
    if weights is not None:
        path = bases_lib.imagenet_weights_path(base_name) if weights == "imagenet" else weights
        report = bases_lib.load_pretrained_weights(model, path)
        log.info("Pretrained weights from %s: loaded %d layers, adapted to grayscale %s, skipped %s", path,
                 len(report["loaded"]), report["adapted"], report["skipped"])
    model.bioflow_architecture = Architecture(
        base=base_name, convolution=_convolution(bank, rec), bottleneck=retina.width if retina is not None else None,
        recurrence=rec.kind if rec is not None else None, input_shape=shape, classes=classes,
        filter_bank_config=_config_of(bank), bottleneck_config=_config_of(retina), recurrence_config=_config_of(rec),
        weights=weights if isinstance(weights, str) else None, parameters=parameter_counts(model))
    return model


def step_model(model: keras.Model) -> keras.Model | None:
    """A model of the same layers whose output is every step's predictions ``(B, steps, K)``, or None
    when ``model`` is not read out at every step (``BLTRecurrence.readout = 'every_step'``)."""
    try:
        layer = model.get_layer(STEP_OUTPUTS)
    except ValueError:
        return None
    return keras.Model(model.input, layer.output, name=f"{model.name}_steps")


def _config_of(component):
    """``{'class_name', 'config'}`` of a component, or None."""
    if component is None:
        return None
    return {"class_name": type(component).__name__, "config": component.get_config()}
