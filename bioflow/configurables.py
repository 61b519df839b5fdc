"""Registers every bioflow component and configurable with gin, on import.

The config layer (:mod:`bioflow.config`) imports this module, so every configurable exists before
any gin file is read. ``import bioflow`` does not: like ``ddsp.training``, the registering modules
(and TensorFlow with them) load only when a configuration is parsed, so ``bioflow --help`` and the
CLI's usage errors start in well under a second. The registering modules never import this
module (or ``bioflow.config``) themselves, which keeps the imports free of cycles.
"""
from bioflow import tensorflow_runtime

tensorflow_runtime.load()  # first, so that TensorFlow's C++ start-up log is held back

import bioflow.attacks  # noqa: E402,F401  (Attack, AttackSuite)
import bioflow.bases  # noqa: E402,F401  (the bases)
import bioflow.common_corruptions  # noqa: E402,F401  (CorruptionSuite; the corruptions as perturbations c_<name>)
import bioflow.components  # noqa: E402,F401  (filter banks, bottleneck, recurrences)
import bioflow.data  # noqa: E402,F401  (data sources and the pipeline)
import bioflow.evaluate  # noqa: E402,F401  (evaluate)
import bioflow.explain  # noqa: E402,F401  (explain)
import bioflow.model  # noqa: E402,F401  (build_model)
import bioflow.noise  # noqa: E402,F401  (NoiseSuite)
import bioflow.runner  # noqa: E402,F401  (train)
import bioflow.sweep  # noqa: E402,F401  (Sweep)
import bioflow.zoo  # noqa: E402,F401  (pull)
