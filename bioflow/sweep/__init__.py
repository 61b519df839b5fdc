"""Experiment grids on Ray: ``bioflow sweep``.

Modules: ``grid`` (the gin-registered :class:`Sweep` and its cells), ``status`` (``sweep.csv`` and
``sweep.json``), ``cells`` (the cells run as Ray tasks; imports Ray only when a sweep runs).
"""
from bioflow.sweep.grid import Cell, Sweep

__all__ = ["Cell", "Sweep"]
