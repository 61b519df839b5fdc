"""The perturbation suite (docs/science.md, "Perturbations") as batched TensorFlow ops, with a registry.

    bioflow.noise.apply("uniform", images, 0.3, seed=0, indices=range(100, 132))

``images`` are float32 ``[N, H, W, 1]`` in [0, 1]; the result has the same shape, clipped to
[0, 1]. A stochastic perturbation is a pure function of ``(seed, level, image index)``: the same
image gets the same noise whatever the batch, its position in the batch or the device count.
"""
import dataclasses
import functools
import math
from typing import Callable, Sequence

import gin
import numpy as np
import tensorflow as tf

from bioflow.errors import BioflowError, check_choice
from bioflow.registry import NOISES

#: The background grey: the CIFAR-10 training mean (nearest, 224×224) / 255.
BACKGROUND = 0.48086


@dataclasses.dataclass(frozen=True)
class Perturbation:
    """A registered perturbation: ``fn(images, level, ctx) -> images`` and its levels."""

    name: str
    fn: object
    levels: tuple
    valid: tuple  # (low, high) inclusive range of levels
    stochastic: bool = False
    description: str = ""
    discrete: tuple = ()  # when set, the only valid levels


def register(name: str, levels: Sequence[float], valid: tuple[float, float], stochastic: bool = False,
             description: str = "", discrete: Sequence[float] = ()) -> Callable:
    """Decorator that registers ``fn(images, level, ctx)`` as perturbation ``name``.

    ``fn`` gets a float32 ``[N, H, W, 1]`` tensor and must use TensorFlow ops: it is traced into
    a graph once per (level, seed, background), without autograph. ``level`` is a Python float, so
    ``if level > 0`` is plain Python; a branch on a tensor needs ``tf.where`` or ``tf.cond``. The
    result is clipped to [0, 1] afterwards.

    ``ctx`` has ``seed``, ``background``, ``indices`` (int64 [N]), ``uniform(shape_tail)`` and
    ``normal(shape_tail)``, which draw per-image values that depend only on (seed, level, index).
    """
    def decorate(fn):
        NOISES.add(name, Perturbation(name, fn, tuple(float(v) for v in levels), valid, stochastic, description,
                                      tuple(float(v) for v in discrete)), replace=True)
        compiled.cache_clear()  # a re-registered name must not reuse the old graph
        return fn
    return decorate


def get(name: str) -> Perturbation:
    """The :class:`Perturbation` called ``name``, or a ``BioflowError`` listing the valid names."""
    return NOISES.get(name)


def _level_key(level):
    """A stable 31-bit integer for a level value."""
    return int(np.float64(level).view(np.int64) % (2**31 - 1))


@dataclasses.dataclass
class Context:
    """What a perturbation function may use besides the images and the level."""

    seed: int
    level: float
    background: float
    indices: tf.Tensor

    def _per_image(self, draw, shape_tail):
        """``draw(shape, seed)`` per image, seeded by (seed, level, index): ``[N, *shape_tail]``."""
        key = tf.constant([self.seed % (2**31 - 1), _level_key(self.level)], tf.int64)

        def one(index):
            return draw(shape_tail, tf.random.experimental.stateless_fold_in(key, index))

        return tf.map_fn(one, self.indices, fn_output_signature=tf.TensorSpec(shape_tail, tf.float32),
                         parallel_iterations=16)

    def uniform(self, shape_tail, minval=0.0, maxval=1.0):
        """Uniforms of shape ``[N, *shape_tail]``; image i's draw depends on (seed, level, index_i) only."""
        return self._per_image(lambda shape, seed: tf.random.stateless_uniform(shape, seed, minval, maxval,
                                                                              dtype=tf.float32), shape_tail)

    def normal(self, shape_tail, stddev=1.0):
        """Normal draws ``N(0, stddev)`` of shape ``[N, *shape_tail]``, per image as :meth:`uniform`."""
        return self._per_image(lambda shape, seed: tf.random.stateless_normal(shape, seed, stddev=stddev,
                                                                             dtype=tf.float32), shape_tail)


#: Input bytes per chunk in :func:`apply`: larger batches are perturbed a chunk at a time, so the
#: intermediates of a perturbation (spectra, blurred copies) never scale with the whole batch.
CHUNK_BYTES = 4 << 20  # small: the allocator keeps freed chunk-sized blocks cached


def _check_level(p, level):
    if isinstance(level, (bool, np.bool_)) or not isinstance(level, (int, float, np.integer, np.floating)):
        raise BioflowError(f"Level {level!r} of noise {p.name!r} is not a number.")
    low, high = p.valid
    if not low - 1e-9 <= float(level) <= high + 1e-9:  # NaN fails this too
        raise BioflowError(f"Level {level!r} is out of range for noise {p.name!r}: valid levels are in "
                           f"[{low}, {high}].")
    if p.discrete and float(level) not in p.discrete:
        raise BioflowError(f"Level {level!r} is not valid for noise {p.name!r}: use one of "
                           f"{', '.join(f'{v:g}' for v in p.discrete)}.")
    return float(level)


def _check_images(images):
    """``images`` as a float32 numpy array ``[N, H, W, 1]`` of finite values in [0, 1]."""
    try:
        values = images.numpy() if isinstance(images, tf.Tensor) else np.asarray(images)
        values = values.astype(np.float32, copy=False)
    except (TypeError, ValueError) as err:
        raise BioflowError(f"Images must be a float [N, H, W, 1] array, got {type(images).__name__}: {err}") from err
    if values.ndim != 4 or values.shape[-1] != 1:
        raise BioflowError(f"Images must be a float [N, H, W, 1] tensor, got shape {values.shape}.")
    if values.shape[0] == 0 or values.shape[1] == 0 or values.shape[2] == 0:
        raise BioflowError(f"There are no images to perturb: the batch has shape {values.shape}.")
    finite = np.isfinite(values)
    if not finite.all():
        raise BioflowError(f"Images must be finite: {int((~finite).sum())} pixel values are NaN or infinite.")
    lo, hi = float(values.min()), float(values.max())
    if lo < -1e-6 or hi > 1 + 1e-6:
        raise BioflowError(f"Images must be in [0, 1], got values in [{lo:.4g}, {hi:.4g}].")
    return values


def _check_indices(indices, n):
    if indices is None:
        return np.arange(n, dtype=np.int64)
    idx = indices.numpy() if isinstance(indices, tf.Tensor) else np.asarray(indices)
    if idx.dtype.kind not in "iu":
        raise BioflowError(f"indices must be integers, got {idx.dtype} values.")
    if idx.shape != (n,):
        raise BioflowError(f"indices has shape {idx.shape} for {n} images; give one integer per image.")
    return idx.astype(np.int64)


def apply(name: str, images, level: float, *, seed: int = 0, background: float = BACKGROUND, indices=None,
          chunk_bytes: int | None = None) -> tf.Tensor:
    """Apply perturbation ``name`` at ``level`` to ``images`` (float32 ``[N, H, W, 1]`` in [0, 1]).

    Works for any image size. Batches larger than ``chunk_bytes`` (default :data:`CHUNK_BYTES`)
    are perturbed in chunks into one output array, so peak memory stays a small multiple of the
    input. Returns a float32 tensor of the input's shape.
    """
    p = get(name)
    level = _check_level(p, level)
    values = _check_images(images)
    n, h, w = values.shape[:3]
    idx = _check_indices(indices, n)
    run = compiled(name, level, int(seed), float(background), h, w)
    per_chunk = max(1, int(chunk_bytes or CHUNK_BYTES) // (h * w * 4))
    if n <= per_chunk:
        return run(tf.convert_to_tensor(values), tf.convert_to_tensor(idx))
    out = _shareable_empty(values.shape)
    for start in range(0, n, per_chunk):
        stop = min(n, start + per_chunk)
        out[start:stop] = run(tf.convert_to_tensor(values[start:stop]), tf.convert_to_tensor(idx[start:stop]))
    return tf.experimental.dlpack.from_dlpack(out.__dlpack__())  # no copy: TF shares the buffer


def _shareable_empty(shape):
    """An uninitialised float32 array that TensorFlow can adopt without a copy (64-byte aligned)."""
    nbytes = int(np.prod(shape)) * 4
    raw = np.empty(nbytes + 64, np.uint8)
    start = -raw.ctypes.data % 64
    return raw[start:start + nbytes].view(np.float32).reshape(shape)


@functools.lru_cache(maxsize=512)
def compiled(name: str, level: float, seed: int, background: float, height: int, width: int) -> Callable:
    """``fn(images, indices)``: one traced graph per (perturbation, level, seed, background, image size).

    ``images`` are float32 ``[N, height, width, 1]``. It skips ``apply``'s input checks, so it can
    run inside a ``tf.data`` pipeline.
    """
    p = get(name)

    # No autograph: the level is a Python number, so a perturbation's branches are plain Python
    # (converting every function again at each (noise, level) was half the tracing time).
    @tf.function(input_signature=[tf.TensorSpec([None, height, width, 1], tf.float32),
                                  tf.TensorSpec([None], tf.int64)], autograph=False)
    def run(images, indices):
        out = p.fn(images, level, Context(seed, level, background, indices))
        return tf.clip_by_value(out, 0.0, 1.0)

    return run


# -- Gaussian blur, exactly scipy.ndimage.gaussian_filter(mode='constant', cval=bg, truncate=4) ------

def gaussian_weights(sigma: float, truncate: float = 4.0) -> np.ndarray:
    """scipy's 1-D Gaussian weights: radius ``int(truncate * sigma + 0.5)``, normalised to sum 1."""
    radius = int(truncate * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    w = np.exp(-0.5 * x**2 / float(sigma) ** 2)
    return w / w.sum()


def _blur_matrix(size, sigma):
    """``[size, size]`` banded matrix of the zero-padded 1-D blur (taps beyond the image vanish)."""
    w = gaussian_weights(sigma)
    r = len(w) // 2
    offsets = np.arange(size)[None, :] - np.arange(size)[:, None]
    inside = np.abs(offsets) <= r
    return np.where(inside, w[np.clip(offsets + r, 0, 2 * r)], 0.0).astype(np.float32)


def gaussian_blur(images, sigma, background):
    """Separable Gaussian blur with constant padding ``background``, truncated at 4σ.

    Constant padding with a normalised kernel equals ``bg + blur_zero_padded(x - bg)``, and a
    zero-padded 1-D blur of an ``H``-pixel axis is an ``H×H`` banded matrix. Two batched matmuls
    therefore compute any σ exactly, σ = 100 on 224×224 included, with no large buffers.
    """
    if sigma <= 0:
        return images
    h, w = images.shape[1], images.shape[2]
    rows, cols = tf.constant(_blur_matrix(h, sigma)), tf.constant(_blur_matrix(w, sigma))
    centred = images[..., 0] - background
    # Two large 2-D matmuls (faster than a batched einsum): along the width, then the height.
    along_w = tf.reshape(tf.reshape(centred, [-1, w]) @ tf.transpose(cols), [-1, h, w])
    along_h = tf.reshape(tf.reshape(tf.transpose(along_w, [0, 2, 1]), [-1, h]) @ tf.transpose(rows), [-1, w, h])
    return (tf.transpose(along_h, [0, 2, 1]) + background)[..., None]


# -- The paper's suite (docs/science.md) --------------------------------------------------------

@register("uniform", np.linspace(0, 1, 11), (0.0, 1.0), stochastic=True, description="x + U(-w, w)")
def _uniform(x, w, ctx):
    return x + ctx.uniform(x.shape[1:], -w, w) if w > 0 else x


@register("salt_and_pepper", np.linspace(0, 1, 11), (0.0, 1.0), stochastic=True,
          description="1 where u >= 1 - p/2, 0 where u < p/2")
def _salt_and_pepper(x, p, ctx):
    if p <= 0:
        return x
    u = ctx.uniform(x.shape[1:])
    x = tf.where(u >= 1 - p / 2, 1.0, x)
    return tf.where(u < p / 2, 0.0, x)


@register("high_pass", np.logspace(2, 0, 11), (1e-3, 1000.0), description="x - gauss(x, σ), mean moved to bg")
def _high_pass(x, sigma, ctx):
    h = x - gaussian_blur(x, sigma, ctx.background)
    return h + (ctx.background - tf.reduce_mean(h, axis=[1, 2, 3], keepdims=True))


@register("low_pass", np.logspace(0, 2, 11), (0.0, 1000.0), description="gauss(x, σ)")
def _low_pass(x, sigma, ctx):
    return gaussian_blur(x, sigma, ctx.background)


@register("contrast", np.logspace(0, -2, 11), (0.0, 1.0), description="(1 - c)/2 + c x")
def _contrast(x, c, ctx):
    return (1 - c) / 2 + c * x


def phase_shifts(width, ctx, height, cols):
    """The original's shift vector for ``height × cols`` images: ``(U[0,1) − 0.5) · 2 · width/180 · π``.

    Its length is ``L // 2`` with ``L = (height − 1)(cols − 1)``; image i's draw depends on
    (seed, level, index_i) only. Returns float32 ``[N, L // 2]``.
    """
    half = (height - 1) * (cols - 1) // 2
    return (ctx.uniform([half]) - 0.5) * (2.0 * width / 180.0 * math.pi)


def scramble_phases(x, shifts):
    """The original's phase scrambling of ``x [N, H, W, 1]`` with ``shifts [N, L // 2]`` (not clipped).

    The phases of ``fftshift(fft2(x))`` in the block ``[1:, 1:]``, flattened row-major (length
    ``L = (H−1)(W−1)``), get ``+shifts`` on their first ``L // 2`` entries and ``−shifts`` (same
    order) on their last ``L // 2``; amplitudes stay. The real part of the inverse transform is
    returned. Conjugate partners get unrelated shifts, so this is milder than a true phase scramble
    and lowers contrast. For even H and W, ``L`` is odd and its centre (DC) is untouched; for an odd
    H or W, ``L`` is even, there is no centre and the DC phase is shifted too (as in the original).
    See docs/science.md.
    """
    n, h, w = tf.shape(x)[0], x.shape[1], x.shape[2]
    length = (h - 1) * (w - 1)
    half = length // 2
    spectrum = tf.signal.fftshift(tf.signal.fft2d(tf.complex(x[..., 0], 0.0)), axes=[1, 2])
    amplitude, phase = tf.abs(spectrum), tf.math.angle(spectrum)
    block = tf.reshape(phase[:, 1:, 1:], [n, length])
    block = tf.concat([block[:, :half] + shifts, block[:, half:length - half], block[:, length - half:] - shifts],
                      axis=1)
    phase = tf.concat([phase[:, :1, :], tf.concat([phase[:, 1:, :1], tf.reshape(block, [n, h - 1, w - 1])],
                                                  axis=2)], axis=1)
    rebuilt = tf.complex(amplitude * tf.cos(phase), amplitude * tf.sin(phase))
    return tf.math.real(tf.signal.ifft2d(tf.signal.ifftshift(rebuilt, axes=[1, 2])))[..., None]


@register("phase_scrambling", np.linspace(0, 180, 11), (0.0, 180.0), stochastic=True,
          description="the original's Fourier phase + U(±width°), not conjugate-symmetric")
def _phase_scrambling(x, width, ctx):
    return scramble_phases(x, phase_shifts(width, ctx, *x.shape[1:3])) if width > 0 else x


@register("darken", np.linspace(0, -1, 11), (-1.0, 0.0), description="x + level")
def _darken(x, level, ctx):
    return x + level


@register("brighten", np.linspace(0, 1, 11), (0.0, 1.0), description="x + level")
def _brighten(x, level, ctx):
    return x + level


@register("rotation", (0, 90, 180, 270), (0.0, 270.0), description="anticlockwise by level degrees",
          discrete=(0, 90, 180, 270))
def _rotation(x, degrees, ctx):
    k = int(degrees) // 90 % 4  # numpy rot90 (anticlockwise), without tf.image.rot90's runtime checks
    if k == 0:
        return x
    if k == 2:
        return tf.reverse(x, [1, 2])
    transposed = tf.transpose(x, [0, 2, 1, 3])
    return tf.reverse(transposed, [1] if k == 1 else [2])


@register("invert", (0, 1), (0.0, 1.0), description="1 - x when level >= 0.5")
def _invert(x, level, ctx):
    return 1 - x if level >= 0.5 else x


PAPER = ("uniform", "salt_and_pepper", "high_pass", "low_pass", "contrast", "phase_scrambling", "darken",
         "brighten", "rotation", "invert")

# -- Extra corruptions (beyond the paper) --------------------------------------------------------


@register("gaussian_noise", np.linspace(0, 0.5, 11), (0.0, 10.0), stochastic=True, description="x + N(0, σ)")
def _gaussian_noise(x, sigma, ctx):
    if sigma <= 0:
        return x
    return x + ctx.normal(x.shape[1:], sigma)


@register("gaussian_blur", np.linspace(0, 5, 11), (0.0, 1000.0), description="gauss(x, σ), identity at 0")
def _gaussian_blur(x, sigma, ctx):
    return gaussian_blur(x, sigma, ctx.background)


@register("jpeg_quality", (100, 90, 80, 70, 60, 50, 40, 30, 20, 10, 1), (1.0, 100.0),
          description="JPEG compression at the given quality")
def _jpeg(x, quality, ctx):
    return tf.map_fn(lambda im: tf.image.adjust_jpeg_quality(im, int(quality)), x)


@register("pixelation", np.arange(1, 12), (1.0, 64.0), description="average over f×f blocks, then repeat")
def _pixelation(x, factor, ctx):
    f = int(factor)
    if f <= 1:
        return x
    h, w = x.shape[1], x.shape[2]
    pooled = tf.nn.avg_pool2d(x, f, f, padding="SAME")
    return tf.repeat(tf.repeat(pooled, f, axis=1), f, axis=2)[:, :h, :w, :]


def _odd_along_rows(column):
    """Make ``column [N, H]`` odd under i → -i (mod H), zero where i = -i."""
    h = column.shape[1]
    i = np.arange(h)
    mirror = (-i) % h
    sign = np.where(i < mirror, 1.0, np.where(i > mirror, -1.0, 0.0)).astype(np.float32)
    return tf.gather(column, np.minimum(i, mirror), axis=1) * sign


def _half_plane_phase(noise, width):
    """Phase shifts for ``rfft2d``'s half plane ``[N, H, W//2 + 1]`` that are odd under k → -k.

    Columns 1 .. ceil(W/2)-1 pair with columns irfft2d never stores, so they are free; column 0
    (and column W/2 for even W) pair with themselves and are made odd along the rows.
    """
    cols = [_odd_along_rows(noise[:, :, 0])[..., None], noise[:, :, 1:width // 2 + (width % 2)]]
    if width % 2 == 0:
        cols.append(_odd_along_rows(noise[:, :, width // 2])[..., None])
    return tf.concat(cols, axis=2)


@register("phase_scrambling_symmetric", np.linspace(0, 180, 11), (0.0, 180.0), stochastic=True,
          description="Fourier phase + U(±width°), conjugate-symmetric: amplitudes kept")
def _phase_scrambling_symmetric(x, width, ctx):
    if width <= 0:
        return x
    h, w = x.shape[1], x.shape[2]
    spectrum = tf.signal.rfft2d(x[..., 0])  # the half plane; irfft2d mirrors it conjugately
    shift = _half_plane_phase(ctx.uniform([h, w // 2 + 1], -math.radians(width), math.radians(width)), w)
    scrambled = spectrum * tf.complex(tf.cos(shift), tf.sin(shift))  # e^{i·shift}; cheaper than tf.exp
    return tf.signal.irfft2d(scrambled, fft_length=[h, w])[..., None]


#: The most levels one noise of a suite may have (each level is a pass over the test set).
MAX_LEVELS = 256
#: ``NoiseSuite.dtype``: the dtypes perturbed images may reach the network in.
DTYPES = ("float32", "float16")


@gin.register(module="bioflow")
class NoiseSuite:
    """A named set of perturbations with their levels, declared in gin (``gin/noise/``).

    Args:
        noises: the perturbation names, in order.
        levels: optional ``{name: [levels]}`` overrides of the registered levels.
        dtype: the dtype of the perturbed images that reach the network: ``'float32'`` (bioflow's)
            or ``'float16'``: the original switched Keras to float16 before its perturbation tests,
            so its perturbed 0..255 images were float16 (at contrast 0.01, a few dozen grey levels);
            the clean passes stay float32, as its were.
    """

    def __init__(self, noises=PAPER, levels=None, dtype="float32"):
        check_choice(dtype, DTYPES, "NoiseSuite.dtype", "dtypes")
        self.dtype = dtype
        if isinstance(noises, str) or not isinstance(noises, (list, tuple)) or not noises:
            raise BioflowError(f"NoiseSuite.noises must be a non-empty list of noise names, got {noises!r}.")
        if levels is not None and not isinstance(levels, dict):
            raise BioflowError(f"NoiseSuite.levels must be a dict {{noise: [levels]}} or None, got {levels!r}.")
        self.noises = tuple(noises)
        for name in self.noises:
            get(name)
        for name in levels or {}:
            get(name)  # levels of a noise the suite leaves out are ignored, but must name a noise
        self.levels = {}
        for name in self.noises:
            given = (levels or {}).get(name, get(name).levels)
            if isinstance(given, str) or not hasattr(given, "__len__"):
                raise BioflowError(f"NoiseSuite.levels[{name!r}] must be a list of levels, got {given!r}.")
            if not 1 <= len(given) <= MAX_LEVELS:
                raise BioflowError(f"NoiseSuite.levels[{name!r}] must list 1 to {MAX_LEVELS} levels (the paper "
                                   f"uses 11), got {len(given)}.")
            self.levels[name] = tuple(_check_level(get(name), v) for v in given)

    def items(self) -> list[tuple[str, tuple[float, ...]]]:
        """``(name, levels)`` pairs in order."""
        return [(name, self.levels[name]) for name in self.noises]
