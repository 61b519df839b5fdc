"""bioflow: declarative, gin-configured TensorFlow/Keras framework for bio-inspired CNNs."""
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bioflow._version import __version__  # noqa: E402,F401

# Like ddsp, importing the package registers every component and configurable with gin, once.
import bioflow.configurables  # noqa: E402,F401
