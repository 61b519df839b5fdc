"""Benchmark: is the input pipeline the bottleneck of training?

Trains the quickstart's tiny network two ways, side by side in one process:

* **pipeline**: the full tf.data pipeline from PNG files (decode, luminance, upscale
  32→64 with nearest, ``standard`` augmentation, normalisation), as ``bioflow train`` runs it;
* **in-memory**: the same number of already-prepared batches held as tensors.

Prints steps/s of each and their ratio (pipeline / in-memory); 1.0 means the pipeline costs
nothing. ``--size`` sets the model's input size.

    python tools/bench_input_pipeline.py
"""
import argparse
import os
import pathlib
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from bioflow import config  # noqa: E402
from bioflow.data import DataPipeline, ImageFolder  # noqa: E402
from bioflow.data.synthetic import CLASS_NAMES, generate  # noqa: E402
from bioflow.model import build_model  # noqa: E402
from bioflow.training.loop import Trainer  # noqa: E402
from bioflow.training.optimizers import make_optimizer  # noqa: E402


def write_folder(root, n_train, n_test):
    """The synthetic set as RGB PNG files in an image folder (so that decoding is real work)."""
    for split, n, seed in (("train", n_train, 0), ("test", n_test, 1)):
        images, labels = generate(n, seed)
        for i, (image, label) in enumerate(zip(images, labels)):
            path = root / split / CLASS_NAMES[label] / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            tf.io.write_file(str(path), tf.io.encode_png(np.repeat(image, 3, axis=-1)))


def steps_per_second(trainer, dataset, steps):
    """Steps/s over ``steps`` training steps (after two warm-up steps)."""
    it = iter(trainer.distribute(dataset))
    for _ in range(2):
        trainer._train_step(next(it))
    start = time.perf_counter()
    for _ in range(steps):
        [float(t) for t in trainer._train_step(next(it))]
    return steps / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=64, help="model input size (images are 32x32)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    n_train = args.batch * (args.steps + 2)
    config.parse(["quickstart"], [f"build_model.input_shape = ({args.size}, {args.size}, 1)"])
    model = build_model()
    opt, base = make_optimizer("RMSprop", 1e-3, 1e-6)
    trainer = Trainer(tf.distribute.get_strategy(), model, opt, base, args.batch)
    with tempfile.TemporaryDirectory() as tmp:
        write_folder(pathlib.Path(tmp), n_train, args.batch)
        pipeline = DataPipeline(ImageFolder(tmp), augmentation="standard")
        pipeline.prepare(args.size)
        full = pipeline.train_dataset(args.batch, 0, 0)
        batches = [(x, y) for x, y in full]  # the same batches, prepared in advance
        memory = tf.data.Dataset.from_tensor_slices((tf.stack([b[0] for b in batches]),
                                                     tf.stack([b[1] for b in batches])))
        rates = {}
        # Alternate the two, twice, so that machine noise hits both alike.
        for name, ds in (("pipeline", full), ("in-memory", memory), ("pipeline", full), ("in-memory", memory)):
            rates.setdefault(name, []).append(steps_per_second(trainer, ds, args.steps))
    pipe, mem = max(rates["pipeline"]), max(rates["in-memory"])
    print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPUs, tiny Gabor VGG-16 at {args.size}x{args.size}, "
          f"batch {args.batch}, {args.steps} steps")
    print(f"pipeline   {pipe:7.2f} steps/s  (PNG decode, luminance, upscale, augment, normalise)")
    print(f"in-memory  {mem:7.2f} steps/s")
    print(f"ratio {pipe / mem:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
