"""Benchmark FilterBankConv: the direct convolution against the FFT route, side by side.

    python tools/bench_filterbank.py                 # the paper's Gabor bank, 224x224, batch 8
    python tools/bench_filterbank.py --sweep         # ratio per kernel size (sets FFT_MIN_KSIZE)

Prints the time per image of each method, the speed-up ratio (direct / fft) and the largest
output difference relative to the output scale.
"""
import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tensorflow as tf  # noqa: E402

from _timing import median_seconds  # noqa: E402
from bioflow.components import FilterBankConv, Gabor  # noqa: E402


def compare(bank, size, batch, channels, repeats):
    """Time both methods on the same input; return (direct s/img, fft s/img, relative max diff)."""
    x = tf.random.stateless_uniform((batch, size, size, channels), seed=(0, 1))
    outputs, seconds = {}, {}
    for method in ("direct", "fft"):
        layer = FilterBankConv(bank, method=method)
        fn = tf.function(lambda t, layer=layer: layer(t))
        outputs[method] = fn(x)
        seconds[method] = median_seconds(lambda fn=fn: fn(x).numpy(), repeats) / batch
    scale = float(tf.reduce_max(tf.abs(outputs["direct"])))
    diff = float(tf.reduce_max(tf.abs(outputs["direct"] - outputs["fft"]))) / max(scale, 1e-12)
    return seconds["direct"], seconds["fft"], diff


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--channels", type=int, default=1, help="input channels (the bottleneck width N)")
    parser.add_argument("--ksize", type=int, default=63)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sweep", action="store_true", help="ratio for ksize 3..63 instead")
    args = parser.parse_args()
    print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPUs, input {args.batch}x{args.size}x{args.size}x"
          f"{args.channels}, 24 Gabor kernels")
    sizes = (3, 5, 7, 9, 11, 15, 21, 31, 63) if args.sweep else (args.ksize,)
    print(f"{'ksize':>5}  {'direct ms/img':>13}  {'fft ms/img':>10}  {'ratio':>6}  {'max rel diff':>12}")
    for k in sizes:
        bank = Gabor(ksize=k, sigmas=[max(1.0, k / 8)])
        direct, fft, diff = compare(bank, args.size, args.batch, args.channels, args.repeats)
        print(f"{k:>5}  {direct * 1e3:>13.2f}  {fft * 1e3:>10.2f}  {direct / fft:>5.2f}x  {diff:>12.2e}")


if __name__ == "__main__":
    main()
