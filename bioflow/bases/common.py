"""What every base network shares: the spec of its first convolution and size checks."""
import dataclasses

import keras

from bioflow.errors import BioflowError


@dataclasses.dataclass(frozen=True)
class FirstConv:
    """The first convolution of a base, which a filter bank or recurrent block may replace."""

    filters: int
    kernel_size: int
    strides: int
    padding: str
    name: str
    activation: str = None
    regularizer: object = None  # applied to the kernel and bias of the base's own first conv


def standard_first_layer(x, spec):
    """The base's own first convolution (the ``Original`` setting)."""
    return keras.layers.Conv2D(spec.filters, spec.kernel_size, strides=spec.strides, padding=spec.padding,
                               activation=spec.activation, kernel_regularizer=spec.regularizer,
                               bias_regularizer=spec.regularizer, name=spec.name)(x)


def scaled(n, width):
    """``n`` channels scaled by the width multiplier (at least 1)."""
    if not width > 0:
        raise BioflowError(f"width must be > 0, got {width!r}.")
    return max(1, int(round(n * width)))


def check_input_size(x, minimum, base):
    """Raise a clear error when the spatial input is smaller than ``minimum`` for ``base``."""
    h, w = x.shape[1], x.shape[2]
    for size in (h, w):
        if size is not None and size < minimum:
            raise BioflowError(f"An input of {h}x{w} pixels is too small for base {base!r}: it needs at least "
                               f"{minimum}x{minimum}.")
