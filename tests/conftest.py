import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import gin  # noqa: E402
import pytest  # noqa: E402

from helpers import TINY_RUN, TINY_TRAIN  # noqa: E402


def pytest_collection_modifyitems(items):
    """Start the slow tests first: with pytest-xdist, the other workers then share the short ones."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: keeps file order


@pytest.fixture(autouse=True)
def clean_gin():
    gin.clear_config()
    yield
    gin.clear_config()


@pytest.fixture(scope="session")
def tiny_bindings():
    """The gin bindings of a tiny quickstart run (no evaluation)."""
    return list(TINY_TRAIN)


@pytest.fixture(scope="session")
def tiny_entry(tmp_path_factory):
    """``(run_dir, zoo_root)``: a tiny run, trained, evaluated on a small suite and published as ``tiny@1.0.0``.

    Shared by the test session: copy it before changing it.
    """
    from bioflow import config
    from bioflow.runner import train

    root = tmp_path_factory.mktemp("tiny_zoo")
    config.parse(["quickstart"], list(TINY_RUN) + [
        "train.skip_test = False", "evaluate.n_images = 32", "evaluate.save_images = True",
        "NoiseSuite.noises = ['uniform', 'contrast']",
        "NoiseSuite.levels = {'uniform': [0.0, 0.5, 1.0], 'contrast': [1.0, 0.1, 0.01]}",
        "train.publish = 'tiny'", f"train.zoo = '{root}'"])
    run = train(workdir=str(tmp_path_factory.mktemp("tiny_runs")), label="tiny")
    gin.clear_config()
    return run, root
