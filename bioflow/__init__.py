"""bioflow: declarative, gin-configured TensorFlow/Keras framework for bio-inspired CNNs."""
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.2.0"
