"""An experiment grid declared in gin: ``Sweep(axes, trials)`` → its cells.

    Sweep.axes = {'build_model.filter_bank': ['gabor', 'dog'], 'build_model.base': ['vgg16', 'allcnn']}
    Sweep.trials = 3

A cell is exactly the ``bioflow train`` run of the sweep's gin files plus one binding per axis and
its trial: same config, same run directory (``WORKDIR/LABEL/<model>_t<trial>_s<seed>/``).
"""
import dataclasses
import hashlib
import itertools
import json
import math
import pathlib
import re

import gin

from bioflow.errors import BioflowError
from bioflow.validation import check_positive_int

#: The largest grid a sweep accepts unless ``Sweep.max_cells`` raises it.
MAX_CELLS = 10_000

#: Axis values must be gin literals: these Python types write back as gin text exactly.
LITERALS = (str, int, float, bool, type(None))


@dataclasses.dataclass(frozen=True)
class Cell:
    """One run of the grid: its axis bindings (``{'build_model.base': 'vgg16'}``) and its trial."""

    bindings: tuple  # ((key, value), ...) in axis order
    trial: int

    @property
    def id(self) -> str:
        """A stable identifier of the cell (its bindings and trial), for the status files."""
        text = json.dumps([list(self.bindings), self.trial])
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def gin_params(self) -> list:
        """The ``--gin-param`` bindings of the cell (the trial included)."""
        return [f"{key} = {_gin_literal(value)}" for key, value in self.bindings] + [f"train.trial = {self.trial}"]

    def slug(self) -> str:
        """The axis values as one safe name part (``gabor-vgg16``), for zoo entry names."""
        text = "-".join(str(v) for _, v in self.bindings) or "cell"
        return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-")[:80] or "cell"


def _gin_literal(value):
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_gin_literal(v) for v in value) + "]"
    return repr(value)


@gin.register(module="bioflow")
class Sweep:
    """A grid: the product of ``axes`` (a binding → its values) times ``trials``.

    Args:
        axes: ``{'selector.parameter': [value, …]}``; values are gin literals (strings, numbers,
            booleans, None, lists of them). Components go by their registered names
            (``'gabor'``, ``'convlstm'``) or, for the bottleneck, a width.
        trials: the number of trials (1..N), or a list of trial numbers.
        max_cells: the largest grid accepted (default :data:`MAX_CELLS`); raise it for a larger one.
    """

    def __init__(self, axes=None, trials=1, max_cells=None):
        if not isinstance(axes, (dict, type(None))):
            raise BioflowError(f"Sweep.axes must be a dict {{binding: [values]}}, got {axes!r}.")
        max_cells = MAX_CELLS if max_cells is None else check_positive_int(max_cells, "Sweep.max_cells")
        axes = dict(axes or {})
        for key, values in axes.items():
            if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z_][\w./]*\.[A-Za-z_]\w*", key):
                raise BioflowError(f"Sweep.axes: {key!r} is not a binding such as 'build_model.base'.")
            if not isinstance(values, (list, tuple)) or not values:
                raise BioflowError(f"Sweep.axes[{key!r}] must be a non-empty list of values, got {values!r}.")
            for value in values:
                if not _is_literal(value):
                    raise BioflowError(f"Sweep.axes[{key!r}]: {value!r} is not a gin literal (a string, number, "
                                       "boolean, None or a list of them); name components by their registered "
                                       "names, e.g. 'gabor'.")
        combinations = math.prod(len(v) for v in axes.values())
        n_trials = check_positive_int(trials, "Sweep.trials") if isinstance(trials, int) else \
            len(trials) if isinstance(trials, (list, tuple)) else None
        if n_trials is None:
            raise BioflowError(f"Sweep.trials must be a number of trials or a list of trial numbers, got {trials!r}.")
        if combinations * n_trials > max_cells:
            raise BioflowError(f"The sweep has {combinations:,} combinations x {n_trials:,} trials = "
                               f"{combinations * n_trials:,} cells, more than Sweep.max_cells = {max_cells:,}. "
                               "Shrink the grid, or bind Sweep.max_cells to a larger number if you mean it.")
        if isinstance(trials, int):
            trials = list(range(1, n_trials + 1))
        trials = [check_positive_int(t, "Sweep.trials[]", maximum=1_000_000) for t in trials]
        if not trials:
            raise BioflowError("Sweep.trials is empty: the grid has no cells.")
        self.axes, self.trials = axes, trials

    def cells(self) -> list:
        """Every cell: the product of the axes, for each trial (trials outermost)."""
        keys = list(self.axes)
        combos = list(itertools.product(*(self.axes[k] for k in keys))) if keys else [()]
        return [Cell(tuple(zip(keys, combo)), trial) for trial in self.trials for combo in combos]


def _is_literal(value):
    if isinstance(value, (list, tuple)):
        return all(_is_literal(v) for v in value)
    return isinstance(value, LITERALS)


def check_axes(sweep, gin_files):
    """Check that gin accepts every axis binding; an error names the sweep file and line of the axis."""
    for key, values in sweep.axes.items():
        for value in values:
            try:
                with gin.unlock_config():
                    gin.bind_parameter(key, value)
            except (ValueError, KeyError) as err:
                raise BioflowError(f"{_where(key, gin_files)}Sweep.axes names {key!r}, which gin refuses: "
                                   f"{err}") from err


def _where(key, gin_files):
    """``'FILE:LINE: '`` of the first line that mentions ``key`` in the sweep's gin files, or ''."""
    for path in gin_files:
        try:
            lines = pathlib.Path(path).read_text().splitlines()
        except OSError:
            continue
        for number, line in enumerate(lines, start=1):
            if key in line:
                return f"{path}:{number}: "
    return ""
