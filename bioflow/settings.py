"""The settings objects the roots take: small registered dataclasses whose fields gin binds.

``train`` takes
* :class:`Fit`: what training computes: its length, the global batch, the optimiser and its
  schedule, and how trials are seeded (``Fit.epochs = 6``);
* :class:`Execution`: how it runs: the distribution strategy, precision, XLA, determinism,
  TensorBoard and the progress display (``Execution.strategy = 'mirrored'``).

``evaluate`` takes :class:`CIFAR10G` (the out-of-distribution sets) and :class:`Outputs` (what it
writes beside its tables); ``explain`` takes :class:`ExplainMethods` (the methods' parameters).

Each dataclass checks its own values when it is made, so a bad binding fails before anything is
built. The defaults are the seed study's. Keys that moved here from the roots' own parameters are
in :data:`RENAMED`; files written before still read (:func:`upgrade`).
"""
from __future__ import annotations

import dataclasses
import re

import gin

from bioflow.errors import BioflowError, check_choice, choices
from bioflow.validation import MAX_BATCH, MAX_EPOCHS, check_bool, check_number, check_positive_int

#: ``Outputs.layout``: bioflow's tables only, or also the original code's (``results/bionet/``).
LAYOUTS = (None, "bionet")

#: How trials are seeded (``Fit.seeding``): see :class:`Fit`.
SEEDINGS = ("per_trial", "original")
#: ``Fit.step_loss``: the loss of a network read out at every step (``BLTRecurrence.readout = 'every_step'``).
STEP_LOSSES = ("last", "mean")
#: The update rules ``Fit.update_rule`` chooses between (bioflow.training.optimizers).
UPDATE_RULES = ("keras2", "keras3")
PRECISIONS = (None, "mixed_float16", "mixed_bfloat16")
PROGRESS = (None, "bar", "line")


@gin.register(module="bioflow")
@dataclasses.dataclass(frozen=True)
class Fit:
    """What training computes.

    Attributes:
        epochs: the length of the run (a finished run with more epochs asked continues with ``resume``).
        batch_size: the global batch: images per optimiser step over all replicas (each replica gets
            ``batch_size / replicas``), so results do not depend on the hardware.
        optimizer: SGD, RMSprop, Adagrad, Adadelta, Adam, Adamax or Nadam.
        update_rule: ``'keras2'`` (the original's Keras 2 updates: RMSprop's ε outside the root, …) or
            ``'keras3'`` (Keras 3's classes); see :mod:`bioflow.training.optimizers`.
        learning_rate, decay: rate ``lr / (1 + decay · step)`` (Keras 2's ``decay``).
        plateau_factor, plateau_patience, min_learning_rate: reduce-on-plateau of ``val_loss``.
        seeding: ``'per_trial'`` (bioflow's: weights, data order and augmentation all from
            ``(seed, trial)``) or ``'original'`` (the original's: data order and augmentation from
            ``seed`` alone, the same in every trial, so trials differ only in their initial weights,
            which bioflow seeds from ``(seed, trial)`` where the original left them unseeded).
        step_loss: for a network read out at every step (``BLTRecurrence.readout = 'every_step'``):
            ``'last'`` trains on the last step's loss (what a network with one readout does),
            ``'mean'`` on the mean of every step's loss, as rcnn-sat's readout at every step.
    """

    epochs: int = 100
    batch_size: int = 32
    optimizer: str = "RMSprop"
    update_rule: str = "keras2"
    learning_rate: float = 1e-4
    decay: float = 1e-6
    plateau_factor: float = 0.2
    plateau_patience: int = 5
    min_learning_rate: float = 1e-8
    seeding: str = "per_trial"
    step_loss: str = "last"

    def __post_init__(self):
        check_positive_int(self.epochs, "Fit.epochs", maximum=MAX_EPOCHS)
        check_positive_int(self.batch_size, "Fit.batch_size", maximum=MAX_BATCH)
        if not isinstance(self.optimizer, str):
            raise BioflowError(f"Fit.optimizer must be an optimiser's name, got {self.optimizer!r}.")
        check_choice(self.update_rule, UPDATE_RULES, "Fit.update_rule", "update rules")
        check_number(self.learning_rate, "Fit.learning_rate", above=0)
        check_number(self.decay, "Fit.decay", minimum=0)
        check_number(self.plateau_factor, "Fit.plateau_factor", above=0, maximum=1)
        check_positive_int(self.plateau_patience, "Fit.plateau_patience", minimum=0)
        check_number(self.min_learning_rate, "Fit.min_learning_rate", minimum=0)
        check_choice(self.seeding, SEEDINGS, "Fit.seeding", "seedings")
        check_choice(self.step_loss, STEP_LOSSES, "Fit.step_loss", "step losses")

    @property
    def plateau(self) -> tuple:
        """``(factor, patience, min_learning_rate)`` of the reduce-on-plateau schedule."""
        return self.plateau_factor, self.plateau_patience, self.min_learning_rate


@gin.register(module="bioflow")
@dataclasses.dataclass(frozen=True)
class Execution:
    """How training runs; none of it changes what a run computes, so a run may continue with other values.

    Attributes:
        strategy: ``'default'`` (one device), ``'mirrored'`` (all local GPUs) or ``'multi_worker'``.
        mixed_precision: None, ``'mixed_float16'`` or ``'mixed_bfloat16'``.
        jit_compile: compile the train and eval steps with XLA.
        deterministic_ops: make TensorFlow ops deterministic (slower).
        tensorboard: write TensorBoard logs under ``logs/``.
        progress: ``'bar'``, ``'line'`` or None (a bar on a terminal, else one line per epoch).
    """

    strategy: str = "default"
    mixed_precision: str | None = None
    jit_compile: bool = False
    deterministic_ops: bool = False
    tensorboard: bool = False
    progress: str | None = None

    def __post_init__(self):
        if not isinstance(self.strategy, str):
            raise BioflowError(f"Execution.strategy must be a strategy's name, got {self.strategy!r}.")
        if self.mixed_precision not in PRECISIONS:
            raise BioflowError(f"Unknown Execution.mixed_precision {self.mixed_precision!r}; valid values are None, "
                               f"{choices(p for p in PRECISIONS if p)}.")
        for key in ("jit_compile", "deterministic_ops", "tensorboard"):
            check_bool(getattr(self, key), f"Execution.{key}")
        check_choice(self.progress, PROGRESS, "Execution.progress", "progress displays")


@gin.register(module="bioflow")
@dataclasses.dataclass(frozen=True)
class CIFAR10G:
    """CIFAR-10G, evaluated after the test set (docs/evaluation.md).

    Attributes:
        folder: a local copy (the folder holding ``224x224/``), ``'download'`` (its TFDS builder
            fetches it), or None to skip it.
        perturb: also run the noise suite on each CIFAR-10G set.
    """

    folder: str | None = None
    perturb: bool = False

    def __post_init__(self):
        if self.folder is not None and not isinstance(self.folder, str):
            raise BioflowError(f"CIFAR10G.folder must be a folder, 'download' or None, got {self.folder!r}.")
        check_bool(self.perturb, "CIFAR10G.perturb")


@gin.register(module="bioflow")
@dataclasses.dataclass(frozen=True)
class Outputs:
    """What an evaluation writes beside its tables.

    Attributes:
        predictions: write ``predictions.csv`` (per-image probabilities).
        images: ``True`` (or ``'grid'``) writes a PNG grid of perturbed examples per noise under
            ``images/``; ``'all'`` also writes every perturbed image, as the original's
            ``--save_images`` did, to ``images/<set>/<noise>/L<level index>_<level>_<index>.png``.
        layout: ``'bionet'`` also writes the tables in the original code's layout under
            ``results/bionet/`` (:func:`bioflow.bionet_layout.write`), for its analysis scripts.
    """

    predictions: bool = False
    images: bool | str = False
    layout: str | None = None

    def __post_init__(self):
        check_bool(self.predictions, "Outputs.predictions")
        if not isinstance(self.images, bool) and self.images not in ("grid", "all"):
            raise BioflowError(f"Outputs.images must be False, True, 'grid' or 'all', got {self.images!r}.")
        if self.layout not in LAYOUTS:
            raise BioflowError(f"Unknown Outputs.layout {self.layout!r}; valid layouts are None or 'bionet'.")


@gin.register(module="bioflow")
@dataclasses.dataclass(frozen=True)
class ExplainMethods:
    """The parameters of ``bioflow explain``'s methods (docs/explain.md).

    Attributes:
        layers: layers for Grad-CAM (None: the last convolution with maps of at least 7×7); the
            first is also the top-k layer.
        units, k: the channels of the top-k layer, and how many most-activating test images to show.
        patch, stride: the occlusion square and its step, in pixels.
    """

    layers: tuple | None = None
    units: tuple = (0, 1, 2, 3)
    k: int = 9
    patch: int = 8
    stride: int = 4

    def __post_init__(self):
        if self.layers is not None and (isinstance(self.layers, str) or not isinstance(self.layers, (list, tuple))
                                        or not all(isinstance(n, str) for n in self.layers)):
            raise BioflowError(f"ExplainMethods.layers must be a list of layer names or None, got {self.layers!r}.")
        for key, most in (("k", 1000), ("patch", 4096), ("stride", 4096)):
            check_positive_int(getattr(self, key), f"ExplainMethods.{key}", maximum=most)
        units = self.units
        if isinstance(units, (str, bytes)) or not isinstance(units, (list, tuple)) or not units:
            raise BioflowError(f"ExplainMethods.units must be a non-empty list of channel numbers, got {units!r}.")
        for unit in units:
            check_positive_int(unit, "ExplainMethods.units[]", minimum=0, maximum=1_000_000)


#: Keys renamed when the roots' parameters moved into these dataclasses (bioflow 0.3).
#: Run directories and gin files written before still read: :func:`upgrade` renames their keys.
RENAMED = {f"train.{k}": f"Fit.{k}" for k in (f.name for f in dataclasses.fields(Fit))}
RENAMED |= {f"train.{k}": f"Execution.{k}" for k in (f.name for f in dataclasses.fields(Execution))}
RENAMED |= {"evaluate.generalisation_dir": "CIFAR10G.folder", "evaluate.perturb_generalisation": "CIFAR10G.perturb",
            "evaluate.save_predictions": "Outputs.predictions", "evaluate.save_images": "Outputs.images",
            "evaluate.layout": "Outputs.layout", "evaluate.perturbed_dtype": "NoiseSuite.dtype"}
RENAMED |= {f"explain.{k}": f"ExplainMethods.{k}" for k in (f.name for f in dataclasses.fields(ExplainMethods))}


def current_key(key: str) -> str:
    """``key`` (``'train.epochs'``, ``'bioflow.train.epochs'``, ``'scope/train.epochs'``) under its current name."""
    scope, _, name = key.rpartition("/")
    prefix = "bioflow." if name.startswith("bioflow.") else ""
    new = RENAMED.get(name.removeprefix("bioflow."))
    return key if new is None else f"{scope + '/' if scope else ''}{prefix}{new}"


_OLD_BINDING = re.compile(r"^(\s*(?:[\w.-]+/)?)(?:bioflow\.)?((?:train|evaluate|explain)\.(\w+))(?=\s*=)", re.M)


def upgrade(text: str) -> tuple[str, list[str]]:
    """``(text with renamed keys under their new names, the old keys found)`` for gin text."""
    found = []

    def rename(match):
        new = RENAMED.get(match.group(2))
        if new is None:
            return match.group(0)
        found.append(match.group(2))
        return f"{match.group(1)}{new}"

    return _OLD_BINDING.sub(rename, text), found
