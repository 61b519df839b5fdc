"""The FFT route equals tf.nn.conv2d, and gradients flow through it."""
import numpy as np
import pytest
import tensorflow as tf

from bioflow.components import Gabor
from bioflow.components.convolution import FFT_MIN_KSIZE, conv2d, fast_fft_length, fft_conv2d, resolve_method
from bioflow.errors import BioflowError


def rel_diff(a, b):
    return float(tf.reduce_max(tf.abs(a - b)) / tf.reduce_max(tf.abs(b)))


@pytest.mark.parametrize("shape, ksize, cin, cout, padding", [
    ((2, 32, 32), 63, 1, 24, "same"),   # kernel larger than the image
    ((3, 40, 37), 7, 2, 5, "same"),
    ((3, 40, 37), 7, 2, 5, "valid"),
    ((1, 17, 29), 9, 3, 4, "valid"),
    ((2, 24, 24), 1, 1, 2, "same"),
])
def test_fft_equals_direct(shape, ksize, cin, cout, padding):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(size=shape + (cin,)), tf.float32)
    k = tf.constant(rng.normal(size=(ksize, ksize, cin, cout)), tf.float32)
    direct = tf.nn.conv2d(x, k, 1, padding.upper())
    fft = fft_conv2d(x, k, padding)
    assert fft.shape == direct.shape
    assert rel_diff(fft, direct) < 1e-4


def test_fft_equals_direct_on_paper_gabor_bank():
    x = tf.random.stateless_uniform((2, 64, 64, 1), seed=(1, 2))
    k = tf.constant(Gabor().kernels(), tf.float32)
    assert rel_diff(conv2d(x, k, method="fft"), conv2d(x, k, method="direct")) < 1e-4


def test_gradients_flow_to_the_input_through_fft():
    x = tf.Variable(tf.random.stateless_uniform((1, 20, 20, 2), seed=(3, 4)))
    k = tf.random.stateless_normal((11, 11, 2, 3), seed=(5, 6))
    with tf.GradientTape(persistent=True) as tape:
        y_fft = tf.reduce_sum(fft_conv2d(x, k) ** 2)
        y_direct = tf.reduce_sum(tf.nn.conv2d(x, k, 1, "SAME") ** 2)
    g_fft, g_direct = tape.gradient(y_fft, x), tape.gradient(y_direct, x)
    assert float(tf.reduce_max(tf.abs(g_direct))) > 0
    assert rel_diff(g_fft, g_direct) < 1e-4


def test_method_resolution():
    assert resolve_method("auto", (63, 63)) == "fft"
    assert resolve_method("auto", (FFT_MIN_KSIZE - 2,) * 2) == "direct"
    assert resolve_method("auto", (63, 63), strides=2) == "direct"
    with pytest.raises(BioflowError, match="stride 1"):
        resolve_method("fft", (3, 3), strides=2)
    with pytest.raises(BioflowError, match="'auto', 'direct' or 'fft'"):
        resolve_method("winograd", (3, 3))


def test_fast_fft_length():
    assert fast_fft_length(255) == 256
    assert fast_fft_length(97) == 100
    assert fast_fft_length(1) == 1
