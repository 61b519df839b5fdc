"""A synthetic, offline data set: 10 classes of gratings and shapes at 32×32.

It is generated procedurally and deterministically from a seed, needs no download, and a tiny
network learns it in about a minute. It is **synthetic**: use it for quickstarts and tests,
never as a stand-in for CIFAR-10 results.

Classes: horizontal and vertical gratings of low and high spatial frequency; disk, square, ring,
cross, triangle, checkerboard. All are symmetric under a horizontal flip, so the ``standard``
augmentation keeps every label valid.
Every image draws its position, size, spatial frequency, phase, contrast and background at random,
and gets pixel noise.
"""
import numpy as np

CLASS_NAMES = ("horizontal_low", "horizontal_high", "vertical_low", "vertical_high", "disk", "square", "ring",
               "cross", "triangle", "checkerboard")
GRATINGS = {  # orientation (degrees), spatial frequency range (cycles per pixel at 32x32)
    "horizontal_low": (0, (0.06, 0.12)), "horizontal_high": (0, (0.16, 0.28)),
    "vertical_low": (90, (0.06, 0.12)), "vertical_high": (90, (0.16, 0.28)),
}


def _grating(rng, n, yy, xx, angle_deg, freq_range):
    theta = np.deg2rad(angle_deg + rng.uniform(-8, 8, n))[:, None, None]
    freq = rng.uniform(*freq_range, n)[:, None, None]
    phase = rng.uniform(0, 2 * np.pi, n)[:, None, None]
    # Stripes run along `angle`: the luminance varies across them.
    u = -xx * np.sin(theta) + yy * np.cos(theta)
    return 0.5 + 0.5 * np.sin(2 * np.pi * freq * u + phase)


def _shape_mask(rng, n, yy, xx, kind):
    size = rng.uniform(5, 11, n)[:, None, None]
    cy, cx = (rng.uniform(-5, 5, (2, n))[..., None, None])
    dy, dx = yy - cy, xx - cx
    if kind == "disk":
        return (dy**2 + dx**2) <= size**2
    if kind == "square":
        return (np.abs(dy) <= size * 0.85) & (np.abs(dx) <= size * 0.85)
    if kind == "ring":
        r = np.sqrt(dy**2 + dx**2)
        return (r <= size) & (r >= size * 0.55)
    if kind == "cross":
        arm = size * 0.3
        return ((np.abs(dy) <= arm) & (np.abs(dx) <= size)) | ((np.abs(dx) <= arm) & (np.abs(dy) <= size))
    if kind == "triangle":  # upright isosceles triangle
        top, bottom = -size, size * 0.8
        half_width = (dy - top) / (bottom - top) * size
        return (dy >= top) & (dy <= bottom) & (np.abs(dx) <= half_width)
    if kind == "checkerboard":
        cell = rng.uniform(3, 6, n)[:, None, None]
        return ((np.floor(dy / cell) + np.floor(dx / cell)) % 2) == 0
    raise ValueError(kind)


def generate(n, seed, image_size=32, noise=0.06):
    """``n`` images (uint8, ``(n, S, S, 1)``, values 0..255) and labels (int64), balanced over classes.

    A pure function of ``(n, seed, image_size, noise)``.
    """
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % len(CLASS_NAMES)
    rng.shuffle(labels)
    c = (image_size - 1) / 2
    yy, xx = np.meshgrid(np.arange(image_size) - c, np.arange(image_size) - c, indexing="ij")
    yy, xx = yy * 32 / image_size, xx * 32 / image_size  # shapes scale with the image
    images = np.empty((n, image_size, image_size), np.float64)
    for label, name in enumerate(CLASS_NAMES):
        idx = np.flatnonzero(labels == label)
        if idx.size == 0:
            continue
        k = idx.size
        if name in GRATINGS:
            pattern = _grating(rng, k, yy, xx, *GRATINGS[name])
        else:
            pattern = _shape_mask(rng, k, yy, xx, name).astype(np.float64)
        contrast = rng.uniform(0.35, 1.0, k)[:, None, None]
        background = rng.uniform(0.2, 0.8, k)[:, None, None]
        sign = np.where(rng.uniform(size=k) < 0.5, -1.0, 1.0)[:, None, None]
        images[idx] = background + sign * contrast * (pattern - 0.5)
    images += rng.normal(0, noise, images.shape)
    pixels = np.clip(np.round(images * 255), 0, 255).astype(np.uint8)[..., None]
    return pixels, labels.astype(np.int64)
