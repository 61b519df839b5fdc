"""Training-time augmentation (SPEC §1) from Keras preprocessing layers, seeded per epoch."""
import math

import keras

from bioflow.errors import BioflowError, choices

AUGMENTATIONS = ("none", "standard", "extra")


@keras.saving.register_keras_serializable(package="bioflow")
class RandomBrightnessScale(keras.layers.Layer):
    """Multiplies each image by a factor drawn from ``[low, high]``, as Keras' old
    ``ImageDataGenerator(brightness_range=...)`` did (``RandomBrightness`` adds instead)."""

    def __init__(self, low, high, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.low, self.high, self.seed = low, high, seed
        self.generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=True):
        if not training:
            return images
        shape = (keras.ops.shape(images)[0], 1, 1, 1)
        factor = keras.random.uniform(shape, self.low, self.high, seed=self.generator)
        return keras.ops.clip(images * factor, 0.0, 255.0)

    def get_config(self):
        return {**super().get_config(), "low": self.low, "high": self.high, "seed": self.seed}


def check_augmentation(kind):
    """Validate an augmentation name (without building layers: no TF state before the strategy)."""
    if kind is not None and kind not in AUGMENTATIONS:
        raise BioflowError(f"Unknown augmentation {kind!r}; valid ones are {choices(AUGMENTATIONS)}.")
    return kind


def make_augmenter(kind, seed):
    """A ``keras.Sequential`` of random layers for ``kind`` (``'standard'``/``'extra'``), or None.

    Images are in 0..255 (before normalisation), as in the original pipeline.
    """
    if check_augmentation(kind) in (None, "none"):
        return None
    base = (int(seed) % 2**26) * 16  # distinct, in-range seeds for the layers
    seeds = iter(range(base, base + 16))
    fill = dict(fill_mode="nearest")
    if kind == "standard":
        layers = [keras.layers.RandomTranslation(0.1, 0.1, seed=next(seeds), **fill),
                  keras.layers.RandomFlip("horizontal", seed=next(seeds))]
    else:
        shear = math.tan(math.radians(0.2))  # ImageDataGenerator's shear_range=0.2 is in degrees
        layers = [keras.layers.RandomRotation(45 / 360, seed=next(seeds), **fill),
                  RandomBrightnessScale(0.2, 1.0, seed=next(seeds)),
                  keras.layers.RandomShear(shear, shear, seed=next(seeds), **fill),
                  keras.layers.RandomZoom((-0.5, 0.5), (-0.5, 0.5), seed=next(seeds), **fill),
                  keras.layers.RandomTranslation(0.2, 0.2, seed=next(seeds), **fill),
                  keras.layers.RandomFlip("horizontal", seed=next(seeds))]
    return keras.Sequential(layers, name=f"augment_{kind}")
