"""Measure the size of the differences listed in docs/fidelity.md.

Each figure compares bioflow's default with the original code's behaviour, both computed here
side by side on small inputs that run on a CPU in a few minutes:

* validation on the augmented test set (the original) against the clean one, after the
  quickstart's training run;
* the ImageNet first layer's response on gray images without and with the folded normalisation,
  as a fraction of the Keras RGB network's response (random weights: the scale is the point);
* the trainable parameters that a bank behind the bottleneck adds when it is trained;
* samplewise against featurewise normalisation of the same images;
* OpenCV's Lanczos-4 (bioflow's ``lanczos``) against TensorFlow's ``lanczos3`` (bioflow's before).

    python tools/measure_fidelity.py [--cifar10g ../shared/data/CIFAR-10G]
"""
import argparse
import os
import pathlib
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from bioflow import config  # noqa: E402
from bioflow.bases import imagenet  # noqa: E402
from bioflow.components import Gabor, RetinalBottleneck  # noqa: E402
from bioflow.data import DataPipeline, Synthetic  # noqa: E402
from bioflow.data.preprocessing import normalise, normalise_samplewise  # noqa: E402
from bioflow.model import build_model  # noqa: E402


def validation_gap():
    """(clean val_loss, augmented val_loss, clean val_acc, augmented val_acc) after the quickstart's 6 epochs."""
    from bioflow.runner import train
    from bioflow.training import rundir

    with tempfile.TemporaryDirectory() as tmp:
        config.parse(["quickstart"], ["train.skip_test = True", "DataPipeline.augment_validation = True"])
        run = train(workdir=tmp, progress="line")
        augmented = rundir.read_history(run / "history.csv")[-1]
        model = keras.saving.load_model(run / "model.keras")
        pipeline = DataPipeline(Synthetic())
        pipeline.prepare(32)
        model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        clean_loss, clean_acc = model.evaluate(pipeline.test_dataset(64), verbose=0)
    return clean_loss, augmented["val_loss"], clean_acc, augmented["val_accuracy"]


def imagenet_scale(images):
    """Median |response| of bioflow's first VGG-16 layer over the RGB network's, unfolded and folded."""
    rgb = keras.applications.VGG16(weights=None, include_top=False, input_shape=(224, 224, 3))
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "vgg16.h5"
        imagenet.write_applications_weights(rgb, path)
        config.parse([], ["vgg16.width = 1.0", "vgg16.fc_units = 4096"])
        gray = build_model(input_shape=(224, 224, 1), base="vgg16", weights=str(path))
        mean, std = 122.61930353949222, 60.99213660091195
        lum = images * 255.0
        theirs = keras.Model(rgb.input, rgb.get_layer("block1_conv1").output)(
            keras.applications.vgg16.preprocess_input(np.repeat(lum, 3, axis=-1))).numpy()
        probe = keras.Model(gray.input, gray.get_layer("block1_conv1").output)
        inner = (slice(None), slice(1, -1), slice(1, -1))
        unfolded = probe((lum - mean) / std).numpy()
        imagenet.fold_input_normalisation(gray, str(path), mean, std)
        folded = probe((lum - mean) / std).numpy()
    scale = np.median(np.abs(theirs[inner]))
    return np.median(np.abs(unfolded[inner])) / scale, np.median(np.abs(folded[inner])) / scale


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cifar10g", default=str(pathlib.Path(__file__).parents[2] / "shared/data/CIFAR-10G"))
    args = parser.parse_args()
    from measure_phase_scrambling import load
    images = load(args.cifar10g, 16)

    frozen = build_model(input_shape=(224, 224, 1), base="allcnn", filter_bank=Gabor(), bottleneck=2)
    trained = build_model(input_shape=(224, 224, 1), base="allcnn", filter_bank=Gabor(),
                          bottleneck=RetinalBottleneck(width=2, train_filter_bank=True))
    count = lambda m: sum(int(np.prod(w.shape)) for w in m.trainable_weights)  # noqa: E731
    print(f"bank behind the bottleneck (N = 2, 24 Gabor 63x63): {count(trained) - count(frozen)} more trainable "
          "parameters when trained")

    small = tf.constant(np.random.default_rng(0).integers(0, 256, size=(64, 32, 32, 1)).astype(np.float32))
    from bioflow.data.preprocessing import resize
    lanczos3 = tf.clip_by_value(tf.image.resize(small, (224, 224), method="lanczos3"), 0, 255)
    gap = np.abs(resize(small, 224, "lanczos").numpy() - lanczos3.numpy())
    print(f"lanczos 32->224 (random 8-bit images): OpenCV Lanczos-4 vs TF lanczos3, mean |difference| "
          f"{gap.mean():.2f}, max {gap.max():.1f} grey levels")

    x = tf.constant(images * 255.0)
    feature, sample = normalise(x, 122.6, 61.0).numpy(), normalise_samplewise(x).numpy()
    print(f"samplewise vs featurewise on CIFAR-10G: per-image std {sample.std(axis=(1, 2, 3)).mean():.2f} vs "
          f"{feature.std(axis=(1, 2, 3)).mean():.2f}; mean |difference| {np.abs(sample - feature).mean():.2f}")

    unfolded, folded = imagenet_scale(images[:4])
    print(f"ImageNet VGG-16 block1_conv1 on gray images, |response| / RGB network's: unfolded {unfolded:.4f} "
          f"(1/{1 / unfolded:.0f}), folded {folded:.4f}")

    clean_loss, aug_loss, clean_acc, aug_acc = validation_gap()
    print(f"quickstart after 6 epochs: val_loss clean {clean_loss:.3f} vs augmented test set {aug_loss:.3f}; "
          f"val_accuracy {clean_acc:.3f} vs {aug_acc:.3f}")


if __name__ == "__main__":
    import sys
    sys.path.insert(0, str(pathlib.Path(__file__).parent))
    main()
