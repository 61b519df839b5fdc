"""The one version source of bioflow (pyproject.toml reads it)."""
__version__ = "0.3.0"
