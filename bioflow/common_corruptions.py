"""Common corruptions in an evaluation: CIFAR-10-C through TFDS, or the corruptions computed on any
test set (:mod:`bioflow.corruptions`), into ``results/corruptions.csv`` and the ``corruptions``
record of ``robustness.json`` (docs/evaluation.md, "Common corruptions").
"""
import dataclasses

import gin
import pandas as pd
import tensorflow as tf

from bioflow import corruptions, metrics
from bioflow.data import cifar10c
from bioflow.data.preprocessing import prepare_images, to_luminance
from bioflow.data.sources import CIFAR10_CLASSES
from bioflow.errors import BioflowError, check_choice, choices
from bioflow.validation import check_bool

SOURCES = ("computed", "cifar10-c")
#: The columns of ``results/corruptions.csv``.
COLUMNS = ("Model", "Convolution", "Base", "Weights", "Trial", "Seed", "Source", "Corruption", "Severity", "Loss",
           "Accuracy")


@gin.register(module="bioflow")
@dataclasses.dataclass(frozen=True)
class CorruptionSuite:
    """The common corruptions an evaluation runs (``--corruptions cifar10-c|computed``).

    Attributes:
        source: ``'computed'`` (bioflow's corruptions on the evaluation's own test images, at their
            size) or ``'cifar10-c'`` (the published CIFAR-10-C images through TFDS, for networks
            trained on the CIFAR-10 classes).
        corruptions: the corruptions (None: the source's benchmark corruptions, 12 computed or 15 of
            CIFAR-10-C; the extra ones by name).
        severities: the severities, of 1 to 5.
        data_dir, copy, download: where CIFAR-10-C comes from (:mod:`bioflow.data.cifar10c`): a TFDS
            data directory, a copy of the published arrays, and whether TFDS may download it.
    """

    source: str = "computed"
    corruptions: tuple = None
    severities: tuple = (1, 2, 3, 4, 5)
    data_dir: str = None
    copy: str = None
    download: bool = True

    def __post_init__(self):
        check_choice(self.source, SOURCES, "CorruptionSuite.source", "sources")
        valid = self.valid()
        if self.corruptions is not None:
            if isinstance(self.corruptions, str) or not isinstance(self.corruptions, (list, tuple)) \
                    or not self.corruptions:
                raise BioflowError(f"CorruptionSuite.corruptions must be a non-empty list of names or None, got "
                                   f"{self.corruptions!r}.")
            if len(set(self.corruptions)) != len(self.corruptions):
                raise BioflowError(f"CorruptionSuite.corruptions names a corruption twice: {self.corruptions!r}.")
            for name in self.corruptions:
                if name not in valid:
                    why = f" ({corruptions.LEFT_OUT[name]})" if self.source == "computed" and \
                        name in corruptions.LEFT_OUT else ""
                    raise BioflowError(f"Unknown corruption {name!r} for source {self.source!r}{why}; valid "
                                       f"corruptions are {choices(valid)}.")
        severities = self.severities
        if isinstance(severities, (str, bytes)) or not isinstance(severities, (list, tuple)) or not severities \
                or not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 5 for v in severities) \
                or len(set(severities)) != len(severities):
            raise BioflowError(f"CorruptionSuite.severities must be a non-empty list of distinct severities 1 to 5, "
                               f"got {severities!r}.")
        for key in ("data_dir", "copy"):
            value = getattr(self, key)
            if value is not None and not isinstance(value, str):
                raise BioflowError(f"CorruptionSuite.{key} must be a folder or None, got {value!r}.")
        check_bool(self.download, "CorruptionSuite.download")

    def valid(self):
        """The corruption names this source has."""
        return corruptions.ALL if self.source == "computed" else cifar10c.BENCHMARK + cifar10c.EXTRA

    @property
    def names(self) -> tuple:
        """The corruptions run, in order."""
        if self.corruptions is not None:
            return tuple(self.corruptions)
        return corruptions.BENCHMARK if self.source == "computed" else cifar10c.BENCHMARK

    def check(self, stats=None):
        """Fail before any work: CIFAR-10-C needs a network trained on the CIFAR-10 classes, and its data."""
        if self.source != "cifar10-c":
            return
        cifar10 = stats is None or stats.get("dataset") == "cifar10" or tuple(stats.get("classes") or ()) == \
            CIFAR10_CLASSES  # TFDS's CIFAR-10 (its mock data names the classes '0'..'9'), or the same classes
        if not cifar10:
            raise BioflowError(f"CIFAR-10-C has the CIFAR-10 classes, but the model was trained on "
                               f"{stats.get('dataset')!r}: evaluate it with --corruptions computed instead.")
        cifar10c.check_available(self.names, self.severities, self.data_dir, self.copy, self.download)


def run(evaluator, suite, test_images, labels, stats, size, n_images, meta, echo=print):
    """``(table, summary)``: every corruption at every severity through ``evaluator`` (the evaluation's
    :class:`bioflow.evaluate._Evaluator`), on the test images or on CIFAR-10-C's. The caller has run
    ``suite.check(stats)`` before any work (``bioflow.evaluate.evaluate`` does)."""
    rows, evaluated = [], len(labels)
    for name in suite.names:
        echo(f"Evaluating corruption {name} ({suite.source}, severities {', '.join(map(str, suite.severities))})")
        for severity in suite.severities:
            if suite.source == "computed":
                scores = evaluator.run(test_images, labels, corruptions.PREFIX + name, float(severity))
            else:
                data = cifar10c.load(name, severity, suite.data_dir, suite.copy, suite.download)
                grey = data.map(lambda x, y: (to_luminance(tf.cast(x, tf.float32)), y))
                images, truth = prepare_images(grey, size, stats["interpolation"], n_images)
                scores, evaluated = evaluator.run(images, truth), len(truth)
            rows.append(dict(meta, Source=suite.source, Corruption=name, Severity=severity, Loss=scores.loss,
                             Accuracy=scores.accuracy))
    table = pd.DataFrame(rows, columns=COLUMNS)
    summary = dict(source=suite.source, corruptions=list(suite.names), severities=list(suite.severities),
                   **metrics.corruption_summary(table))
    summary["n_images"] = int(evaluated)
    return table, summary
