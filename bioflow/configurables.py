"""Imports every module that registers something with gin, once.

The package (``bioflow/__init__.py``) imports this module, as ddsp's package import does, so
every bioflow configurable exists before any gin file is read, whichever bioflow module was
imported first. The registering modules never import it (or ``bioflow.config``) themselves, which
keeps the imports free of cycles.
"""
import bioflow.bases  # noqa: F401  (the bases)
import bioflow.components  # noqa: F401  (filter banks, bottleneck, recurrences)
import bioflow.data  # noqa: F401  (data sources and the pipeline)
import bioflow.evaluate  # noqa: F401  (evaluate)
import bioflow.explain  # noqa: F401  (explain)
import bioflow.model  # noqa: F401  (build_model)
import bioflow.noise  # noqa: F401  (NoiseSuite)
import bioflow.runner  # noqa: F401  (train)
import bioflow.sweep  # noqa: F401  (Sweep)
import bioflow.zoo  # noqa: F401  (pull)
