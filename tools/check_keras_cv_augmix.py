"""Evidence for the keras-cv decision (docs/development.md): does keras-cv's AugMix work in tf.data
under Keras 3, and can a run repeat it?

bioflow's runs repeat exactly: every augmentation draws from (seed, epoch, batch index). This script
runs ``keras_cv.layers.AugMix`` in a ``tf.data`` map on a fixed batch of luminance images
(``[N, 32, 32, 1]`` in 0..255, as bioflow's pipeline has them) and measures:

* whether it runs at all on one-channel images, and on three-channel copies;
* whether two layers built with the same seed give the same images (two runs of one config);
* whether one layer gives the same images on the same batch twice (a resumed epoch).

Needs keras-cv installed (``pip install keras-cv``); bioflow itself no longer depends on it.
Run: ``python tools/check_keras_cv_augmix.py``.
"""
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def augmented(layer, images):
    ds = tf.data.Dataset.from_tensor_slices(images).batch(len(images)).map(lambda x: layer(x, training=True))
    return next(iter(ds)).numpy()


def main():
    import keras
    import keras_cv

    print(f"keras {keras.__version__}, keras-cv {keras_cv.__version__}, tensorflow {tf.__version__}")
    rng = np.random.default_rng(0)
    gray = rng.uniform(0, 255, size=(8, 32, 32, 1)).astype("float32")
    for name, images in (("one channel", gray), ("three channels", np.repeat(gray, 3, axis=-1))):
        try:
            first = augmented(keras_cv.layers.AugMix(value_range=(0, 255), seed=1), images)
        except Exception as err:  # report, do not hide, whatever keras-cv raises
            print(f"{name}: AugMix fails in tf.data: {type(err).__name__}: {str(err).splitlines()[0][:160]}")
            continue
        second = augmented(keras_cv.layers.AugMix(value_range=(0, 255), seed=1), images)
        layer = keras_cv.layers.AugMix(value_range=(0, 255), seed=1)
        again = [augmented(layer, images) for _ in range(2)]
        print(f"{name}: runs in tf.data; changed the images by {np.abs(first - images).mean():.2f} grey levels; "
              f"same seed, two layers: max difference {np.abs(first - second).max():.2f}; "
              f"same layer, same batch twice: max difference {np.abs(again[0] - again[1]).max():.2f}")


if __name__ == "__main__":
    main()
