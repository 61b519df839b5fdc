"""Benchmark: the batched TF noise suite against a per-image numpy/scipy implementation.

The baseline below is a straightforward per-image version of the suite in docs/science.md, written
for this benchmark (the way the original applied perturbations inside an ImageDataGenerator). Both run
on the same 224×224 images at each perturbation's middle level, in one process. The TF side runs
as evaluation runs it: the traced graph of ``noise.compiled`` on a tensor already in TF (no
per-call conversion, input checks or copy back). Prints images/s per perturbation and overall,
and the ratios (TF / baseline). The TF time is the median of ``--repeats`` runs.

    python tools/bench_noise.py [--images 64] [--size 224]
"""
import argparse
import math
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from scipy.ndimage import gaussian_filter  # noqa: E402

from bioflow import noise  # noqa: E402

BG = noise.BACKGROUND


def _phase(x, width, rng):
    """The original's phase scrambling (docs/science.md): not conjugate-symmetric, real part kept."""
    spectrum = np.fft.fftshift(np.fft.fft2(x))
    amplitude, phase = np.abs(spectrum), np.angle(spectrum)
    flat = phase[1:, 1:].flatten()
    half = len(flat) // 2
    shifts = (rng.uniform(size=half) - 0.5) * 2 * width / 180 * math.pi
    flat[:half] += shifts
    flat[len(flat) - half:] -= shifts
    phase[1:, 1:] = flat.reshape(phase[1:, 1:].shape)
    return np.real(np.fft.ifft2(np.fft.ifftshift(amplitude * np.exp(1j * phase))))


def _high_pass(x, s):
    h = x - gaussian_filter(x, s, mode="constant", cval=BG, truncate=4.0)
    return h + (BG - h.mean())


BASELINE = {  # per image: f(x [H, W] in [0, 1], level, rng)
    "uniform": lambda x, w, rng: x + rng.uniform(-w, w, x.shape),
    "salt_and_pepper": lambda x, p, rng: np.where(
        (u := rng.uniform(size=x.shape)) >= 1 - p / 2, 1.0, np.where(u < p / 2, 0.0, x)),
    "high_pass": lambda x, s, rng: _high_pass(x, s),
    "low_pass": lambda x, s, rng: gaussian_filter(x, s, mode="constant", cval=BG, truncate=4.0),
    "contrast": lambda x, c, rng: (1 - c) / 2 + c * x,
    "phase_scrambling": _phase,
    "darken": lambda x, v, rng: x + v,
    "brighten": lambda x, v, rng: x + v,
    "rotation": lambda x, d, rng: np.rot90(x, int(d) // 90),
    "invert": lambda x, v, rng: 1 - x if v >= 0.5 else x,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=3, help="TF timings per perturbation (median)")
    args = parser.parse_args()
    images = np.random.default_rng(0).uniform(size=(args.images, args.size, args.size, 1)).astype(np.float32)
    tensor, indices = tf.constant(images), tf.range(args.images, dtype=tf.int64)
    print(f"{args.images} images of {args.size}x{args.size}, middle level of each perturbation")
    print(f"{'noise':<17} {'level':>8} {'baseline img/s':>15} {'bioflow img/s':>14} {'ratio':>7}")
    total_base = total_tf = 0.0
    for name in noise.PAPER:
        levels = noise.get(name).levels
        level = levels[len(levels) // 2]
        rng = np.random.default_rng(0)
        start = time.perf_counter()
        for im in images:
            np.clip(BASELINE[name](im[..., 0].astype(np.float64), level, rng), 0, 1)
        t_base = time.perf_counter() - start
        perturb = noise.compiled(name, float(level), 0, BG, args.size, args.size)
        float(tf.reduce_sum(perturb(tensor, indices)))  # warm-up: traces the graph for this shape and level
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            float(tf.reduce_sum(perturb(tensor, indices)))
            times.append(time.perf_counter() - start)
        t_tf = float(np.median(times))
        total_base, total_tf = total_base + t_base, total_tf + t_tf
        print(f"{name:<17} {level:>8.3g} {args.images / t_base:>15.0f} {args.images / t_tf:>14.0f} "
              f"{t_base / t_tf:>6.1f}x")
    n = args.images * len(noise.PAPER)
    print(f"{'overall':<17} {'':>8} {n / total_base:>15.0f} {n / total_tf:>14.0f} {total_base / total_tf:>6.1f}x")


if __name__ == "__main__":
    main()
