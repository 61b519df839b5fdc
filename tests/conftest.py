import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import gin  # noqa: E402
import pytest  # noqa: E402

from helpers import EVALUATE_SMALL, TINY_TRAIN, writable_copy  # noqa: E402


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
    """``(run_dir, zoo_root)``: the session's one trained tiny run (the quickstart's Gabor VGG-16,
    label ``pair``), evaluated on a small suite and published by ``train.publish`` as ``tiny@1.0.0``.

    Shared by the whole session: copy it before changing it (:func:`tiny_run`, :func:`zoo_copy`).
    """
    from bioflow import config
    from bioflow.runner import train

    root = tmp_path_factory.mktemp("tiny_zoo")
    config.parse(["quickstart"], list(TINY_TRAIN) + EVALUATE_SMALL + ["train.publish = 'tiny'",
                                                                     f"train.zoo = '{root}'"])
    run = train(workdir=str(tmp_path_factory.mktemp("tiny_runs")), label="pair")
    gin.clear_config()
    return run, root


@pytest.fixture
def tiny_run(tiny_entry, tmp_path):
    """A private copy of the session's trained run directory."""
    return writable_copy(tiny_entry[0], tmp_path / "tiny_run")


@pytest.fixture
def zoo_copy(tiny_entry, tmp_path):
    """A private, writable copy of the session's zoo (``tiny@1.0.0``)."""
    return writable_copy(tiny_entry[1], tmp_path / "zoo")
