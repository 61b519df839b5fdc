"""Fixed "V1" filter banks: Gabor, difference of Gaussians, low-pass and combined.

Each bank builds float64 kernels of shape ``(ksize, ksize, in_channels, n)`` exactly as
docs/science.md ("Filter banks") defines them. Banks are plain value objects, registered in
:data:`bioflow.registry.FILTER_BANKS` (and so with gin); the Keras layer that convolves with them is
:class:`bioflow.components.FilterBankConv`. A new bank is one subclass of :class:`FilterBank`
decorated with ``@FILTER_BANKS.register("name")`` (docs/components.md).
"""
import itertools
import math
from typing import Sequence

import numpy as np

from bioflow.errors import BioflowError, choices
from bioflow.registry import FILTER_BANKS
from bioflow.validation import check_positive_int

#: Bandwidth constant of the Gabor wavelength formula, ``sqrt(ln 2 / 2)``.
GABOR_C = math.sqrt(math.log(2) / 2)

PAPER_GABOR = dict(
    ksize=63,
    sigmas=(8.0,),
    bs=tuple(np.linspace(1, 2.6, 3).tolist()),
    gammas=(0.5,),
    thetas=(0.0, math.pi / 4, math.pi / 2, 3 * math.pi / 4),
    psis=(math.pi / 2, 3 * math.pi / 2),
)
PAPER_DOG = dict(ksize=63, sigmas=(1.0, 2.0, 4.0, 8.0), gammas=(1.6, 1.8, 2.0, 2.2))
PAPER_LOWPASS = dict(ksize=63, sigmas=(1.0, 2.0, 4.0, 8.0))


def _check_ksize(bank, ksize):
    if isinstance(ksize, bool) or not isinstance(ksize, (int, np.integer)) or ksize <= 0 or ksize % 2 == 0:
        raise BioflowError(f"{bank}: ksize must be a positive odd integer, got {ksize!r}.")
    return int(ksize)


def _check_list(bank, name, values, minimum=None, strict=True):
    if values is None or np.ndim(values) != 1 or len(values) == 0:
        raise BioflowError(f"{bank}: {name} must be a non-empty list of numbers, got {values!r}.")
    values = tuple(float(v) for v in values)
    if minimum is not None:
        for v in values:
            if (v <= minimum) if strict else (v < minimum):
                rel = ">" if strict else ">="
                raise BioflowError(f"{bank}: every value of {name} must be {rel} {minimum}, got {v!r}.")
    return values


def _repeat_channels(kernels_2d, in_channels):
    """Stack ``(n, k, k)`` 2-D kernels as ``(k, k, in_channels, n)``."""
    in_channels = check_positive_int(in_channels, "in_channels")
    k = np.stack(kernels_2d, axis=-1)[:, :, None, :]
    return np.repeat(k, int(in_channels), axis=2).astype(np.float64)


def gaussian_2d(ksize, sigma):
    """Normalised 2-D Gaussian: outer product of 1-D Gaussians, summing to 1."""
    i = np.arange(ksize, dtype=np.float64)
    g = np.exp(-((i - (ksize - 1) / 2) ** 2) / (2 * np.float64(sigma) ** 2))
    g2 = np.outer(g, g)
    return g2 / g2.sum()


class FilterBank:
    """Base class of the single-stage filter banks.

    Subclasses set ``kind`` (used in layer names, e.g. ``v1_gabor``), keep ``ksize`` and implement
    ``_kernels_2d`` (a list of ``(ksize, ksize)`` arrays) and ``get_config`` (the constructor's
    arguments, JSON-ready, so that a saved model can rebuild the bank).
    """

    kind = "filterbank"
    ksize: int

    @property
    def label(self) -> str:
        """The bank's part of a model name (``gabor``)."""
        return self.kind

    @property
    def n_kernels(self):
        """Number of kernels (output channels) of the bank."""
        return len(self._kernels_2d())

    def _kernels_2d(self) -> list:
        raise NotImplementedError

    def _kernel_parameters(self) -> list[dict]:
        """One dict per kernel, in the order of ``_kernels_2d``: the values (keyed by the constructor
        argument that holds them) that made it, for messages."""
        raise NotImplementedError

    def _check_kernels(self) -> None:
        """Raise a :class:`BioflowError` when a kernel is not finite or is all zero (call at the end of ``__init__``).

        A degenerate value (a sigma whose square underflows, a bandwidth that makes the wavelength 0)
        gives NaN or infinite kernels in float64; what a network then does with NaN depends on the
        CPU (max pooling may hide it), so it is refused here, by name.
        """
        name = type(self).__name__
        with np.errstate(all="ignore"):
            kernels = self._kernels_2d()
        for parameters, kernel in zip(self._kernel_parameters(), kernels):
            given = ", ".join(f"{key}={value!r}" for key, value in parameters.items())
            bindings = " or ".join(f"{name}.{key}" for key in parameters)
            bad = int(np.count_nonzero(~np.isfinite(kernel)))
            if bad:
                raise BioflowError(
                    f"{name}: the kernel for {given} has {bad} NaN or infinite values of {kernel.size} "
                    f"(ksize {self.ksize}): a value this small or large underflows or overflows in float64. "
                    f"Change {bindings} so that every kernel is finite.")
            if not np.any(kernel):
                raise BioflowError(
                    f"{name}: the kernel for {given} is all zero at ksize {self.ksize}, so it would pass "
                    f"nothing. Change {name}.ksize or {bindings}.")

    def kernels(self, in_channels: int = 1) -> np.ndarray:
        """Kernels as a float64 array ``(ksize, ksize, in_channels, n_kernels)`` in the order of docs/science.md."""
        return _repeat_channels(self._kernels_2d(), in_channels)

    def stages(self) -> list["FilterBank"]:
        """The single-stage banks this bank applies, in order (just itself)."""
        return [self]

    def get_config(self) -> dict:
        raise NotImplementedError

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


@FILTER_BANKS.register("gabor")
class Gabor(FilterBank):
    """Gabor filter bank (OpenCV ``getGaborKernel`` convention), docs/science.md.

    Defaults are the paper's values: 24 kernels of 63×63.
    """

    kind = "gabor"

    def __init__(self, ksize: int = PAPER_GABOR["ksize"], sigmas: Sequence[float] = PAPER_GABOR["sigmas"],
                 bs: Sequence[float] = PAPER_GABOR["bs"], gammas: Sequence[float] = PAPER_GABOR["gammas"],
                 thetas: Sequence[float] = PAPER_GABOR["thetas"], psis: Sequence[float] = PAPER_GABOR["psis"]):
        name = "Gabor"
        self.ksize = _check_ksize(name, ksize)
        self.sigmas = _check_list(name, "sigmas", sigmas, minimum=0)
        self.bs = _check_list(name, "bs", bs, minimum=0)
        self.gammas = _check_list(name, "gammas", gammas, minimum=0)
        self.thetas = _check_list(name, "thetas", thetas)
        self.psis = _check_list(name, "psis", psis)
        self._check_kernels()

    @staticmethod
    def wavelength(sigma, b):
        """Wavelength for a Gaussian width ``sigma`` and bandwidth ``b`` octaves."""
        return sigma * math.pi / GABOR_C * (2**b - 1) / (2**b + 1)

    def _kernel_parameters(self):
        return [dict(sigmas=s, thetas=t, bs=b, gammas=g, psis=p)
                for s, t, b, g, p in itertools.product(self.sigmas, self.thetas, self.bs, self.gammas, self.psis)]

    def _kernels_2d(self):
        h = self.ksize // 2
        idx = np.arange(self.ksize, dtype=np.float64)
        y = (h - idx)[:, None]
        x = (h - idx)[None, :]
        out = []
        for p in self._kernel_parameters():  # numpy floats: an extreme value gives inf/NaN, not OverflowError
            sigma, theta, b, gamma, psi = (np.float64(p[k]) for k in ("sigmas", "thetas", "bs", "gammas", "psis"))
            lam = self.wavelength(sigma, b)
            xr = x * math.cos(theta) + y * math.sin(theta)
            yr = -x * math.sin(theta) + y * math.cos(theta)
            envelope = np.exp(-0.5 * (xr**2 / sigma**2 + yr**2 * gamma**2 / sigma**2))
            out.append(envelope * np.cos(2 * math.pi * xr / lam + psi))
        return out

    def get_config(self):
        return dict(ksize=self.ksize, sigmas=list(self.sigmas), bs=list(self.bs), gammas=list(self.gammas),
                    thetas=list(self.thetas), psis=list(self.psis))


@FILTER_BANKS.register("dog")
class DoG(FilterBank):
    """Difference-of-Gaussians bank: an ON and an OFF kernel per (sigma, gamma), docs/science.md."""

    kind = "dog"

    def __init__(self, ksize: int = PAPER_DOG["ksize"], sigmas: Sequence[float] = PAPER_DOG["sigmas"],
                 gammas: Sequence[float] = PAPER_DOG["gammas"]):
        name = "DoG"
        self.ksize = _check_ksize(name, ksize)
        self.sigmas = _check_list(name, "sigmas", sigmas, minimum=0)
        self.gammas = _check_list(name, "gammas", gammas, minimum=1)
        self._check_kernels()

    def _kernel_parameters(self):
        return [dict(sigmas=s, gammas=g) for s, g in itertools.product(self.sigmas, self.gammas)
                for _on_off in range(2)]

    def _kernels_2d(self):
        out = []
        for sigma, gamma in itertools.product(self.sigmas, self.gammas):
            centre = gaussian_2d(self.ksize, sigma)
            surround = gaussian_2d(self.ksize, np.float64(sigma) * gamma)
            out += [centre - surround, surround - centre]
        return out

    def get_config(self):
        return dict(ksize=self.ksize, sigmas=list(self.sigmas), gammas=list(self.gammas))


@FILTER_BANKS.register("lowpass", aliases=("low-pass",))
class LowPass(FilterBank):
    """Low-pass bank: one normalised Gaussian per sigma, docs/science.md."""

    kind = "lowpass"

    def __init__(self, ksize: int = PAPER_LOWPASS["ksize"], sigmas: Sequence[float] = PAPER_LOWPASS["sigmas"]):
        name = "LowPass"
        self.ksize = _check_ksize(name, ksize)
        self.sigmas = _check_list(name, "sigmas", sigmas, minimum=0)
        self._check_kernels()

    def _kernel_parameters(self):
        return [dict(sigmas=s) for s in self.sigmas]

    def _kernels_2d(self):
        return [gaussian_2d(self.ksize, s) for s in self.sigmas]

    def get_config(self):
        return dict(ksize=self.ksize, sigmas=list(self.sigmas))


#: Named Combined variants: (DoG ksize, DoG sigmas, Gabor ksize, Gabor sigmas), docs/science.md.
COMBINED_VARIANTS = {
    "trim": (31, (1.0, 2.0, 4.0, 8.0), 31, (8.0,)),
    "small": (15, (1.0, 2.0, 4.0), 31, (4.0,)),
    "medium": (15, (1.0, 2.0, 4.0, 8.0), 31, (8.0,)),
    "full": (63, (1.0, 2.0, 4.0, 8.0), 63, (8.0,)),
}


@FILTER_BANKS.register("combined")
class Combined:
    """Stacked banks: a DoG layer, then a Gabor layer on the DoG layer's output.

    ``Combined(variant='trim')`` uses the table in docs/science.md; ``dog`` or ``gabor`` replace a stage.
    """

    kind = "combined"

    def __init__(self, variant: str = "trim", dog: DoG | None = None, gabor: Gabor | None = None):
        if variant not in COMBINED_VARIANTS:
            raise BioflowError(f"Combined: unknown variant {variant!r}; valid variants are "
                               f"{choices(COMBINED_VARIANTS)}.")
        self.variant = variant
        dog_k, dog_s, gabor_k, gabor_s = COMBINED_VARIANTS[variant]
        self.dog = dog if dog is not None else DoG(ksize=dog_k, sigmas=dog_s)
        self.gabor = gabor if gabor is not None else Gabor(ksize=gabor_k, sigmas=gabor_s)
        if not isinstance(self.dog, DoG) or not isinstance(self.gabor, Gabor):
            raise BioflowError(f"Combined: dog must be a DoG and gabor a Gabor bank, got "
                               f"{type(self.dog).__name__} and {type(self.gabor).__name__}.")

    @property
    def label(self) -> str:
        """The bank's part of a model name (``combined_trim``)."""
        return f"combined_{self.variant}"

    def stages(self) -> list[FilterBank]:
        """The banks in the order they are applied: ``[dog, gabor]``."""
        return [self.dog, self.gabor]

    @property
    def n_kernels(self):
        return self.gabor.n_kernels

    def kernels(self, in_channels=1):
        """Kernels of each stage: ``[dog (k, k, in_channels, 32), gabor (k, k, 32, 24)]``."""
        return [self.dog.kernels(in_channels), self.gabor.kernels(self.dog.n_kernels)]

    def get_config(self):
        return dict(variant=self.variant, dog=self.dog.get_config(), gabor=self.gabor.get_config())

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __repr__(self):
        return f"Combined(variant={self.variant!r}, dog={self.dog!r}, gabor={self.gabor!r})"


for _variant in COMBINED_VARIANTS:
    FILTER_BANKS.preset(f"combined-{_variant}", "combined", variant=_variant)


def bank_to_config(bank: FilterBank) -> dict:
    """Serialisable description of a single-stage bank: ``{'class_name', 'config'}``."""
    return {"class_name": type(bank).__name__, "config": bank.get_config()}


def bank_from_config(config: dict) -> FilterBank:
    """Inverse of :func:`bank_to_config`; only registered single-stage bank classes are built."""
    if not isinstance(config, dict) or not isinstance(config.get("config"), dict):
        raise BioflowError(f"A filter bank config must be {{'class_name': ..., 'config': {{...}}}}, got {config!r}.")
    cls = FILTER_BANKS.by_class_name(config.get("class_name"))
    if not (isinstance(cls, type) and issubclass(cls, FilterBank)):
        raise BioflowError(f"{config.get('class_name')!r} is not a single-stage filter bank; a layer takes one of "
                           f"{single_stage_names()}.")
    return cls(**config["config"])


def single_stage_names() -> str:
    """The registered single-stage bank classes, for messages."""
    return choices(c.__name__ for c in FILTER_BANKS.components() if isinstance(c, type) and issubclass(c, FilterBank))
