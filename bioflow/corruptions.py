"""Common corruptions (Hendrycks & Dietterich 2019) computed for grey images of any size.

Each corruption is Hendrycks' CIFAR-10-C formula (``make_cifar_c.py`` in hendrycks/robustness) at
its 5 severities, written for one grey channel. Constants measured in pixels (blur radii and
sigmas, the defocus disk's support, the glass blur's displacement, the pixelation and elastic
sizes) are multiplied by ``s = min(H, W) / 32``, so that a 224×224 image gets the corruption a
32×32 CIFAR image gets, at its own resolution; everything else (noise amplitudes, contrast, zoom
factors, JPEG qualities) is unchanged. At 32×32, ``s = 1`` and the constants are Hendrycks' own.

Every draw comes from the image's own generator, seeded by ``(seed, corruption, severity, image
index)``, so an image gets the same corruption whatever the batch it is in.

The corruptions are registered as perturbations ``c_<name>`` (levels: severity 0 = clean, 1..5),
so the evaluation runs them like the rest of the noise suite (docs/evaluation.md lists them, the
ones left out and why).
"""
import functools
import math

import numpy as np
import scipy.ndimage as ndimage
import scipy.signal as signal

#: Hendrycks' CIFAR-10-C constants per severity 1..5 (make_cifar_c.py).
CONSTANTS = {
    "gaussian_noise": (0.04, 0.06, 0.08, 0.09, 0.10),
    "shot_noise": (500, 250, 100, 75, 50),
    "impulse_noise": (0.01, 0.02, 0.03, 0.05, 0.07),
    "defocus_blur": ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)),
    "glass_blur": ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)),
    "zoom_blur": tuple(tuple(np.arange(1, top, 0.01)) for top in (1.06, 1.11, 1.16, 1.21, 1.26)),
    "fog": ((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)),
    "brightness": (0.05, 0.1, 0.15, 0.2, 0.3),
    "contrast": (0.75, 0.5, 0.4, 0.3, 0.15),
    "elastic_transform": ((0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05),
                          (0.1, 0.03, 0.03)),  # × the image size, as Hendrycks' IMSIZE * c
    "pixelate": (0.95, 0.9, 0.85, 0.75, 0.65),
    "jpeg_compression": (80, 65, 58, 50, 40),
    "speckle_noise": (0.06, 0.1, 0.12, 0.16, 0.2),
    "gaussian_blur": (0.4, 0.6, 0.7, 0.8, 1.0),
}
#: The 15 benchmark corruptions of CIFAR-10-C that bioflow computes (12), in Hendrycks' order.
BENCHMARK = ("gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "zoom_blur", "fog",
             "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression")
#: CIFAR-10-C's 4 extra corruptions that bioflow computes.
EXTRA = ("speckle_noise", "gaussian_blur")
#: Hendrycks' corruptions that bioflow does not compute, and why.
LEFT_OUT = {
    "motion_blur": "ImageMagick's motion blur (through Wand), which no Python library reproduces",
    "snow": "ImageMagick's motion blur of the snow layer, as motion_blur",
    "frost": "six bundled frost photographs that are not part of any package",
    "spatter": "OpenCV's Canny edges and distance transform of the liquid layer",
    "saturate": "it changes HSV saturation, which a grey image does not have",
}
ALL = BENCHMARK + EXTRA
#: The corruptions that draw random numbers; the others are functions of the image alone.
RANDOM = ("gaussian_noise", "shot_noise", "impulse_noise", "glass_blur", "fog", "elastic_transform", "speckle_noise")
#: The prefix of the registered perturbations (``c_gaussian_noise``).
PREFIX = "c_"


def scale(shape) -> float:
    """The size rule's factor ``s = min(H, W) / 32`` for an image of ``shape`` ``(H, W[, C])``."""
    return min(shape[0], shape[1]) / 32.0


def generator(seed, name, severity, index) -> np.random.Generator:
    """The image's own generator: a pure function of (seed, corruption, severity, image index)."""
    return np.random.default_rng([int(seed) % (2**32), ALL.index(name), int(severity), int(index)])


def corrupt(name, image, severity, rng) -> np.ndarray:
    """One grey image ``(H, W)`` in [0, 1], corrupted by ``name`` at ``severity`` (1..5) with ``rng``'s draws."""
    if name not in CONSTANTS:
        raise KeyError(name)
    x = np.asarray(image, np.float64)
    out = _FUNCTIONS[name](x, CONSTANTS[name][severity - 1], scale(x.shape), rng)
    return np.clip(out, 0.0, 1.0)


def corrupt_batch(name, images, severity, seed, indices) -> np.ndarray:
    """``images [N, H, W, 1]`` in [0, 1] (float32) corrupted image by image; ``indices`` seed each image."""
    images = np.asarray(images)
    out = np.empty_like(images, dtype=np.float32)
    for i, index in enumerate(np.asarray(indices)):
        out[i, ..., 0] = corrupt(name, images[i, ..., 0], severity, generator(seed, name, severity, index))
    return out


# -- the corruptions, each ``f(x, c, s, rng)`` on a float64 grey image -------------------------------

def _gaussian_noise(x, c, s, rng):
    return x + rng.normal(size=x.shape, scale=c)


def _shot_noise(x, c, s, rng):
    return rng.poisson(x * c) / c


def _impulse_noise(x, c, s, rng):
    # scikit-image's random_noise(mode='s&p', amount=c): a fraction c of pixels, half salt, half pepper
    flipped = rng.random(x.shape) <= c
    salted = rng.random(x.shape) <= 0.5
    out = x.copy()
    out[flipped & salted] = 1.0
    out[flipped & ~salted] = 0.0
    return out


def _speckle_noise(x, c, s, rng):
    return x + x * rng.normal(size=x.shape, scale=c)


def _gaussian(x, sigma):
    """scikit-image's ``gaussian`` (nearest edges, truncated at 4 σ)."""
    return ndimage.gaussian_filter(x, sigma, mode="nearest", truncate=4.0)


def _gaussian_blur(x, c, s, rng):
    return _gaussian(x, c * s)


def _odd(n):
    n = max(1, int(round(n)))
    return n if n % 2 else n + 1


def disk_kernel(radius, alias_blur, s):
    """Hendrycks' anti-aliased disk at size factor ``s``: a disk of ``radius`` on a grid of half-width
    8 (or the radius when it is larger), smoothed by OpenCV's Gaussian blur of ``alias_blur`` with a
    3×3 (5×5 past 8) kernel; all four are pixel sizes, × ``s``."""
    small = radius <= 8  # Hendrycks: a grid of half-width 8 and a 3×3 alias kernel, or the radius and 5×5
    half = (8 if small else radius) * s
    ksize = _odd((3 if small else 5) * s)
    span = np.arange(-int(round(half)), int(round(half)) + 1)
    xx, yy = np.meshgrid(span, span)
    aliased = ((xx ** 2 + yy ** 2) <= (radius * s) ** 2).astype(np.float64)
    aliased /= aliased.sum()
    return _separable(aliased, _cv2_gaussian_taps(ksize, alias_blur * s))


def _cv2_gaussian_taps(ksize, sigma):
    """OpenCV's ``getGaussianKernel(ksize, sigma)``."""
    i = np.arange(ksize) - (ksize - 1) / 2
    taps = np.exp(-(i ** 2) / (2 * sigma ** 2))
    return taps / taps.sum()


def _separable(x, taps):
    """``x`` filtered by ``taps`` along both axes, OpenCV's reflect-101 edges (scipy's ``mirror``)."""
    return ndimage.correlate1d(ndimage.correlate1d(x, taps, axis=0, mode="mirror"), taps, axis=1, mode="mirror")


def _defocus_blur(x, c, s, rng):
    # OpenCV's filter2D: a correlation with reflect-101 edges, through the DFT for a large kernel as
    # OpenCV does (the disk is symmetric, so correlation and convolution agree)
    kernel = disk_kernel(c[0], c[1], s)
    r = kernel.shape[0] // 2
    return signal.fftconvolve(np.pad(x, r, mode="reflect"), kernel[::-1, ::-1], mode="valid")


def _glass_blur(x, c, s, rng):
    # Hendrycks' loop "swaps" x[h, w] and x[h', w'] of an (H, W, 3) array with a tuple assignment of two
    # views, which copies x[h', w'] into x[h, w] and leaves x[h', w'] as it was: CIFAR-10-C was made so,
    # and so is this (each pixel, in a backward sweep, takes the value of a random neighbour).
    sigma, delta, iterations = c[0] * s, max(1, int(round(c[1] * s))), c[2]
    h, w = x.shape
    x = np.floor(_gaussian(x, sigma) * 255).astype(np.uint8)  # np.uint8(...): truncation, as the original
    rows, cols = np.arange(h - delta, delta, -1), np.arange(w - delta, delta, -1)
    shifts = rng.integers(-delta, delta, size=(iterations, len(rows), len(cols), 2))
    for it in range(iterations):
        for a, row in enumerate(rows):
            dx, dy = shifts[it, a, :, 0], shifts[it, a, :, 1]
            for b, col in enumerate(cols):
                x[row, col] = x[row + dy[b], col + dx[b]]
    return _gaussian(x / 255.0, sigma)


def clipped_zoom(x, factor):
    """The centre of ``x`` zoomed by ``factor`` (scipy's linear zoom), cropped back to ``x``'s size."""
    h = x.shape[0]
    crop = int(np.ceil(h / factor))
    top = (h - crop) // 2
    zoomed = ndimage.zoom(x[top:top + crop, top:top + crop], (factor, factor), order=1)
    trim = (zoomed.shape[0] - h) // 2
    return zoomed[trim:trim + h, trim:trim + h]


def _zoom_blur(x, c, s, rng):
    out = np.zeros_like(x)
    for factor in c:
        out += clipped_zoom(x, factor)
    return (x + out) / (len(c) + 1)


def plasma_fractal(mapsize, wibbledecay, rng):
    """Hendrycks' diamond-square height map (side ``mapsize``, a power of two) in [0, 1]."""
    field = np.empty((mapsize, mapsize), np.float64)
    field[0, 0] = 0
    step, wibble = mapsize, 100.0

    def wibbled_mean(array):
        return array / 4 + wibble * rng.uniform(-wibble, wibble, array.shape)

    while step >= 2:
        corners = field[0:mapsize:step, 0:mapsize:step]
        square = corners + np.roll(corners, -1, axis=0)
        square += np.roll(square, -1, axis=1)
        field[step // 2:mapsize:step, step // 2:mapsize:step] = wibbled_mean(square)
        down_right = field[step // 2:mapsize:step, step // 2:mapsize:step]
        up_left = field[0:mapsize:step, 0:mapsize:step]
        left = down_right + np.roll(down_right, 1, axis=0) + up_left + np.roll(up_left, -1, axis=1)
        field[0:mapsize:step, step // 2:mapsize:step] = wibbled_mean(left)
        top = down_right + np.roll(down_right, 1, axis=1) + up_left + np.roll(up_left, -1, axis=0)
        field[step // 2:mapsize:step, 0:mapsize:step] = wibbled_mean(top)
        step //= 2
        wibble /= wibbledecay
    field -= field.min()
    return field / field.max()


def _fog(x, c, s, rng):
    h, w = x.shape
    size = 1 << max(5, math.ceil(math.log2(max(h, w))))  # the smallest power of two that covers the image
    peak = x.max()
    x = x + c[0] * plasma_fractal(size, c[1], rng)[:h, :w]
    return x * peak / (peak + c[0])


def _brightness(x, c, s, rng):
    return x + c  # HSV value + c on a grey image (its value is its grey, its saturation 0)


def _contrast(x, c, s, rng):
    mean = x.mean()
    return (x - mean) * c + mean


def box_resize_matrix(size_in, size_out):
    """The ``(size_out, size_in)`` matrix of Pillow's BOX resize along one axis (``ImagingResample``):
    each output pixel averages the input pixels whose centres fall in its box (scaled to at least one
    input pixel), with no fractional weights."""
    scale = size_in / size_out
    support = 0.5 * max(scale, 1.0)
    matrix = np.zeros((size_out, size_in))
    for out in range(size_out):
        centre = (out + 0.5) * scale
        low, high = max(int(centre - support + 0.5), 0), min(int(centre + support + 0.5), size_in)
        offsets = (np.arange(low, high) - centre + 0.5) / max(scale, 1.0)
        weights = ((offsets >= -0.5) & (offsets < 0.5)).astype(np.float64)
        matrix[out, low:high] = weights / weights.sum()
    return matrix


def _pixelate(x, c, s, rng):
    h, w = x.shape
    small = (int(h * c), int(w * c))
    down = box_resize_matrix(h, small[0]) @ x @ box_resize_matrix(w, small[1]).T
    return box_resize_matrix(small[0], h) @ down @ box_resize_matrix(small[1], w).T


def _jpeg_compression(x, c, s, rng):
    import tensorflow as tf

    grey = np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)[..., None]
    coded = tf.io.encode_jpeg(grey, quality=int(c))
    decoded = tf.io.decode_jpeg(coded, channels=1, dct_method="INTEGER_ACCURATE").numpy()  # Pillow's decoder
    return decoded[..., 0] / 255.0


def affine_from_points(source, target):
    """The 2×3 affine map that takes three ``source`` points (x, y) to ``target`` (OpenCV's getAffineTransform)."""
    a = np.hstack([source, np.ones((3, 1))])
    return np.linalg.solve(a, target).T


def _elastic_transform(x, c, s, rng):
    h, w = x.shape
    size = min(h, w)
    alpha, sigma, affine = c[0] * size, c[1] * size, c[2] * size
    centre = np.float32((h, w)) // 2
    square = min(h, w) // 3
    points = np.float32([centre + square, [centre[0] + square, centre[1] - square], centre - square])
    moved = points + rng.uniform(-affine, affine, size=points.shape).astype(np.float32)
    matrix = affine_from_points(points, moved)
    # OpenCV's warpAffine samples the source at the inverse map of each output pixel (x, y).
    inverse = np.linalg.inv(np.vstack([matrix, [0, 0, 1]]))[:2]
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float64)
    src_x = inverse[0, 0] * cols + inverse[0, 1] * rows + inverse[0, 2]
    src_y = inverse[1, 0] * cols + inverse[1, 1] * rows + inverse[1, 2]
    x = ndimage.map_coordinates(x, [src_y, src_x], order=1, mode="mirror")
    dx = ndimage.gaussian_filter(rng.uniform(-1, 1, size=(h, w)), sigma, mode="reflect", truncate=3) * alpha
    dy = ndimage.gaussian_filter(rng.uniform(-1, 1, size=(h, w)), sigma, mode="reflect", truncate=3) * alpha
    return ndimage.map_coordinates(x, [rows + dy, cols + dx], order=1, mode="reflect")


_FUNCTIONS = {name: globals()[f"_{name}"] for name in CONSTANTS}


@functools.cache
def register_all():
    """Register every corruption as the perturbation ``c_<name>`` at severities 0 (clean) to 5."""
    import tensorflow as tf

    from bioflow import noise

    def make(name):
        def perturb(x, severity, ctx):
            if severity == 0:
                return x
            if name == "jpeg_compression":  # TensorFlow's own JPEG codec, in the graph
                quality = int(CONSTANTS[name][int(severity) - 1])
                grey = tf.cast(tf.round(tf.clip_by_value(x, 0, 1) * 255), tf.uint8)
                coded = tf.map_fn(lambda im: tf.io.decode_jpeg(tf.io.encode_jpeg(im, quality=quality), channels=1,
                                                                       dct_method="INTEGER_ACCURATE"),
                                  grey)
                return tf.ensure_shape(tf.cast(coded, tf.float32) / 255.0, x.shape)
            out = tf.numpy_function(lambda images, indices: corrupt_batch(name, images, int(severity), ctx.seed,
                                                                         indices),
                                    [x, ctx.indices], tf.float32, stateful=False)
            return tf.ensure_shape(out, x.shape)
        return perturb

    for name in ALL:
        noise.register(PREFIX + name, levels=range(6), valid=(0.0, 5.0), stochastic=name in RANDOM, discrete=range(6),
                       description=f"Hendrycks' {name.replace('_', ' ')} at severity 0-5")(make(name))


register_all()
