"""Imports every module that registers something with gin, once.

``bioflow.config.parse`` and the restricted reader (``bioflow.safe_gin``) import this module, so
that every bioflow configurable exists before a gin file is read. The registering modules never
import it (or ``bioflow.config``) themselves, which keeps the imports free of cycles.
"""
import bioflow.bases  # noqa: F401  (the bases)
import bioflow.components  # noqa: F401  (filter banks, bottleneck, recurrences)
import bioflow.data  # noqa: F401  (data sources and the pipeline)
import bioflow.evaluate  # noqa: F401  (evaluate)
import bioflow.model  # noqa: F401  (build_model)
import bioflow.noise  # noqa: F401  (NoiseSuite)
import bioflow.runner  # noqa: F401  (train)
import bioflow.zoo  # noqa: F401  (pull)
