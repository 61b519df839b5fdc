"""Stride-1 2-D convolution computed directly or through FFTs.

Both methods compute TensorFlow's ``conv2d`` (cross-correlation) with ``'same'`` or
``'valid'`` padding. The FFT route is exact up to float32 rounding and much faster for the
large (e.g. 63×63) kernels of the filter banks; ``tools/bench_filterbank.py`` measures it.
"""
import tensorflow as tf

from bioflow.errors import BioflowError, check_choice

METHODS = ("auto", "direct", "fft")
PADDINGS = ("same", "valid")

#: ``auto`` uses the FFT from this kernel size up: the crossover measured by
#: ``tools/bench_filterbank.py --sweep`` lies between 21 and 31 at both 32x32 and 224x224.
FFT_MIN_KSIZE = 27


def check_method(method: str) -> str:
    """Validate a convolution method name."""
    return check_choice(method, METHODS, "convolution method", "methods")


def check_padding(padding: str) -> str:
    """Validate and normalise a padding name."""
    return check_choice(str(padding).lower(), PADDINGS, "padding")


def resolve_method(method: str, kernel_size: tuple[int, int], strides: int = 1) -> str:
    """The concrete method (``direct`` or ``fft``) for a kernel size and stride."""
    check_method(method)
    kh, kw = kernel_size
    fft_ok = strides in (1, (1, 1)) and kh % 2 == 1 and kw % 2 == 1
    if method == "fft" and not fft_ok:
        raise BioflowError(f"The fft convolution needs stride 1 and an odd kernel size, got kernel "
                           f"{kh}x{kw} and strides {strides!r}; use method='direct'.")
    if method == "auto":
        return "fft" if fft_ok and max(kh, kw) >= FFT_MIN_KSIZE else "direct"
    return method


def fast_fft_length(n):
    """Smallest integer >= n whose only prime factors are 2, 3 and 5."""
    m = n
    while True:
        r = m
        for p in (2, 3, 5):
            while r % p == 0:
                r //= p
        if r == 1:
            return m
        m += 1


def output_size(size: int | None, kernel: int, padding: str, strides: int = 1) -> int | None:
    """Spatial output length of a convolution (None stays None)."""
    if size is None:
        return None
    if padding == "same":
        return -(-size // strides)
    return (size - kernel) // strides + 1


def fft_conv2d(x: tf.Tensor, kernel: tf.Tensor, padding: str = "same") -> tf.Tensor:
    """``tf.nn.conv2d(x, kernel, 1, padding)`` through real 2-D FFTs.

    ``x`` is ``(B, H, W, C)`` with static H and W, ``kernel`` is ``(kh, kw, C, O)`` with odd
    sizes. The image is zero-padded only as far as needed for a linear (not circular) result
    over the output window: ``H + kh // 2`` rows, rounded up to a fast FFT length.
    """
    padding = check_padding(padding)
    h, w = x.shape[1], x.shape[2]
    kh, kw = kernel.shape[0], kernel.shape[1]
    if h is None or w is None:
        raise BioflowError("fft_conv2d needs a static spatial input shape; use method='direct'.")
    rh, rw = kh // 2, kw // 2
    p = fast_fft_length(max(h + rh, kh))
    q = fast_fft_length(max(w + rw, kw))
    dtype = x.dtype
    x = tf.cast(x, tf.float32)
    kernel = tf.cast(kernel, tf.float32)
    spec_x = tf.signal.rfft2d(tf.transpose(x, [0, 3, 1, 2]), fft_length=[p, q])  # B, C, p, q'
    # Correlation = circular convolution with the flipped kernel centred on the origin.
    k = tf.reverse(tf.transpose(kernel, [2, 3, 0, 1]), axis=[2, 3])  # C, O, kh, kw
    k = tf.pad(k, [[0, 0], [0, 0], [0, p - kh], [0, q - kw]])
    k = tf.roll(k, shift=[-rh, -rw], axis=[2, 3])
    spec_k = tf.signal.rfft2d(k)  # C, O, p, q'
    if x.shape[-1] == 1:  # one input channel (the banks' first stage): a broadcast product, 2x faster
        spec_y = spec_x * spec_k
    else:
        spec_y = tf.einsum("bcpq,copq->bopq", spec_x, spec_k)
    y = tf.signal.irfft2d(spec_y, fft_length=[p, q])
    if padding == "same":
        y = y[:, :, :h, :w]
    else:
        y = y[:, :, rh:h - rh, rw:w - rw]
    return tf.cast(tf.transpose(y, [0, 2, 3, 1]), dtype)


def conv2d(x: tf.Tensor, kernel: tf.Tensor, padding: str = "same", strides: int = 1, method: str = "auto") -> tf.Tensor:
    """Convolve ``x`` with ``kernel`` by the given method (``auto``, ``direct`` or ``fft``)."""
    padding = check_padding(padding)
    method = resolve_method(method, tuple(kernel.shape[:2]), strides)
    if method == "fft":
        return fft_conv2d(x, kernel, padding)
    return tf.nn.conv2d(x, tf.cast(kernel, x.dtype), strides=strides, padding=padding.upper())
