"""Image preprocessing shared by every data set: luminance, upscaling, normalisation (docs/science.md)."""
import functools

import numpy as np
import tensorflow as tf

from bioflow.errors import BioflowError, check_choice

#: ITU-R 601-2 luma weights.
LUMA = (0.299, 0.587, 0.114)
INTERPOLATIONS = ("lanczos", "nearest")

#: Cached (mean, std) over the training set after luminance and upscaling to 224x224 (docs/science.md).
#: The lanczos values hold because :func:`resize` computes OpenCV's INTER_LANCZOS4, as the original did.
CACHED_STATISTICS = {
    ("cifar10", "nearest", 224): (122.61930353949222, 60.99213660091195),
    ("cifar10", "lanczos", 224): (122.61385345458984, 60.87860107421875),
    ("ecoset-cifar10", "nearest", 224): (118.97575378417969, 66.42269134521484),
    ("ecoset-cifar10", "lanczos", 224): (118.9734878540039, 65.4490737915039),
}


def to_luminance(image):
    """An image with 1 or 3 channels (or 4: alpha dropped) → float32 ``(..., H, W, 1)`` in 0..255."""
    image = tf.cast(image, tf.float32)
    channels = image.shape[-1]
    if channels == 1:
        return image
    if channels in (3, 4):
        return tf.tensordot(image[..., :3], tf.constant(LUMA, tf.float32), axes=1)[..., None]
    raise BioflowError(f"Images must have 1, 3 or 4 channels, got {channels}.")


def check_interpolation(interpolation):
    """Validate an interpolation name."""
    return check_choice(interpolation, INTERPOLATIONS, "interpolation")


@functools.lru_cache(maxsize=32)
def lanczos4_matrix(in_size, out_size):
    """``[out_size, in_size]`` weights of OpenCV's ``INTER_LANCZOS4`` along one axis.

    Output pixel ``i`` samples ``x = (i + 0.5) · in/out − 0.5``; its 8 taps ``floor(x) − 3 …
    floor(x) + 4`` weigh ``sinc(d) · sinc(d / 4)`` at distance ``d``, normalised to sum 1; taps beyond
    the image take the edge pixel (OpenCV clamps them).
    """
    x = (np.arange(out_size) + 0.5) * (in_size / out_size) - 0.5
    start = np.floor(x).astype(int) - 3
    taps = start[:, None] + np.arange(8)[None, :]
    d = x[:, None] - taps
    weights = np.sinc(d) * np.sinc(d / 4)
    weights /= weights.sum(axis=1, keepdims=True)
    matrix = np.zeros((out_size, in_size))
    np.add.at(matrix, (np.repeat(np.arange(out_size), 8), np.clip(taps, 0, in_size - 1).ravel()), weights.ravel())
    return matrix.astype(np.float32)


def resize(images, size, interpolation="nearest"):
    """Resize ``[..., H, W, C]`` to ``size``×``size`` (identity when already that size), clipped to 0..255.

    ``nearest`` replicates pixels; ``lanczos`` is OpenCV's ``INTER_LANCZOS4`` (the original's method).
    """
    check_interpolation(interpolation)
    h, w = images.shape[-3], images.shape[-2]
    if h == size and w == size:
        return images
    if interpolation == "nearest":
        out = tf.image.resize(images, (size, size), method="nearest")
    else:
        rows, cols = lanczos4_matrix(h, size), lanczos4_matrix(w, size)
        out = tf.einsum("Hh,...hwc,Ww->...HWc", rows, tf.cast(images, tf.float32), cols)
    return tf.clip_by_value(out, 0.0, 255.0)


def compute_statistics(dataset):
    """Scalar mean and std over every pixel of a data set of ``(images, labels)`` batches (float64)."""
    total, total_sq, count = 0.0, 0.0, 0
    for images, _ in dataset:
        x = images.numpy().astype(np.float64)
        total += x.sum()
        total_sq += np.square(x).sum()
        count += x.size
    if count == 0:
        raise BioflowError("Cannot compute normalisation statistics of an empty training set.")
    mean = total / count
    return float(mean), float(np.sqrt(max(total_sq / count - mean**2, 0.0)))


#: ``featurewise``: ``(x − mean) / std`` with the training set's scalars (bioflow's default, and the
#: original's for CIFAR-10). ``samplewise``: each image by its own mean and std, as the original
#: did for image folders under ``--recalculate_statistics``.
NORMALISATIONS = ("featurewise", "samplewise")


def check_normalisation(name):
    """Validate a normalisation name."""
    return check_choice(name, NORMALISATIONS, "normalisation")


def normalise(images, mean, std):
    """Feature-wise normalisation ``(x - mean) / std``."""
    return (images - mean) / std


def normalise_samplewise(images):
    """Each image ``[..., H, W, C]`` minus its mean, over its std + 1e-6 (Keras' ImageDataGenerator)."""
    mean = tf.reduce_mean(images, axis=[-3, -2, -1], keepdims=True)
    std = tf.math.reduce_std(images, axis=[-3, -2, -1], keepdims=True)
    return (images - mean) / (std + 1e-6)


def normaliser(stats):
    """``fn(images 0..255) → network input`` for a run's data statistics (``stats['normalisation']``)."""
    mode = check_normalisation(stats.get("normalisation") or "featurewise")
    if mode == "samplewise":
        return normalise_samplewise
    mean, std = float(stats["mean"]), float(stats["std"])
    return lambda images: normalise(images, mean, std)


def prepare_images(dataset, size, interpolation, n_images=None):
    """Resize a (0..255 luminance, label) data set to ``size`` and return [0, 1] arrays."""
    if n_images is not None:
        dataset = dataset.take(n_images)
    ds = dataset.map(lambda x, y: (resize(tf.cast(x, tf.float32), size, interpolation) / 255.0, tf.cast(y, tf.int64)),
                     num_parallel_calls=tf.data.AUTOTUNE)
    xs, ys = [], []
    for x, y in ds.batch(256):
        xs.append(x.numpy())
        ys.append(y.numpy())
    if not xs:
        raise BioflowError("The evaluation set is empty.")
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys).astype(np.int64)
