"""Benchmark: bioflow's PGD against its floor, k forward-and-backward passes of the same batches.

The network is the quickstart's (built, not trained). Side by side in one process, on the same
cached source images and batch size:

* floor: ``--steps`` passes of the loss's gradient with respect to the images, per batch (one
  traced graph), which any k-step PGD must compute;
* bioflow: ``bioflow.attacks`` PGD in L∞ at ε = 8/255 with ``--steps`` steps (one traced graph per
  batch: the steps, projections and the loss per iteration);
* ART (when the ``attacks`` extra is installed): the Adversarial Robustness Toolbox's
  ``ProjectedGradientDescent`` on the same function (bioflow's traced forward pass), budget, step,
  start (no random start) and batch size, as ``tests/test_attacks.py`` cross-checks it.

Prints each side's median time over ``--repeats`` and the ratios (PGD / floor, ART / bioflow).

    python tools/bench_pgd.py [--images 256] [--steps 10] [--repeats 3]
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from _timing import batches, median_seconds, parser, untrained_quickstart  # noqa: E402
from bioflow import attacks  # noqa: E402


def main():
    command = parser(__doc__, images=256, batch_size=64)
    command.add_argument("--steps", type=int, default=10)
    args = command.parse_args()
    model, images, labels, stats = untrained_quickstart(args.images)
    size = model.input_shape[1]
    target = attacks.Target(model, stats, "source")
    cached = batches(args.batch_size, images, labels)
    eps = 8 / 255
    attack = attacks.Attack(kind="pgd", norm="linf", epsilons=(eps,), steps=args.steps, random_start=False)

    def floor():
        for x, y in cached:
            for _ in range(args.steps):
                grad = target.gradient(x, y, 1)
            grad.numpy()

    def pgd():
        for x, y in cached:
            adversarial, _ = attacks._attack_batch(target, x, y, eps, attack, 1, tf.constant([0, 0], tf.int32))
            adversarial.numpy()

    t_floor = median_seconds(floor, args.repeats)
    t_pgd = median_seconds(pgd, args.repeats)
    print(f"{args.images} images of {size}x{size}, PGD-{args.steps} in L-inf at 8/255, batch {args.batch_size}")
    print(f"{args.steps} gradient passes: {t_floor:.2f} s   PGD: {t_pgd:.2f} s   ratio {t_pgd / t_floor:.2f}x")
    art = art_pgd(target, images, labels, eps, args)
    if art is None:
        print("ART: not installed (pip install 'bioflow[attacks]')")
        return
    t_art = median_seconds(art, args.repeats)
    print(f"ART's PGD: {t_art:.2f} s   ART / bioflow {t_art / t_pgd:.2f}x")


def art_pgd(target, images, labels, eps, args):
    """ART's PGD on ``target``'s forward pass as a function of no arguments, or None without ART."""
    import warnings

    warnings.filterwarnings("ignore", message="PyTorch not found")  # ART's optional PyTorch estimators
    try:
        from art.attacks.evasion import ProjectedGradientDescent
        from art.estimators.classification import TensorFlowV2Classifier
    except ImportError:
        return None
    import keras
    import numpy as np

    def probabilities(x, training=False):  # ART calls its model with training=
        return target.forward(x)

    classifier = TensorFlowV2Classifier(model=probabilities, nb_classes=10, input_shape=images.shape[1:],
                                        loss_object=keras.losses.SparseCategoricalCrossentropy(),
                                        clip_values=(0.0, 1.0))
    attack = ProjectedGradientDescent(classifier, norm=np.inf, eps=eps, eps_step=2.5 * eps / args.steps,
                                      max_iter=args.steps, num_random_init=0, batch_size=args.batch_size,
                                      verbose=False)
    return lambda: attack.generate(images, y=labels)


if __name__ == "__main__":
    main()
