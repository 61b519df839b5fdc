"""Benchmark: batched occlusion sensitivity against a loop of single-image predictions.

Both sides compute the same drops (checked to 1e-5) for the same model and images, in one process:
64 images at 32×32, an 8×8 patch with stride 4 (49 positions, so 3,136 occluded copies). The
batched side is ``bioflow.explain.methods.occlusion`` (every occluded copy of an image made with
one mask multiply and predicted in batches of up to 256); the baseline occludes one copy at a time
with numpy and predicts it alone, as a straightforward loop would. The models are shipped
networks (``--gin``; untrained: speed does not depend on the weights): by default the quickstart's
tiny Original VGG-16 and its tiny Gabor VGG-16, whose 63×63 bank makes every prediction costly, so
that batching can save less there. Prints both times (medians of
``--repeats`` runs) and the ratio. Target: at least 10× on 2 cores.

    python tools/bench_occlusion.py [--images 64] [--patch 8] [--stride 4] [--repeats 3]
"""
import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from _timing import median_seconds  # noqa: E402
from bioflow import config  # noqa: E402
from bioflow.explain import methods  # noqa: E402
from bioflow.model import build_model  # noqa: E402


def loop_occlusion(predict_one, images, labels, patch, stride, fill):
    """The baseline: one occluded copy at a time, each predicted alone."""
    n, h, w, _ = images.shape
    ys, xs = range(0, h - patch + 1, stride), range(0, w - patch + 1, stride)
    drops = np.empty((n, len(ys), len(xs)), np.float32)
    for i in range(n):
        base = predict_one(images[i])[labels[i]]
        for r, y in enumerate(ys):
            for c, x in enumerate(xs):
                occluded = images[i].copy()
                occluded[y:y + patch, x:x + patch] = fill
                drops[i, r, c] = base - predict_one(occluded)[labels[i]]
    return drops


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--patch", type=int, default=8)
    parser.add_argument("--stride", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--gin", action="append", help="A network to time (a shipped gin file; repeatable) "
                        "[quickstart_original and quickstart].")
    parser.add_argument("--max-batch", type=int, default=256, help="Occluded copies per batched call [256].")
    args = parser.parse_args()

    for gin_file in args.gin or ["quickstart_original", "quickstart"]:
        run_one(gin_file, args)


def run_one(gin_file, args):
    """Time one network, both ways, and print the ratio."""
    config.parse([gin_file])
    model = build_model()
    size = model.input_shape[1]
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(args.images, size, size, 1)).astype(np.float32)
    labels = rng.integers(0, model.output_shape[-1], size=args.images)
    predict = tf.function(lambda x: model(x, training=False))

    def predict_one(image):
        return predict(image[None]).numpy()[0]

    batched, _ = methods.occlusion(predict, images, labels, args.patch, args.stride, 0.5, args.max_batch)
    looped = loop_occlusion(predict_one, images, labels, args.patch, args.stride, 0.5)
    np.testing.assert_allclose(batched, looped, atol=1e-5)
    positions = batched.shape[1] * batched.shape[2]

    t_batched = median_seconds(lambda: methods.occlusion(predict, images, labels, args.patch, args.stride, 0.5,
                                                         args.max_batch), args.repeats)
    t_loop = median_seconds(lambda: loop_occlusion(predict_one, images, labels, args.patch, args.stride, 0.5),
                            max(1, args.repeats - 2))
    print(f"{gin_file} ({model.count_params():,} parameters): {args.images} images of {size}x{size}, "
          f"patch {args.patch}, stride {args.stride}: {args.images * positions} occluded copies")
    print(f"  loop of single predictions  {t_loop:8.2f} s")
    print(f"  batched (bioflow.explain)   {t_batched:8.2f} s")
    print(f"  ratio                       {t_loop / t_batched:8.1f}x")


if __name__ == "__main__":
    main()
