"""The Retinal Information Bottleneck (Lindsey et al. 2019), docs/science.md."""
import keras

from bioflow.registry import BOTTLENECKS
from bioflow.validation import check_positive_int


@BOTTLENECKS.register("rib")
class RetinalBottleneck:
    """Three ``3×3`` 'same' ReLU convolutions, ``filters → width → width`` channels.

    The layers are named ``retina_conv1..3``. The filter bank behind the bottleneck then sees
    ``width`` input channels. ``train_filter_bank=True`` reproduces the follow-up study, whose
    code left the filter bank behind the bottleneck trainable.
    """

    def __init__(self, width: int = 2, filters: int = 32, kernel_size: int = 3, train_filter_bank: bool = False):
        for key, value in (("width", width), ("filters", filters), ("kernel_size", kernel_size)):
            check_positive_int(value, f"RetinalBottleneck: {key}")
        self.width, self.filters, self.kernel_size = width, filters, kernel_size
        self.train_filter_bank = bool(train_filter_bank)

    @property
    def label(self) -> str:
        """The bottleneck's part of a model name (``rib2``)."""
        return f"rib{self.width}"

    def __call__(self, x):
        """Apply the bottleneck's layers to the tensor ``x``."""
        for i, n in enumerate((self.filters, self.width, self.width), start=1):
            x = keras.layers.Conv2D(n, self.kernel_size, padding="same", activation="relu",
                                    name=f"retina_conv{i}")(x)
        return x

    def get_config(self):
        return dict(width=self.width, filters=self.filters, kernel_size=self.kernel_size,
                    train_filter_bank=self.train_filter_bank)
