"""The computed corruptions against transcriptions of Hendrycks' make_cifar_c.py, at 32×32 and 224×224.

Each transcription follows the published code line by line on a grey image, with the size rule
(pixel-size constants × min(H, W) / 32) applied, and with the libraries it used replaced by
independent numpy code (OpenCV's Gaussian kernel, filter2D and warpAffine, scikit-image's gaussian,
HSV through colorsys), or by the library itself where bioflow uses another (Pillow for JPEG and the
BOX resize). Both sides get generators with the same seed, so they draw the same numbers.
"""
import colorsys
import io

import numpy as np
import pytest
import scipy.ndimage
import tensorflow as tf
from PIL import Image

from bioflow import corruptions, noise
from bioflow.corruptions import CONSTANTS


def _images(size, n=2, seed=0):
    """Smooth test pictures with edges, in [0, 1]: a disc and a bar over a gradient, plus noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = []
    for i in range(n):
        disc = ((xx - 0.4 - 0.1 * i) ** 2 + (yy - 0.5) ** 2 < 0.06).astype(float)
        bar = ((np.abs(xx - 0.7) < 0.08) & (yy > 0.2)).astype(float)
        out.append(np.clip(0.2 + 0.3 * xx + 0.4 * disc - 0.15 * bar + 0.05 * rng.normal(size=(size, size)), 0, 1))
    return out


def _gaussian_taps(sigma, truncate):
    radius = int(truncate * sigma + 0.5)
    i = np.arange(-radius, radius + 1)
    taps = np.exp(-0.5 * (i / sigma) ** 2) if sigma > 0 else (i == 0).astype(float)
    return taps / taps.sum()


def _filter_rows_cols(x, taps, pad_mode):
    """Separable correlation with numpy padding ('edge', 'symmetric' or 'reflect')."""
    r = len(taps) // 2
    padded = np.pad(x, r, mode=pad_mode)
    rows = np.stack([np.convolve(row, taps[::-1], mode="valid") for row in padded])
    return np.stack([np.convolve(col, taps[::-1], mode="valid") for col in rows.T]).T


def skimage_gaussian(x, sigma, mode="nearest", truncate=4.0):
    """scikit-image's gaussian: scipy's modes 'nearest' = numpy 'edge', 'reflect' = numpy 'symmetric'."""
    return _filter_rows_cols(x, _gaussian_taps(sigma, truncate), {"nearest": "edge", "reflect": "symmetric"}[mode])


def cv2_gaussian_blur(x, ksize, sigma):
    i = np.arange(ksize) - (ksize - 1) / 2
    taps = np.exp(-(i ** 2) / (2 * sigma ** 2))
    return _filter_rows_cols(x, taps / taps.sum(), "reflect")  # OpenCV's default border: reflect-101


def cv2_filter2d(x, kernel):
    """A correlation, directly: the sum of the kernel's weights times the shifted, reflect-101 padded image."""
    r = kernel.shape[0] // 2
    padded = np.pad(x, r, mode="reflect")
    h, w = x.shape
    out = np.zeros_like(x)
    for i in range(kernel.shape[0]):
        for j in range(kernel.shape[1]):
            if kernel[i, j]:
                out += kernel[i, j] * padded[i:i + h, j:j + w]
    return out


def _sample_bilinear(image, ys, xs, fold):
    """Bilinear samples of ``image`` at (ys, xs), out-of-range indices folded by ``fold``."""
    h, w = image.shape
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    fy, fx = ys - y0, xs - x0
    out = 0
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            out = out + wy * wx * image[fold(y0 + dy, h), fold(x0 + dx, w)]
    return out


def _reflect101(i, n):
    period = 2 * (n - 1)
    i = np.abs(i) % period
    return np.where(i >= n, period - i, i)


def _symmetric(i, n):
    period = 2 * n
    i = np.mod(i, period)
    return np.where(i >= n, period - 1 - i, i)


def disk(radius, alias_blur, s):
    half = 8 * s if radius * s <= 8 * s else radius * s
    ksize = (3 if radius * s <= 8 * s else 5) * s
    ksize = max(1, int(round(ksize)))
    ksize += 1 - ksize % 2
    L = np.arange(-int(round(half)), int(round(half)) + 1)
    X, Y = np.meshgrid(L, L)
    aliased_disk = np.array((X ** 2 + Y ** 2) <= (radius * s) ** 2, dtype=np.float64)
    aliased_disk /= np.sum(aliased_disk)
    return cv2_gaussian_blur(aliased_disk, ksize, alias_blur * s)


def plasma_fractal(mapsize, wibbledecay, rng):
    maparray = np.empty((mapsize, mapsize), dtype=np.float64)
    maparray[0, 0] = 0
    stepsize = mapsize
    wibble = 100

    def wibbledmean(array):
        return array / 4 + wibble * rng.uniform(-wibble, wibble, array.shape)

    def fillsquares():
        cornerref = maparray[0:mapsize:stepsize, 0:mapsize:stepsize]
        squareaccum = cornerref + np.roll(cornerref, shift=-1, axis=0)
        squareaccum += np.roll(squareaccum, shift=-1, axis=1)
        maparray[stepsize // 2:mapsize:stepsize, stepsize // 2:mapsize:stepsize] = wibbledmean(squareaccum)

    def filldiamonds():
        drgrid = maparray[stepsize // 2:mapsize:stepsize, stepsize // 2:mapsize:stepsize]
        ulgrid = maparray[0:mapsize:stepsize, 0:mapsize:stepsize]
        ldrsum = drgrid + np.roll(drgrid, 1, axis=0)
        lulsum = ulgrid + np.roll(ulgrid, -1, axis=1)
        maparray[0:mapsize:stepsize, stepsize // 2:mapsize:stepsize] = wibbledmean(ldrsum + lulsum)
        tdrsum = drgrid + np.roll(drgrid, 1, axis=1)
        tulsum = ulgrid + np.roll(ulgrid, -1, axis=0)
        maparray[stepsize // 2:mapsize:stepsize, 0:mapsize:stepsize] = wibbledmean(tdrsum + tulsum)

    while stepsize >= 2:
        fillsquares()
        filldiamonds()
        stepsize //= 2
        wibble /= wibbledecay
    maparray -= maparray.min()
    return maparray / maparray.max()


def reference(name, x, severity, rng):
    """Hendrycks' formula for ``name`` on a grey image ``x`` in [0, 1], with the size rule."""
    c = CONSTANTS[name][severity - 1]
    size = x.shape[0]
    s = size / 32
    if name == "gaussian_noise":
        return np.clip(x + rng.normal(size=x.shape, scale=c), 0, 1)
    if name == "shot_noise":
        return np.clip(rng.poisson(x * c) / c, 0, 1)
    if name == "impulse_noise":  # scikit-image's s&p: flipped with probability c, salted with 0.5
        out = x.copy()
        flipped, salted = rng.random(x.shape) <= c, rng.random(x.shape) <= 0.5
        out[flipped & salted], out[flipped & ~salted] = 1, 0
        return np.clip(out, 0, 1)
    if name == "speckle_noise":
        return np.clip(x + x * rng.normal(size=x.shape, scale=c), 0, 1)
    if name == "gaussian_blur":
        return np.clip(skimage_gaussian(x, c * s), 0, 1)
    if name == "defocus_blur":
        return np.clip(cv2_filter2d(x, disk(c[0], c[1], s)), 0, 1)
    if name == "glass_blur":
        d = max(1, int(round(c[1] * s)))
        rgb = np.uint8(np.repeat(skimage_gaussian(x, c[0] * s)[..., None], 3, axis=2) * 255)
        for _ in range(c[2]):
            for h in range(size - d, d, -1):
                for w in range(size - d, d, -1):
                    dx, dy = rng.integers(-d, d, size=(2,))
                    h_prime, w_prime = h + dy, w + dx
                    rgb[h, w], rgb[h_prime, w_prime] = rgb[h_prime, w_prime], rgb[h, w]  # views: a copy
        return np.clip(skimage_gaussian(rgb[..., 0] / 255., c[0] * s), 0, 1)
    if name == "zoom_blur":
        out = np.zeros_like(x)
        for zoom_factor in c:
            ch = int(np.ceil(size / zoom_factor))
            top = (size - ch) // 2
            img = scipy.ndimage.zoom(x[top:top + ch, top:top + ch], (zoom_factor, zoom_factor), order=1)
            trim_top = (img.shape[0] - size) // 2
            out += img[trim_top:trim_top + size, trim_top:trim_top + size]
        return np.clip((x + out) / (len(c) + 1), 0, 1)
    if name == "fog":
        max_val = x.max()
        mapsize = 1 << max(5, int(np.ceil(np.log2(size))))
        x = x + c[0] * plasma_fractal(mapsize, c[1], rng)[:size, :size]
        return np.clip(x * max_val / (max_val + c[0]), 0, 1)
    if name == "brightness":
        out = np.empty_like(x)
        for index, v in np.ndenumerate(x):
            hue, sat, val = colorsys.rgb_to_hsv(v, v, v)
            out[index] = colorsys.hsv_to_rgb(hue, sat, min(max(val + c, 0), 1))[0]
        return np.clip(out, 0, 1)
    if name == "contrast":
        means = np.mean(x, keepdims=True)
        return np.clip((x - means) * c + means, 0, 1)
    if name == "pixelate":
        image = Image.fromarray(x.astype(np.float32), mode="F")
        image = image.resize((int(size * c), int(size * c)), Image.BOX).resize((size, size), Image.BOX)
        return np.clip(np.asarray(image, np.float64), 0, 1)
    if name == "jpeg_compression":
        output = io.BytesIO()
        Image.fromarray(np.uint8(np.round(x * 255)), mode="L").save(output, "JPEG", quality=c)
        return np.asarray(Image.open(output), np.float64) / 255
    if name == "elastic_transform":
        c = [size * v for v in c]
        shape_size = x.shape
        center_square = np.float32(shape_size) // 2
        square_size = min(shape_size) // 3
        pts1 = np.float32([center_square + square_size, [center_square[0] + square_size,
                                                         center_square[1] - square_size],
                           center_square - square_size])
        pts2 = pts1 + rng.uniform(-c[2], c[2], size=pts1.shape).astype(np.float32)
        M = np.linalg.solve(np.hstack([pts1, np.ones((3, 1))]), pts2).T  # getAffineTransform
        inverse = np.linalg.inv(np.vstack([M, [0, 0, 1]]))
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
        src_x = inverse[0, 0] * xx + inverse[0, 1] * yy + inverse[0, 2]
        src_y = inverse[1, 0] * xx + inverse[1, 1] * yy + inverse[1, 2]
        image = _sample_bilinear(x, src_y, src_x, _reflect101)  # warpAffine, BORDER_REFLECT_101
        dx = skimage_gaussian(rng.uniform(-1, 1, size=shape_size), c[1], mode="reflect", truncate=3) * c[0]
        dy = skimage_gaussian(rng.uniform(-1, 1, size=shape_size), c[1], mode="reflect", truncate=3) * c[0]
        return np.clip(_sample_bilinear(image, yy + dy, xx + dx, _symmetric), 0, 1)  # map_coordinates, reflect
    raise KeyError(name)




@pytest.mark.parametrize("size", [32, 224])
@pytest.mark.parametrize("name", corruptions.ALL)
def test_each_corruption_matches_its_transcription(name, size):
    images = _images(size, n=2 if size == 32 else 1)
    for severity in (1, 3, 5) if size == 224 else (1, 2, 3, 4, 5):
        for i, x in enumerate(images):
            ours = corruptions.corrupt(name, x, severity, np.random.default_rng([severity, i]))
            theirs = reference(name, x, severity, np.random.default_rng([severity, i]))
            # 1e-4: the bound; both sides are float64 (measured: within 1e-7, where an FFT or
            # an interpolation sums in another order). JPEG: one grey level, the bound for two codecs
            # (measured: equal, TensorFlow decoding with the accurate integer DCT as Pillow does).
            tolerance = 1 / 255 + 1e-9 if name == "jpeg_compression" else 1e-4
            np.testing.assert_allclose(ours, theirs, rtol=0, atol=tolerance, err_msg=f"{name} s{severity}")
            if name not in ("brightness", "contrast", "jpeg_compression") or severity > 1:
                assert np.abs(ours - x).max() > 1e-3, f"{name} at severity {severity} changes nothing"


def test_severities_and_the_size_rule_follow_hendrycks():
    assert len(corruptions.BENCHMARK) == 12 and not set(corruptions.BENCHMARK) & set(corruptions.LEFT_OUT)
    assert set(corruptions.BENCHMARK) | set(corruptions.LEFT_OUT) >= {"motion_blur", "snow", "frost"}
    assert corruptions.scale((224, 224)) == 7.0 and corruptions.scale((32, 32)) == 1.0
    assert CONSTANTS["gaussian_noise"] == (0.04, 0.06, 0.08, 0.09, 0.10)
    assert CONSTANTS["jpeg_compression"] == (80, 65, 58, 50, 40)
    assert len(CONSTANTS["zoom_blur"][4]) == 26 and CONSTANTS["zoom_blur"][4][-1] == pytest.approx(1.25)
    # The error grows with severity: mean absolute change at 32×32, severity 1 against 5.
    x = _images(32, n=1)[0]
    for name in ("gaussian_noise", "defocus_blur", "contrast", "pixelate", "fog"):
        low, high = (np.abs(corruptions.corrupt(name, x, sev, np.random.default_rng(0)) - x).mean() for sev in (1, 5))
        assert high > low, name


@pytest.mark.parametrize("name", [corruptions.PREFIX + n for n in corruptions.ALL])
def test_registered_corruptions_are_deterministic_for_a_seed_across_batch_splits(name):
    corruptions.register_all()
    images = np.stack(_images(32, n=6))[..., None].astype(np.float32)
    whole = noise.apply(name, images, 3, seed=5, indices=np.arange(10, 16)).numpy()
    split = np.concatenate([noise.apply(name, images[:2], 3, seed=5, indices=np.arange(10, 12)).numpy(),
                            noise.apply(name, images[2:], 3, seed=5, indices=np.arange(12, 16)).numpy()])
    np.testing.assert_array_equal(whole, split)
    assert np.abs(whole - images).max() > 1e-3
    np.testing.assert_array_equal(noise.apply(name, images, 0, seed=5).numpy(), images)  # severity 0: clean
    if noise.get(name).stochastic:
        other = noise.apply(name, images, 3, seed=6, indices=np.arange(10, 16)).numpy()
        assert not np.array_equal(whole, other)  # another seed, other draws
    with pytest.raises(Exception, match="not valid for noise"):
        noise.apply(name, images, 2.5, seed=5)


def test_the_registered_corruption_equals_the_numpy_function():
    corruptions.register_all()
    images = np.stack(_images(32, n=3))[..., None].astype(np.float32)
    got = noise.apply("c_fog", images, 4, seed=2, indices=np.arange(3)).numpy()
    want = corruptions.corrupt_batch("fog", images, 4, 2, np.arange(3))
    np.testing.assert_allclose(got, want, atol=1e-6)  # float32 output of the same float64 arithmetic
    jpeg = noise.apply("c_jpeg_compression", images, 2, seed=0).numpy()
    np.testing.assert_allclose(jpeg[..., 0], [corruptions.corrupt("jpeg_compression", x[..., 0], 2, None)
                                             for x in images], atol=1e-6)
    assert tf.reduce_all(tf.math.is_finite(got))
