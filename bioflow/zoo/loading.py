"""Loading zoo entries: ``bioflow.zoo.load("NAME[@VERSION]")`` → ``(model, card)``."""
from __future__ import annotations

import os

import keras

from bioflow.errors import BioflowError
from bioflow.io import PathLike
from bioflow.zoo import checks
from bioflow.zoo.local import Zoo, sha256_file
from bioflow.zoo.remote import ENV_REMOTE, pull


def load(spec: str, root: PathLike | None = None, remote: str | None = None) -> tuple[keras.Model, dict]:
    """The model of a zoo entry, ready to predict, and its card.

    The entry is pulled from ``remote`` (or ``$BIOFLOW_ZOO_REMOTE``) when it is not in the local
    zoo. ``model.keras`` is checked against the card's sha256 and loaded with Keras' safe mode; an
    entry whose config a pull would refuse is refused too. Nothing in the entry configures
    anything: evaluating it takes the model and the card's ``data`` record only.
    Inputs are ``[N, H, W, 1]`` luminance in 0..255, normalised as the card's data says:
    ``bioflow.data.preprocessing.normaliser(card["data"])`` (``(x - mean) / std`` unless
    ``card["data"]["normalisation"]`` is ``'samplewise'``).
    """
    zoo = Zoo(root)
    try:
        name, version = zoo.resolve(spec)
    except BioflowError:
        if not (remote or os.environ.get(ENV_REMOTE)):
            raise
        pull(spec, remote=remote, root=root)
        name, version = zoo.resolve(spec)
    folder = zoo.path(name, version)
    card = zoo.card(f"{name}@{version}")
    path = folder / "model.keras"
    declared = card["files"].get("model.keras", {}).get("sha256")
    if declared is None or not path.is_file() or path.is_symlink() or sha256_file(path) != declared:
        raise BioflowError(f"{path} does not match the sha256 in its card; run "
                           f"`bioflow zoo verify {name}@{version}` and pull the entry again into a fresh zoo.")
    problems = checks.config_problems(folder, f"{name}@{version}")  # as a pull would refuse it
    if problems:
        raise BioflowError(f"Refusing to load {name}@{version}: {'; '.join(problems)}")
    return checks.load_model(path, f"{name}@{version}"), card


def run_info(card: dict) -> dict:
    """The ``run.json``-like dict that :func:`bioflow.evaluate.evaluate` needs, from a card."""
    return dict(card.get("run", {}), data=card["data"], status="complete", architecture=card.get("architecture"),
                input_shape=card.get("input_shape"), parameters=card.get("parameters"))
