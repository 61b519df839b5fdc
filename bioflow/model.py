"""Model assembly: the root gin entry point that builds a whole network (docs/science.md, "Assembling a network").

    input (H, W, C) → [retina_*] → v1_* filter bank(s) → [recurrent_*] → rest of the base → softmax
"""
import logging

import gin
import keras

from bioflow import bases as bases_lib
from bioflow.components import BLTRecurrence, Combined, ConvLSTMRecurrence, FilterBankConv, RetinalBottleneck
from bioflow.components.convolution import check_method
from bioflow.errors import BioflowError, check_choice, choices
from bioflow.validation import safe_name

log = logging.getLogger(__name__)

#: Filter-bank names accepted as strings (case-insensitive), as in the original ``--convolution``.
FILTER_BANKS = {
    "original": None,
    "gabor": ("Gabor", {}),
    "dog": ("DoG", {}),
    "low-pass": ("LowPass", {}),
    "lowpass": ("LowPass", {}),
    **{f"combined-{v}": ("Combined", {"variant": v}) for v in ("trim", "small", "medium", "full")},
    "combined": ("Combined", {}),
}
RECURRENCES = {"convlstm": "ConvLSTMRecurrence", "blt": "BLTRecurrence"}


def _configurable(name):
    """Gin's configurable for a registered bioflow name, so gin bindings apply to it."""
    return gin.get_configurable(f"bioflow.{name}")


def resolve_base(base):
    """A base name (or a base function given by a gin reference) → (name, function)."""
    if callable(base):
        name = getattr(base, "__name__", str(base))
        return name, base
    check_choice(base, bases_lib.BASES, "base")
    return base, _configurable(base)


def resolve_filter_bank(filter_bank):
    """``None``, a name such as ``'gabor'`` or ``'combined-trim'``, or a bank object → bank or None."""
    if filter_bank is None:
        return None
    if isinstance(filter_bank, str):
        key = filter_bank.lower()
        if key not in FILTER_BANKS:
            raise BioflowError(f"Unknown filter bank {filter_bank!r}; valid filter banks are "
                               f"{choices(FILTER_BANKS)} (or a bank object such as @Gabor()).")
        if FILTER_BANKS[key] is None:
            return None
        cls_name, kwargs = FILTER_BANKS[key]
        return _configurable(cls_name)(**kwargs)
    if not hasattr(filter_bank, "stages"):
        raise BioflowError(f"filter_bank must be a name or a Gabor, DoG, LowPass or Combined bank, got {filter_bank!r}.")
    return filter_bank


def resolve_bottleneck(bottleneck):
    """``None``, a width N, or a :class:`RetinalBottleneck`."""
    if bottleneck is None or isinstance(bottleneck, RetinalBottleneck):
        return bottleneck
    if isinstance(bottleneck, int) and not isinstance(bottleneck, bool):
        return _configurable("RetinalBottleneck")(width=bottleneck)
    raise BioflowError(f"bottleneck must be None, a width N or @RetinalBottleneck(), got {bottleneck!r}.")


def resolve_recurrence(recurrence):
    """``None``, ``'convlstm'``, ``'blt'`` or a recurrence object."""
    if recurrence is None or isinstance(recurrence, (ConvLSTMRecurrence, BLTRecurrence)):
        return recurrence
    if isinstance(recurrence, str) and recurrence.lower() in RECURRENCES:
        return _configurable(RECURRENCES[recurrence.lower()])()
    raise BioflowError(f"Unknown recurrence {recurrence!r}; valid recurrences are {choices(RECURRENCES)}, "
                       "None, @ConvLSTMRecurrence() or @BLTRecurrence().")


def _check_input_shape(input_shape):
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    if shape is None or len(shape) != 3 or not all(isinstance(s, int) and s > 0 for s in shape):
        raise BioflowError(f"input_shape must be (height, width, channels) of positive integers, got {input_shape!r}.")
    return shape


def model_name(base, bank, bottleneck, recurrence):
    """A descriptive default model name, e.g. ``vgg16_gabor_rib2_convlstm``."""
    parts = [base, "original" if bank is None else (f"combined_{bank.variant}" if isinstance(bank, Combined)
                                                    else bank.kind)]
    if bottleneck is not None:
        parts.append(f"rib{bottleneck.width}")
    if recurrence is not None:
        parts.append(recurrence.kind)
    return "_".join(parts)


@gin.configurable(module="bioflow")
def build_model(input_shape=(224, 224, 1), classes=10, base="vgg16", filter_bank=None, bottleneck=None,
                recurrence=None, internal_noise=None, conv_method="auto", weights=None, name=None):
    """Build the whole network; returns an uncompiled ``keras.Model``.

    Args:
        input_shape: ``(H, W, C)``; any size the base allows (VGG and ResNet need 32×32).
        classes: number of output classes.
        base: ``'vgg16'``, ``'vgg19'``, ``'resnet50'`` or ``'allcnn'``; options via gin (``vgg16.width``).
        filter_bank: ``None``/``'original'`` keeps the base's first conv; a name (``'gabor'``,
            ``'dog'``, ``'low-pass'``, ``'combined-trim'``, …) or a bank object replaces it.
        bottleneck: ``None``, a width N, or ``@RetinalBottleneck()``.
        recurrence: ``None``, ``'convlstm'`` (faithful), ``'blt'`` (unrolled) or a recurrence object.
        internal_noise: stddev of training-time Gaussian noise after each filter-bank layer.
        conv_method: ``'auto'``, ``'direct'`` or ``'fft'`` for the filter banks.
        weights: ``None``, ``'imagenet'`` or the path of a Keras Applications weight file
            (``Original`` bases only; the first conv is adapted to grayscale).
        name: the model's name (default: from the components).
    """
    shape = _check_input_shape(input_shape)
    if name is not None:
        safe_name(name, "The model name", " (it names the run's folder)")
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 2:
        raise BioflowError(f"classes must be an integer >= 2, got {classes!r}.")
    base_name, base_fn = resolve_base(base)
    bank = resolve_filter_bank(filter_bank)
    retina = resolve_bottleneck(bottleneck)
    rec = resolve_recurrence(recurrence)
    check_method(conv_method)
    if weights is not None and bank is not None:
        raise BioflowError(f"Pretrained weights ({weights!r}) are only available for Original bases; "
                           f"this model uses the filter bank {bank!r}.")
    train_bank = retina.train_filter_bank if retina is not None else False

    def first_layer(x, spec):
        if bank is None:
            if isinstance(rec, ConvLSTMRecurrence):
                x = rec.replace(x, spec.filters, spec.kernel_size, spec.strides, spec.padding)
            else:
                x = bases_lib.standard_first_layer(x, spec)
        else:
            for i, stage in enumerate(bank.stages()):
                if i == 0 and isinstance(rec, ConvLSTMRecurrence):
                    x = rec.replace(x, stage.n_kernels, stage.ksize, 1, spec.padding)
                    if internal_noise:  # the study's code kept the bank's noise layer, after the ConvLSTM
                        x = keras.layers.GaussianNoise(internal_noise, name="recurrent_convlstm_noise")(x)
                else:
                    # Behind the bottleneck the study rebuilt (and so trained) only the first bank layer:
                    # the DoG stage of a Combined bank.
                    x = FilterBankConv(stage, method=conv_method, padding=spec.padding, internal_noise=internal_noise,
                                       trainable=train_bank and i == 0, name=f"v1_{stage.kind}")(x)
        if isinstance(rec, BLTRecurrence):
            x = rec.insert(x)
        return x

    inputs = keras.Input(shape=shape, name="image")
    x = retina(inputs) if retina is not None else inputs
    try:
        outputs = base_fn(x, first_layer, classes)
    except BioflowError as err:
        if repr(base_name) in str(err):
            raise
        raise BioflowError(f"Cannot build base {base_name!r} on input {shape}: {err}") from err
    model = keras.Model(inputs, outputs, name=name or model_name(base_name, bank, retina, rec))
    if weights is not None:
        path = bases_lib.imagenet_weights_path(base_name) if weights == "imagenet" else weights
        report = bases_lib.load_pretrained_weights(model, path)
        log.info("Pretrained weights from %s: loaded %d layers, adapted to grayscale %s, skipped %s", path,
                 len(report["loaded"]), report["adapted"], report["skipped"])
    return model


def describe(model):
    """The architecture of a built or loaded bioflow model, read from its layer names.

    Returns ``{'base', 'convolution', 'bottleneck', 'recurrence'}`` (``None`` where absent).
    """
    names = {layer.name for layer in model.layers}
    if "conv5_block3_out" in names:
        base = "resnet50"
    elif "block5_conv4" in names:
        base = "vgg19"
    elif "block5_conv3" in names:
        base = "vgg16"
    elif "conv9" in names:
        base = "allcnn"
    else:
        base = None
    kinds = [layer.name[3:] for layer in model.layers if layer.name.startswith("v1_")]
    convolution = "combined" if len(kinds) > 1 else (kinds[0] if kinds else "original")
    if "recurrent_convlstm" in names and not kinds and base is not None:
        convolution = "convlstm"  # the faithful RC replaced the first convolution
    bottleneck = model.get_layer("retina_conv3").output.shape[-1] if "retina_conv3" in names else None
    recurrence = "convlstm" if "recurrent_convlstm" in names else ("blt" if "recurrent_blt" in names else None)
    return dict(base=base, convolution=convolution, bottleneck=bottleneck, recurrence=recurrence)
