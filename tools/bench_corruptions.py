"""Benchmark: the computed corruption suite's cost per image against one inference at 224×224.

Side by side in one process, on the same random 224×224 grey images:

* inference: the seed study's Gabor VGG-16 (``gin/model/vgg16_gabor.gin``, built untrained: the time
  does not depend on the weights) predicting the images in batches of ``--batch-size``;
* each corruption of ``bioflow.corruptions`` (12 benchmark + 2 extra) at severity 3, through its
  registered perturbation (``c_<name>``), on the same images.

Prints each corruption's milliseconds per image and its ratio to one inference per image, then the
suite's total (all corruptions at one severity; × 5 for the five severities).

    python tools/bench_corruptions.py [--images 16] [--batch-size 8] [--repeats 3]
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from _timing import batches, median_seconds, parser  # noqa: E402
from bioflow import config, corruptions, noise  # noqa: E402


def main():
    command = parser(__doc__, images=16, batch_size=8)
    command.add_argument("--severity", type=int, default=3)
    args = command.parse_args()
    config.parse(["model/vgg16_gabor"])
    from bioflow.model import build_model

    model = build_model()
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(args.images, 224, 224, 1)).astype(np.float32)
    predict = tf.function(lambda x: model(x, training=False))
    cached = batches(args.batch_size, images * 255.0)

    def infer():
        for x in cached:
            predict(x).numpy()

    t_infer = median_seconds(infer, args.repeats) / args.images
    print(f"{args.images} images of 224x224, batch {args.batch_size}; severity {args.severity}")
    print(f"{'inference (vgg16_gabor)':28s} {1000 * t_infer:9.1f} ms/image")
    total = 0.0
    for name in corruptions.ALL:
        perturb = noise.compiled(corruptions.PREFIX + name, float(args.severity), 0, 0.5, 224, 224)

        def corrupt():
            for start in range(0, args.images, args.batch_size):
                x = tf.constant(images[start:start + args.batch_size])
                perturb(x, tf.range(start, start + x.shape[0], dtype=tf.int64)).numpy()

        seconds = median_seconds(corrupt, args.repeats) / args.images
        total += seconds
        print(f"{name:28s} {1000 * seconds:9.1f} ms/image   {seconds / t_infer:6.2f}x inference")
    print(f"{'all ' + str(len(corruptions.ALL)) + ', one severity':28s} {1000 * total:9.1f} ms/image   "
          f"{total / t_infer:6.2f}x inference")


if __name__ == "__main__":
    main()
