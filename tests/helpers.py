"""What several test modules share: paths, tiny bindings, expected counts. (Not a test module.)"""
import os
import pathlib
import shutil
import stat

import pytest

#: The repository's gin/ tree.
GIN_DIR = pathlib.Path(__file__).resolve().parents[1] / "gin"

#: CPU sizes for building any shipped network: gin/tiny/base.gin, layered after it.
TINY_GIN = "tiny/base"
#: The tests' trained run, layered on the quickstart: gin/tiny/small.gin (a 1/16-width VGG-16 on 256
#: synthetic images), 2 epochs, and no evaluation (which has its own tests, test_evaluate.py).
TINY_TRAIN = ["include 'tiny/small.gin'", "Fit.epochs = 2", "train.skip_test = True"]
#: The small evaluation of the session's trained run (and of the report tests' second model).
EVALUATE_SMALL = ["train.skip_test = False", "evaluate.n_images = 32", "Outputs.images = True",
                  "NoiseSuite.noises = ['uniform', 'contrast', 'high_pass']",
                  "NoiseSuite.levels = {'uniform': [0.0, 0.5, 1.0], 'contrast': [1.0, 0.1, 0.01], "
                  "'high_pass': [100.0, 10.0, 1.0]}"]
#: The environment of bioflow subprocesses: quiet TensorFlow, unbuffered output.
SUBPROCESS_ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")

#: The development workspace's CIFAR-10G copy (absent on a fresh clone).
CIFAR10G = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "CIFAR-10G"
needs_cifar10g = pytest.mark.skipif(not (CIFAR10G / "224x224").is_dir(),
                                    reason=f"CIFAR-10G copy not found at {CIFAR10G} (only in the dev workspace)")


def conv(k, cin, cout, bias=True):
    return k * k * cin * cout + (cout if bias else 0)


def vgg16_after_first_conv(c1):
    """VGG-16 parameters from block1_conv2 on, at 224x224 with 10 classes, given block1_conv1's width."""
    widths = [(c1, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256),
              (256, 512), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512)]
    return sum(conv(3, a, b) for a, b in widths) + (7 * 7 * 512 * 4096 + 4096) + (4096 * 4096 + 4096) + (4096 * 10 + 10)


def convlstm(k, cin, filters):
    return k * k * cin * 4 * filters + k * k * filters * 4 * filters + 4 * filters


RETINA_N2 = conv(3, 1, 32) + conv(3, 32, 2) + conv(3, 2, 2)
SEED_COUNTS = {  # (trainable, non-trainable), computed from the architecture in docs/science.md only
    "vgg16_gabor": (vgg16_after_first_conv(24), conv(63, 1, 24)),
    # the follow-up study's code trained the bank behind the bottleneck (faithful config)
    "vgg16_rib": (RETINA_N2 + conv(63, 2, 24) + vgg16_after_first_conv(24), 0),
    "vgg16_rc": (convlstm(63, 1, 24) + vgg16_after_first_conv(24), 0),
    "vgg16_rib_rc": (RETINA_N2 + convlstm(63, 2, 24) + vgg16_after_first_conv(24), 0),
}


def writable_copy(src, dst):
    """Copy a folder of read-only zoo files so that a test may change it."""
    shutil.copytree(src, dst)
    for path in dst.rglob("*"):
        path.chmod(path.stat().st_mode | stat.S_IWUSR)
    return dst


def flip_byte(path, offset=100):
    """Invert one byte of a (possibly read-only) file: a tampered download or a corrupt entry."""
    path = pathlib.Path(path)
    path.chmod(path.stat().st_mode | stat.S_IWUSR)
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
