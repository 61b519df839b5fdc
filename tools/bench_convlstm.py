"""Benchmark the faithful recurrent block: OneStepConvLSTM2D against Keras' ConvLSTM2D.

Both layers get the same weights and the same images; Keras' layer runs a one-step sequence
from a zero state, as the follow-up study did. Prints time per image, the ratio and the largest
output difference.

    python tools/bench_convlstm.py                       # 24 filters 63x63 on N=2 channels, 64x64
    python tools/bench_convlstm.py --ksize 3 --size 224  # a 3x3 ConvLSTM at full size
"""
import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from _timing import median_seconds  # noqa: E402
from bioflow.components import OneStepConvLSTM2D  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--channels", type=int, default=2)
    parser.add_argument("--filters", type=int, default=24)
    parser.add_argument("--ksize", type=int, default=63)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    x = tf.random.stateless_uniform((args.batch, args.size, args.size, args.channels), seed=(0, 1))
    keras_layer = keras.layers.ConvLSTM2D(args.filters, args.ksize, padding="same")
    ours = OneStepConvLSTM2D(args.filters, args.ksize, padding="same")
    ref = keras_layer(x[:, None])
    ours.build(x.shape)
    ours.set_weights(keras_layer.get_weights())
    keras_fn = tf.function(lambda t: keras_layer(t[:, None]))
    ours_fn = tf.function(lambda t: ours(t))
    diff = float(tf.reduce_max(tf.abs(ours_fn(x) - ref)))
    t_keras = median_seconds(lambda: keras_fn(x).numpy(), args.repeats) / args.batch
    t_ours = median_seconds(lambda: ours_fn(x).numpy(), args.repeats) / args.batch
    print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPUs, input {args.batch}x{args.size}x{args.size}x"
          f"{args.channels}, {args.filters} filters {args.ksize}x{args.ksize} (method {ours.method})")
    print(f"keras ConvLSTM2D   {t_keras * 1e3:10.2f} ms/img")
    print(f"OneStepConvLSTM2D  {t_ours * 1e3:10.2f} ms/img")
    print(f"ratio {t_keras / t_ours:.2f}x   max abs diff {diff:.2e}")


if __name__ == "__main__":
    main()
