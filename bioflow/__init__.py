"""bioflow: declarative, gin-configured TensorFlow/Keras framework for bio-inspired CNNs.

``import bioflow`` is light: it loads neither TensorFlow nor the components. They register with
gin when the config layer first needs them (``bioflow.config`` imports ``bioflow.configurables``).
"""
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bioflow._version import __version__  # noqa: E402,F401
