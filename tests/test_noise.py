"""The perturbation suite against independent numpy/scipy versions of the formulas in docs/science.md."""
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from scipy.ndimage import gaussian_filter

from bioflow import config, corruptions, noise  # noqa: F401 (corruptions: the c_<name> perturbations are noises too)
from bioflow.errors import BioflowError

BG = noise.BACKGROUND
RNG = np.random.default_rng(0)
X = RNG.uniform(0.05, 0.95, size=(6, 20, 20, 1)).astype(np.float32)


def run(name, level, images=X, **kwargs):
    return noise.apply(name, images, level, **kwargs).numpy()


def scipy_gauss(images, sigma):
    return np.stack([gaussian_filter(im[..., 0].astype(np.float64), sigma, mode="constant", cval=BG, truncate=4.0)
                     for im in images])[..., None]


@pytest.mark.parametrize("sigma", [1.0, 2.5, 10.0, 35.0, 100.0])  # 35 and 100: 4σ beyond the 20-pixel image
def test_low_pass_equals_scipy_constant_padding(sigma):
    np.testing.assert_allclose(run("low_pass", sigma), np.clip(scipy_gauss(X, sigma), 0, 1), atol=1e-6)


@pytest.mark.parametrize("sigma", [1.0, 10.0, 100.0])
def test_high_pass_formula(sigma):
    h = X.astype(np.float64) - scipy_gauss(X, sigma)
    expected = h + (BG - h.mean(axis=(1, 2, 3), keepdims=True))
    np.testing.assert_allclose(run("high_pass", sigma), np.clip(expected, 0, 1), atol=1e-6)


@pytest.mark.parametrize("name, level, formula", [
    ("contrast", 0.1, lambda x: 0.45 + 0.1 * x),
    ("darken", -0.3, lambda x: x - 0.3),
    ("brighten", 0.6, lambda x: x + 0.6),
    ("invert", 1, lambda x: 1 - x),
    ("rotation", 90, lambda x: np.rot90(x, 1, axes=(1, 2))),
    ("rotation", 270, lambda x: np.rot90(x, 3, axes=(1, 2))),
])
def test_deterministic_formulas(name, level, formula):
    np.testing.assert_allclose(run(name, level), np.clip(formula(X), 0, 1), atol=1e-6)


@pytest.mark.parametrize("name", [n for n in noise.NOISES if n not in ("low_pass", "high_pass", "jpeg_quality")])
def test_identity_at_level_zero(name):
    level = 1 if name == "pixelation" else (1.0 if name == "contrast" else 0.0)
    np.testing.assert_array_equal(run(name, level), X)


@pytest.mark.parametrize("name", [n for n, p in noise.NOISES.items() if p.stochastic])
def test_stochastic_noise_is_a_function_of_seed_level_and_index(name):
    level = noise.get(name).levels[5]
    full = run(name, level, seed=11)
    part = run(name, level, images=X[3:5], seed=11, indices=[3, 4])
    np.testing.assert_array_equal(full[3:5], part)
    np.testing.assert_array_equal(run(name, level, images=X[::-1], seed=11, indices=[5, 4, 3, 2, 1, 0]), full[::-1])
    assert not np.array_equal(run(name, level, seed=12), full)


@pytest.mark.parametrize("name", ["uniform", "gaussian_noise", "phase_scrambling", "phase_scrambling_symmetric"])
def test_change_grows_with_level(name):
    levels = noise.get(name).levels
    changes = [np.abs(run(name, lv) - X).mean() for lv in (levels[2], levels[5], levels[9])]
    assert changes[0] < changes[1] < changes[2]


def test_uniform_stays_within_its_width():
    assert np.abs(run("uniform", 0.2) - X).max() <= 0.2 + 1e-6


def test_gaussian_noise_has_its_standard_deviation():
    flat = np.full((4, 64, 64, 1), 0.5, np.float32)
    diff = run("gaussian_noise", 0.1, images=flat) - 0.5
    assert abs(diff.mean()) < 0.002 and diff.std() == pytest.approx(0.1, rel=0.02)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_salt_and_pepper_hits_the_expected_fraction(p):
    big = np.full((8, 64, 64, 1), 0.5, np.float32)
    out = run("salt_and_pepper", p, images=big)
    assert (out == 1).mean() == pytest.approx(p / 2, abs=0.01)
    assert (out == 0).mean() == pytest.approx(p / 2, abs=0.01)


def original_phase_scrambling(image, shifts):
    """Steps 1-4 of the original's scramble_phases/shift_phases, in float64 numpy, for one [H, W] image."""
    spectrum = np.fft.fftshift(np.fft.fft2(image))
    amplitude, phase = np.abs(spectrum), np.angle(spectrum)
    flat = phase[1:, 1:].flatten()  # row-major, length L = (H-1)(W-1)
    half = len(flat) // 2
    flat[:half] += shifts
    flat[len(flat) - half:] -= shifts  # the same shifts, in the same order
    phase[1:, 1:] = flat.reshape(phase[1:, 1:].shape)
    return np.clip(np.real(np.fft.ifft2(np.fft.ifftshift(amplitude * np.exp(1j * phase)))), 0, 1)


@pytest.mark.parametrize("shape", [(32, 32), (224, 224), (20, 21), (31, 33)])
def test_phase_scrambling_equals_the_original_algorithm(shape):
    h, w = shape
    rng = np.random.default_rng(h * w)
    x = rng.uniform(0, 1, size=(3, h, w, 1)).astype(np.float32)
    width = 108.0
    shifts = (rng.uniform(size=(3, (h - 1) * (w - 1) // 2)) - 0.5) * 2 * width / 180 * np.pi
    ours = np.clip(noise.scramble_phases(tf.constant(x), tf.constant(shifts, tf.float32)).numpy(), 0, 1)
    expected = np.stack([original_phase_scrambling(im[..., 0].astype(np.float64), s) for im, s in zip(x, shifts)])
    np.testing.assert_allclose(ours[..., 0], expected, atol=1e-5)


def test_registered_phase_scrambling_uses_the_per_image_shift_vector():
    ctx = noise.Context(seed=3, level=144.0, background=BG, indices=tf.constant([7, 2], tf.int64))
    shifts = noise.phase_shifts(144.0, ctx, 20, 20).numpy()
    assert shifts.shape == (2, 19 * 19 // 2)
    assert np.abs(shifts).max() <= np.radians(144.0) and np.abs(shifts).max() > 0.9 * np.radians(144.0)
    expected = np.stack([original_phase_scrambling(im[..., 0].astype(np.float64), s)
                         for im, s in zip(X[[0, 1]], shifts)])
    np.testing.assert_allclose(run("phase_scrambling", 144.0, images=X[:2], seed=3, indices=[7, 2])[..., 0],
                               expected, atol=1e-5)


def test_original_phase_scrambling_keeps_dc_at_even_sizes_and_shifts_it_at_odd_sizes():
    even = RNG.uniform(0.2, 0.8, size=(2, 20, 20, 1)).astype(np.float32)
    odd = RNG.uniform(0.2, 0.8, size=(2, 21, 20, 1)).astype(np.float32)
    shifts = lambda img: tf.fill([2, (img.shape[1] - 1) * (img.shape[2] - 1) // 2], 1.0)  # noqa: E731
    assert noise.scramble_phases(even, shifts(even)).numpy().mean(axis=(1, 2, 3)) == pytest.approx(
        even.mean(axis=(1, 2, 3)), abs=1e-5)
    assert not np.allclose(noise.scramble_phases(odd, shifts(odd)).numpy().mean(axis=(1, 2, 3)),
                           odd.mean(axis=(1, 2, 3)), atol=1e-3)


def test_original_phase_scrambling_is_milder_and_loses_contrast_unlike_the_symmetric_one():
    smooth = np.stack([gaussian_filter(RNG.uniform(size=(64, 64)), 3) for _ in range(4)])
    x = ((smooth - smooth.min()) / np.ptp(smooth))[..., None].astype(np.float32)
    original = run("phase_scrambling", 180.0, images=x)
    symmetric = run("phase_scrambling_symmetric", 180.0, images=x)
    assert original.std() / x.std() < 0.8 < symmetric.std() / x.std()
    corr = lambda a: np.corrcoef(a.ravel(), x.ravel())[0, 1]  # noqa: E731
    assert corr(run("phase_scrambling", 108.0, images=x)) > corr(run("phase_scrambling_symmetric", 108.0, images=x))


@pytest.mark.parametrize("width", [20, 21])  # even and odd: the self-paired columns differ
def test_symmetric_phase_scrambling_keeps_amplitudes_and_stays_real(width):
    x = RNG.uniform(0.05, 0.95, size=(3, 18, width, 1)).astype(np.float32)
    p = noise.get("phase_scrambling_symmetric")
    ctx = noise.Context(seed=0, level=90.0, background=BG, indices=np.arange(len(x), dtype=np.int64))
    raw = p.fn(x, 90.0, ctx).numpy()[..., 0]  # before clipping
    np.testing.assert_allclose(np.abs(np.fft.fft2(raw)), np.abs(np.fft.fft2(x[..., 0])), rtol=1e-3, atol=1e-3)
    assert raw.mean(axis=(1, 2)) == pytest.approx(x[..., 0].mean(axis=(1, 2)), abs=1e-5)  # DC kept
    assert np.abs(raw - x[..., 0]).mean() > 0.05  # and the image did change


@pytest.mark.parametrize("kwargs, message", [
    (dict(name="gaussian", level=0.1), "valid noises are"),
    (dict(name="contrast", level=1.5), "out of range for noise 'contrast': valid levels are in [0.0, 1.0]"),
    (dict(name="rotation", level=45), "use one of 0, 90, 180, 270"),
    (dict(name="uniform", level=0.1, images=X * 2), "must be in [0, 1]"),
    (dict(name="uniform", level=0.1, images=X[..., 0]), "[N, H, W, 1]"),
])
def test_bad_input(kwargs, message):
    with pytest.raises(BioflowError) as info:
        noise.apply(kwargs.pop("name"), kwargs.pop("images", X), kwargs.pop("level"))
    assert message in str(info.value)


def test_users_can_register_a_perturbation(monkeypatch):
    monkeypatch.setattr(noise.NOISES, "_entries", dict(noise.NOISES._entries))  # forgotten afterwards
    noise.register("posterize", levels=[2, 4, 8], valid=(2, 256))(lambda x, n, ctx: tf.round(x * (n - 1)) / (n - 1))
    np.testing.assert_allclose(run("posterize", 2), np.round(X))
    assert noise.NoiseSuite(noises=["posterize"]).items() == [("posterize", (2.0, 4.0, 8.0))]


def test_suites_declared_in_gin():
    config.parse(["noise/paper"])
    import gin
    paper = gin.get_configurable(noise.NoiseSuite)()
    assert paper.noises == noise.PAPER and dict(paper.items())["high_pass"][0] == pytest.approx(100.0)
    config.parse(["noise/extended"], ["NoiseSuite.levels = {'uniform': [0.0, 0.5]}"])
    extended = gin.get_configurable(noise.NoiseSuite)()
    assert len(extended.noises) == 15 and dict(extended.items())["uniform"] == (0.0, 0.5)
    assert all(len(levels) == 11 for name, levels in extended.items() if name not in ("rotation", "invert", "uniform"))


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_rotation_of_non_square_images_matches_numpy(degrees):
    x = RNG.uniform(size=(2, 5, 7, 1)).astype(np.float32)
    np.testing.assert_array_equal(run("rotation", degrees, images=x), np.rot90(x, degrees // 90, axes=(1, 2)))


def test_every_noise_works_at_several_image_sizes_in_one_process():
    """Each size gets its own traced graph: 32, 64 and 224 in a row, then 32 again."""
    for name, p in noise.NOISES.items():
        level = p.levels[len(p.levels) // 2]
        for size in (32, 64, 224, 32):
            images = RNG.uniform(0.05, 0.95, size=(2, size, size, 1)).astype(np.float32)
            out = run(name, level, images=images)
            assert out.shape == images.shape and np.isfinite(out).all(), (name, size)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_pixels_are_an_error(bad):
    images = X.copy()
    images[2, 3, 4, 0] = bad
    with pytest.raises(BioflowError, match="must be finite: 1 pixel values are NaN or infinite"):
        noise.apply("contrast", images, 0.5)


@pytest.mark.parametrize("kwargs, message", [
    (dict(level="0.5"), "Level '0.5' of noise 'uniform' is not a number"),
    (dict(level=None), "Level None of noise 'uniform' is not a number"),
    (dict(level=[0.5]), "is not a number"),
    (dict(level=float("nan")), "out of range"),
    (dict(images=np.zeros((0, 8, 8, 1), np.float32)), "no images to perturb"),
    (dict(images=[["a"]]), "Images must be a float [N, H, W, 1]"),
    (dict(indices=[0.5, 1, 2, 3, 4, 5]), "indices must be integers, got float64"),
    (dict(indices=["a"] * 6), "indices must be integers"),
    (dict(indices=[0, 1]), "indices has shape (2,) for 6 images"),
])
def test_bad_levels_batches_and_indices_give_bioflow_errors(kwargs, message):
    args = {"images": X, "level": 0.5, "indices": None, **kwargs}
    with pytest.raises(BioflowError) as info:
        noise.apply("uniform", args["images"], args["level"], indices=args["indices"])
    assert message in str(info.value)


def test_chunked_batches_equal_one_batch():
    images = RNG.uniform(0.05, 0.95, size=(7, 24, 24, 1)).astype(np.float32)
    for name in ("uniform", "phase_scrambling", "low_pass"):
        level = noise.get(name).levels[5]
        whole = run(name, level, images=images, seed=3)
        chunked = run(name, level, images=images, seed=3, chunk_bytes=3 * 24 * 24 * 4)  # chunks of 3 images
        np.testing.assert_array_equal(chunked, whole)


PEAK_MEMORY = """
import json, re, sys
import numpy as np
from bioflow import corruptions, noise  # noqa: F401 (corruptions: registers the c_<name> perturbations)

def status(key):
    return int(re.search(rf"{key}:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) * 1024

small = np.random.default_rng(0).random((4, 224, 224, 1), dtype=np.float32)
images = np.random.default_rng(0).random((int(sys.argv[1]), 224, 224, 1), dtype=np.float32)
rise = {}
for name, p in noise.NOISES.items():
    level = p.levels[len(p.levels) // 2]
    noise.apply(name, small, level)  # graphs and thread pools exist before the measurement
    open("/proc/self/clear_refs", "w").write("5")  # resets the peak resident size (VmHWM)
    base = status("VmRSS")
    out = noise.apply(name, images, level)
    rise[name] = (status("VmHWM") - base) / images.nbytes
    del out
print(json.dumps(rise))
"""


@pytest.mark.slow
@pytest.mark.skipif(not pathlib.Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc peak-RSS reset")
def test_peak_memory_of_a_large_batch_stays_a_small_multiple_of_the_input():
    """1,000 images of 224×224 (192 MiB): the output plus chunk-sized intermediates, for every noise."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-c", PEAK_MEMORY, "1000"], capture_output=True, text=True, env=env,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    rise = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(rise) == set(noise.NOISES)
    too_big = {name: round(r, 2) for name, r in rise.items() if r > 1.75}
    assert not too_big, f"peak memory rise, in multiples of the input: {too_big}"
