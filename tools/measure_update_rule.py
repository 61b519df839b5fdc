"""Measure what the optimiser's update rule changes (docs/fidelity.md): the quickstart trained with
Keras 2's RMSprop (``Fit.update_rule = 'keras2'``, the original's) and with Keras 3's, side by
side in one process, and the share of the network's parameters whose first gradient is small
enough for Keras 3's ε to damp.

    python tools/measure_update_rule.py [--epochs 6] [--images 500]
"""
import argparse
import json
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from bioflow import config  # noqa: E402
from bioflow.training import rundir  # noqa: E402


def small_gradient_share(eps=1e-7):
    """Share of the quickstart network's trainable parameters whose gradient, on one batch of 32 at
    initialisation, is below sqrt(eps) in magnitude, and the median ratio of Keras 3's first RMSprop
    step to Keras 2's over them all (|g|/sqrt(0.1 g² + eps) against |g|/(sqrt(0.1 g²) + eps))."""
    import keras
    import tensorflow as tf

    from bioflow.data import DataPipeline
    from bioflow.model import build_model

    config.parse(["quickstart"])
    keras.utils.set_random_seed(42)
    model = build_model()
    pipeline = DataPipeline()
    pipeline.prepare(model.input_shape[1])
    images, labels = next(iter(pipeline.train_dataset(32, 0, 42)))
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(labels, model(images, training=True)))
    grads = np.concatenate([g.numpy().ravel() for g in tape.gradient(loss, model.trainable_variables)]).astype(float)
    g = np.abs(grads)
    v = 0.1 * g**2
    ratio = (g / np.sqrt(v + eps)) / np.maximum(g / (np.sqrt(v) + eps), 1e-300)
    return float((g < np.sqrt(eps)).mean()), float(np.median(ratio[g > 0]))


def train_with(rule, epochs, images, workdir):
    from bioflow.runner import train

    config.parse(["quickstart"], [f"Fit.update_rule = '{rule}'", f"Fit.epochs = {epochs}",
                                  f"evaluate.n_images = {images}", "Outputs.images = False",
                                  "NoiseSuite.noises = ['uniform']"])
    run = train(workdir=workdir, label=rule, progress="line")
    history = rundir.read_history(run / "history.csv")
    clean = json.loads((run / "results" / "robustness.json").read_text())["clean_accuracy"]
    return history, clean


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--images", type=int, default=500)
    args = parser.parse_args()
    share, median = small_gradient_share()
    print(f"quickstart network at initialisation: {share:.1%} of trainable parameters have |gradient| < sqrt(1e-7); "
          f"median Keras 3 / Keras 2 first RMSprop step {median:.3f}")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rule in ("keras2", "keras3"):
            results[rule] = train_with(rule, args.epochs, args.images, tmp)
    print("epoch  " + "  ".join(f"{rule}: loss val_loss val_acc" for rule in results))
    for epoch in range(args.epochs):
        print(f"{epoch + 1:5d}  " + "  ".join(
            f"{'':8}{h[epoch]['loss']:.4f} {h[epoch]['val_loss']:.4f} {h[epoch]['val_accuracy']:.4f}"
            for h, _ in results.values()))
    for rule, (_, clean) in results.items():
        print(f"{rule}: clean accuracy {clean:.4f} on {args.images} test images")


if __name__ == "__main__":
    main()
