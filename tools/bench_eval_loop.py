"""Benchmark: the evaluation loop against pure batched inference on the same images.

The network is the quickstart's (built, not trained: the time does not depend on the weights). Side
by side in one process, on the same cached [0, 1] images and batch size:

* baseline: for each of the suite's conditions, every batch through the normalise-and-predict
  graph only (no perturbation, no bookkeeping): the floor of any evaluation;
* bioflow: ``evaluate``'s loop (``bioflow.evaluate._Evaluator.run``) over the same conditions: the
  clean pass and every (noise, level) of the paper's suite, perturbation included.

Prints each side's median time over ``--repeats`` and the ratio (bioflow / baseline).

    python tools/bench_eval_loop.py [--images 500] [--repeats 3]
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from _timing import batches, median_seconds, parser, untrained_quickstart  # noqa: E402
from bioflow import noise  # noqa: E402
from bioflow.data.preprocessing import normaliser  # noqa: E402
from bioflow.evaluate import _Evaluator, to_0_255  # noqa: E402


def main():
    args = parser(__doc__, images=500, batch_size=64).parse_args()
    model, images, labels, stats = untrained_quickstart(args.images)
    size = model.input_shape[1]
    suite = noise.NoiseSuite()
    conditions = [(None, None)] + [(name, level) for name, levels in suite.items() for level in levels]
    normalise = normaliser(stats)
    predict = tf.function(lambda x: model(normalise(to_0_255(x)), training=False), autograph=False)
    cached = batches(args.batch_size, images)

    def baseline():
        for _ in conditions:
            last = None
            for x in cached:
                last = predict(x)
            last.numpy()  # wait for the condition's last batch, as a result would

    evaluator = _Evaluator(model, stats, args.batch_size, 0, 0.5, False)

    def loop():
        for name, level in conditions:
            evaluator.run(images, labels, name, level)

    t_base = median_seconds(baseline, args.repeats)
    t_loop = median_seconds(loop, args.repeats)
    print(f"{args.images} images of {size}x{size}, {len(conditions)} conditions (clean + the paper's suite), "
          f"batch {args.batch_size}")
    print(f"pure batched inference: {t_base:.2f} s   evaluation loop: {t_loop:.2f} s   ratio {t_loop / t_base:.2f}x")


if __name__ == "__main__":
    main()
