"""Training-time augmentation (docs/science.md, "Images"), seeded per epoch and batch.

``standard`` (shift 0.1, horizontal flip) uses Keras preprocessing layers. ``extra`` reproduces
Keras' old ``ImageDataGenerator(rotation_range=45, width_shift_range=0.2, height_shift_range=0.2,
shear_range=0.2, zoom_range=[0.5, 1.5], horizontal_flip=True, brightness_range=[0.2, 1.0],
fill_mode='nearest')``, as the original used it: one combined affine resampling per image, then the
flip, then the brightness factor on the image stretched to 0..255 and cut to 8 bits.
"""
import math

import keras
import tensorflow as tf

from bioflow.errors import check_choice

AUGMENTATIONS = ("none", "standard", "extra")


def check_augmentation(kind):
    """Validate an augmentation name (without building layers: no TF state before the strategy)."""
    return kind if kind is None else check_choice(kind, AUGMENTATIONS, "augmentation")


class GeneratorTransform:
    """The ``extra`` augmentation: Keras ``ImageDataGenerator.random_transform`` on batches, in TF.

    Per image it draws ``theta`` (degrees), ``tx`` (× height), ``ty`` (× width), ``shear`` (degrees, as
    Keras reads ``shear_range``), ``zx``, ``zy``, a flip and a brightness factor, from
    ``(seed, batch index)`` only. :meth:`apply` builds Keras' matrix ``R·T·S·Z`` about the image
    centre in (column, row) coordinates and resamples once (bilinear, edges extended).
    """

    def __init__(self, seed, rotation=45.0, shift=0.2, shear=0.2, zoom=(0.5, 1.5), flip=True, brightness=(0.2, 1.0)):
        self.seed = int(seed) % (2**31 - 1)
        self.rotation, self.shift, self.shear, self.zoom = rotation, shift, shear, zoom
        self.flip, self.brightness = flip, brightness

    def draw(self, n, height, width, batch_index=0):
        """The random parameters of ``n`` images: a dict of float32 ``[n]`` tensors."""
        key = tf.random.experimental.stateless_fold_in(tf.constant([self.seed, 0], tf.int64),
                                                       tf.cast(batch_index, tf.int64))
        u = tf.random.stateless_uniform([8, n], key, dtype=tf.float32)

        def between(row, low, high):
            return low + (high - low) * u[row]

        return dict(theta=between(0, -self.rotation, self.rotation),
                    tx=between(1, -self.shift, self.shift) * height, ty=between(2, -self.shift, self.shift) * width,
                    shear=between(3, -self.shear, self.shear),
                    zx=between(4, *self.zoom), zy=between(5, *self.zoom),
                    flip=tf.cast(u[6] < 0.5, tf.float32) if self.flip else tf.zeros([n]),
                    brightness=between(7, *self.brightness) if self.brightness else tf.ones([n]))

    @staticmethod
    def matrices(params, height, width):
        """Keras' output → input maps ``[n, 3, 3]`` in (column, row) pixel coordinates."""
        theta, shear = params["theta"] * (math.pi / 180), params["shear"] * (math.pi / 180)
        zero, one = tf.zeros_like(theta), tf.ones_like(theta)

        def mat(rows):
            return tf.stack([tf.stack(r, axis=-1) for r in rows], axis=-2)

        rotate = mat([[tf.cos(theta), -tf.sin(theta), zero], [tf.sin(theta), tf.cos(theta), zero], [zero, zero, one]])
        shift = mat([[one, zero, params["tx"]], [zero, one, params["ty"]], [zero, zero, one]])
        shear_m = mat([[one, -tf.sin(shear), zero], [zero, tf.cos(shear), zero], [zero, zero, one]])
        zoom = mat([[params["zx"], zero, zero], [zero, params["zy"], zero], [zero, zero, one]])
        ox, oy = height / 2 - 0.5, width / 2 - 0.5  # Keras' transform_matrix_offset_center(m, h, w)
        offset = tf.constant([[1, 0, ox], [0, 1, oy], [0, 0, 1]], tf.float32)
        reset = tf.constant([[1, 0, -ox], [0, 1, -oy], [0, 0, 1]], tf.float32)
        return offset @ rotate @ shift @ shear_m @ zoom @ reset

    def apply(self, images, params, brightness=True):
        """Transform float ``[n, H, W, 1]`` images in 0..255 with ``params`` from :meth:`draw`."""
        h, w = images.shape[1], images.shape[2]
        m = self.matrices(params, h, w)
        transform = tf.concat([tf.reshape(m[:, :2, :], [-1, 6]), tf.zeros([tf.shape(m)[0], 2])], axis=1)
        out = keras.ops.image.affine_transform(images, transform, interpolation="bilinear", fill_mode="nearest")
        flip = params["flip"][:, None, None, None] > 0.5
        out = tf.where(flip, tf.reverse(out, [2]), out)
        if brightness and self.brightness:
            out = brightness_shift(out, params["brightness"])
        return out

    def __call__(self, images, batch_index):
        """Draw this batch's parameters from (seed, ``batch_index``) and apply them."""
        n = tf.shape(images)[0]
        return self.apply(images, self.draw(n, images.shape[1], images.shape[2], batch_index))


def brightness_shift(images, factors):
    """Keras' ``apply_brightness_shift(x, factor, scale=True)`` per image, in 0..255.

    Keras stretches the image to 0..255 (minus its minimum, over its maximum), casts it to 8 bits
    (``astype('uint8')`` truncates), and PIL's ``ImageEnhance.Brightness`` multiplies by the factor and
    truncates again. The result stays in the stretched range.
    """
    low = tf.reduce_min(images, axis=[1, 2, 3], keepdims=True)
    shifted = images - low
    top = tf.reduce_max(shifted, axis=[1, 2, 3], keepdims=True)
    stretched = shifted / tf.where(top > 0, top, 1.0) * 255.0  # a flat image stays 0
    eight_bit = tf.floor(tf.clip_by_value(stretched, 0.0, 255.0))
    return tf.floor(tf.clip_by_value(eight_bit * factors[:, None, None, None], 0.0, 255.0))


def make_augmenter(kind, seed):
    """``fn(images 0..255 [n, H, W, 1], batch_index) → images`` for ``kind``, or None for ``'none'``.

    Deterministic in ``seed`` and the batch order (the data set maps batches sequentially).
    """
    if check_augmentation(kind) in (None, "none"):
        return None
    if kind == "extra":
        return GeneratorTransform(seed)
    base = (int(seed) % 2**26) * 16  # distinct, in-range seeds for the layers
    layers = keras.Sequential([keras.layers.RandomTranslation(0.1, 0.1, seed=base, fill_mode="nearest"),
                               keras.layers.RandomFlip("horizontal", seed=base + 1)], name="augment_standard")
    return lambda images, batch_index: layers(images, training=True)
