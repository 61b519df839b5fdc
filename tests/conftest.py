import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pathlib  # noqa: E402

import gin  # noqa: E402
import pytest  # noqa: E402

#: The repository's gin/ tree.
GIN_DIR = pathlib.Path(__file__).resolve().parents[1] / "gin"

#: Bindings that shrink any shipped network to CPU size (used by the smoke tests).
TINY_BINDINGS = (
    "build_model.input_shape = (32, 32, 1)",
    "vgg16.width = 0.125", "vgg16.fc_units = 16",
    "vgg19.width = 0.125", "vgg19.fc_units = 16",
    "resnet50.width = 0.0625", "allcnn.width = 0.125",
    "RetinalBottleneck.filters = 4", "BLTRecurrence.filters = 4",
)


@pytest.fixture(autouse=True)
def clean_gin():
    gin.clear_config()
    yield
    gin.clear_config()
