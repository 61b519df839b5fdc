"""Building blocks of bio-inspired networks: filter banks, their layer, retina and recurrence."""
from bioflow.components.convolution import conv2d, fft_conv2d
from bioflow.components.filterbank_layer import FilterBankConv
from bioflow.components.filterbanks import (
    COMBINED_VARIANTS,
    Combined,
    DoG,
    FilterBank,
    Gabor,
    LowPass,
)
from bioflow.components.recurrent import (
    BLTRecurrence,
    BLTRecurrentBlock,
    ConvLSTMRecurrence,
    OneStepConvLSTM2D,
)
from bioflow.components.retina import RetinalBottleneck

__all__ = [
    "BLTRecurrence", "BLTRecurrentBlock", "COMBINED_VARIANTS", "Combined", "ConvLSTMRecurrence", "DoG",
    "FilterBank", "FilterBankConv", "Gabor", "LowPass", "OneStepConvLSTM2D", "RetinalBottleneck",
    "conv2d", "fft_conv2d",
]
