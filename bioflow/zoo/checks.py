"""What a zoo entry must be before bioflow installs or uses it.

sha256 checks prove that an entry's files are the ones its remote declared, not that the remote
is honest. So every entry is also checked for what it holds:

* ``card.json`` has the fields bioflow reads, with the right types (:data:`CARD_SCHEMA`, checked with
  ``jsonschema``);
* ``operative_config.gin`` passes the restricted reader (:mod:`bioflow.safe_gin`): no imports,
  no dynamic registration, nothing bioflow did not register;
* ``model.keras`` holds no Lambda layer and no object from outside Keras and bioflow, loads in
  Keras' safe mode, and its weights are finite.

``zoo pull`` refuses an entry that fails any check (nothing is installed), and ``zoo verify``
reports the same problems for an entry already on disk.
"""
import json
import math
import re
import zipfile

import keras

import bioflow.components  # noqa: F401  (registers bioflow's Keras layers for deserialisation)
from bioflow import architecture, safe_gin, schema, weights
from bioflow.data.preprocessing import INTERPOLATIONS, NORMALISATIONS
from bioflow.errors import BioflowError, choices

#: Keras classes that carry Python code: bioflow never loads them.
CODE_CLASSES = ("Lambda", "TFOpLambda", "__lambda__")
MAX_MODEL_CONFIG_BYTES = 64 << 20
#: The most a model.keras may inflate to, over all its members (VGG-16's weights are 0.5 GiB).
MAX_MODEL_BYTES = 16 << 30
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _nullable(kind):
    return {"type": [kind, "null"]}


def _map(values):
    return {"type": "object", "additionalProperties": values}


def _record(properties, required=()):
    return {"type": "object", "properties": properties, **({"required": list(required)} if required else {})}


#: ``files`` maps each relative path to its hash and size.
FILE_SCHEMA = _record({"sha256": {"type": "string"}, "size": {"type": "integer"}}, required=("sha256", "size"))
#: The card's ``architecture``: the record's own schema (from :class:`bioflow.architecture.Architecture`'s
#: field types), plus the layer settings that cards of bioflow 0.1 carried.
_ARCHITECTURE = {**architecture.JSON_SCHEMA, "properties": {
    **architecture.JSON_SCHEMA["properties"], "filter_bank": _map({"type": "object"}),
    "bottleneck_layers": _map({"type": "object"}), "recurrence_layers": _map({"type": "object"})}}
_ARCHITECTURE.pop("required", None)  # a 0.1 card's record may lack the newer fields
#: What ``card.json`` must be: the fields bioflow reads, with their JSON types (others are ignored).
CARD_SCHEMA = _record({
    "name": {"type": "string"}, "version": {"type": "string"}, "created": _nullable("string"),
    "git_commit": _nullable("string"), "versions": _map(_nullable("string")),
    "run": _record({"model": _nullable("string"), "label": _nullable("string"), "trial": _nullable("integer"),
                    "seed": _nullable("integer"), "weights": _nullable("string"), "epochs": _nullable("integer"),
                    "strategy": _nullable("string"), "global_batch": _nullable("integer")}),
    "data": _record({"dataset": {"type": "string"}, "interpolation": {"type": "string"},
                     "image_size": {"type": "integer"}, "mean": {"type": "number"}, "std": {"type": "number"},
                     "origin": _nullable("string"), "normalisation": _nullable("string"),
                     "n_train": _nullable("integer"), "n_test": _nullable("integer"),
                     "classes": {"type": "array", "items": {"type": "string"}}},
                    required=("dataset", "interpolation", "mean", "std")),
    "architecture": _ARCHITECTURE,
    "parameters": _map({"type": "integer"}),
    "input_shape": {"type": "array", "items": {"type": "integer"}},
    "metrics": _record({"final_val_accuracy": _nullable("number"), "clean_accuracy": _nullable("number"),
                        "n_images": _nullable("integer"), "generalisation": _map({"type": "number"}),
                        "auc": _map({"type": "number"})}),
    "files": _map(FILE_SCHEMA),
}, required=("name", "version", "data", "files"))


def card_problems(card, name=None, version=None):
    """What is wrong with a parsed ``card.json`` (an empty list when nothing is)."""
    problems = schema.problems(card, CARD_SCHEMA, "the card")
    if problems:
        return problems
    if name is not None and (card["name"], card["version"]) != (name, version):
        problems.append(f"it describes {card['name']}@{card['version']}, not {name}@{version}")
    for rel, meta in card["files"].items():
        if not _SHA256.fullmatch(meta["sha256"]) or meta["size"] < 0:
            problems.append(f"files[{rel!r}] needs a sha256 of 64 hex digits and a size >= 0")
    for required in ("model.keras", "operative_config.gin"):
        if required not in card["files"]:
            problems.append(f"it lists no {required}")
    paths = set(card["files"])
    for rel in sorted(paths):
        parts = rel.split("/")
        for depth in range(1, len(parts)):
            if "/".join(parts[:depth]) in paths:
                problems.append(f"files lists both {'/'.join(parts[:depth])!r} and {rel!r}: one cannot be a file "
                                "and a folder")
    return problems + data_problems(card["data"])


#: The largest image side a card may declare (a 224x224 network is the paper's).
MAX_IMAGE_SIZE = 4096


def data_problems(data):
    """What is wrong with a card's preprocessing record: the only settings an entry contributes."""
    problems = []
    normalisation = data.get("normalisation")
    if normalisation not in (None, *NORMALISATIONS):
        problems.append(f"data.normalisation must be {choices(NORMALISATIONS)} or null, got {normalisation!r}")
    if data["interpolation"] not in INTERPOLATIONS:
        problems.append(f"data.interpolation must be {choices(INTERPOLATIONS)}, got {data['interpolation']!r}")
    mean, std = data["mean"], data["std"]
    if not (math.isfinite(mean) and 0 <= mean <= 255):
        problems.append(f"data.mean must be a finite pixel value in [0, 255], got {mean!r}")
    if not (math.isfinite(std) and 1e-6 < std <= 255):
        problems.append(f"data.std must be a finite pixel spread in (1e-6, 255] (the network divides by it), "
                        f"got {std!r}")
    size = data.get("image_size")
    if size is not None and not 1 <= size <= MAX_IMAGE_SIZE:
        problems.append(f"data.image_size must be from 1 to {MAX_IMAGE_SIZE}, got {size!r}")
    classes = data.get("classes")
    if classes is not None and not 2 <= len(classes) <= 100_000:
        problems.append(f"data.classes must list 2 to 100000 class names, got {len(classes)}")
    return problems


def read_card(path, name=None, version=None):
    """The ``card.json`` at ``path``, parsed and checked; a :class:`BioflowError` naming the file otherwise."""
    try:
        card = json.loads(path.read_bytes())
    except (ValueError, RecursionError, OSError) as err:
        raise BioflowError(f"{path} is not a readable card ({type(err).__name__}: {str(err)[:200]}).") from None
    problems = card_problems(card, name, version)
    if problems:
        shown = "; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "")
        raise BioflowError(f"{path} is not a valid card: {shown}.")
    return card


def model_problems(path):
    """Why ``model.keras`` at ``path`` must not be loaded: code-carrying layers or foreign objects."""
    try:
        with zipfile.ZipFile(path) as archive:
            bombs = _inflation_problems(archive)
            if bombs:
                return bombs
            with archive.open("config.json") as member:
                raw = member.read(MAX_MODEL_CONFIG_BYTES + 1)  # inflates at most this much, whatever the header says
            if len(raw) > MAX_MODEL_CONFIG_BYTES:
                return ["its config.json is larger than 64 MiB"]
            config = json.loads(raw)
    except (zipfile.BadZipFile, KeyError, ValueError, RecursionError, OSError, EOFError) as err:
        return [f"it is not a Keras model archive ({type(err).__name__}: {str(err)[:120]})"]
    problems, stack = [], [config]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        stack.extend(node.values())
        cls, module, registered = node.get("class_name"), node.get("module"), node.get("registered_name")
        if cls is None:
            continue
        layer = (node.get("config") or {}).get("name") if isinstance(node.get("config"), dict) else None
        what = f"{cls!r}" + (f" (layer {layer!r})" if layer else "")
        if cls in CODE_CLASSES:
            problems.append(f"it holds a Lambda layer {what}, which carries Python code")
        elif module is not None and not (isinstance(module, str) and re.fullmatch(r"(keras|bioflow)(\.[\w.]+)?",
                                                                                  module)):
            problems.append(f"it holds {what} from module {module!r}, which is neither Keras nor bioflow")
        elif isinstance(registered, str) and ">" in registered and not registered.startswith("bioflow>"):
            problems.append(f"it holds the custom object {registered!r}, which bioflow does not provide")
    return sorted(set(problems))


def _inflation_problems(archive):
    """Refuse members that declare more than :data:`MAX_MODEL_BYTES`, then inflate every member in
    1 MiB steps. ``zipfile`` stops a member at the size its header declares and checks its CRC
    there, so a member that inflates to more than it declares (a zip bomb) fails with a CRC error
    (``BadZipFile``) having held at most 1 MiB at a time."""
    declared = sum(m.file_size for m in archive.infolist())
    if declared > MAX_MODEL_BYTES:
        return [f"its members declare {declared:,} bytes, more than the {MAX_MODEL_BYTES:,} bioflow accepts"]
    for member in archive.infolist():
        with archive.open(member) as stream:
            while stream.read(1 << 20):
                pass
    return []


def load_model(path, where):
    """The Keras model at ``path`` (an entry's ``model.keras``), checked for code first, then loaded
    in safe mode; a :class:`BioflowError` naming ``where`` when it is refused or does not load."""
    problems = model_problems(path)
    if problems:
        raise BioflowError(f"Refusing to load {where}: model.keras {'; '.join(problems)}.")
    try:
        model = keras.saving.load_model(path, safe_mode=True)
    except Exception as err:  # Keras raises many types for archives it cannot rebuild
        first = str(err).splitlines()[0][:300] if str(err) else ""
        raise BioflowError(f"Cannot load {path} with Keras' safe mode: {type(err).__name__}: {first}") from err
    weights.check_finite(model, f"{where}: model.keras")
    return model


def entry_problems(folder, where, model_loaded=False):
    """What stops bioflow from using the entry in ``folder`` (its files already verified by sha256).

    ``model_loaded``: the caller has loaded these same ``model.keras`` bytes in safe mode and checked
    their weights (publishing a run), so they are not loaded a second time.
    """
    problems = [f"model.keras: {p}" for p in model_problems(folder / "model.keras")]
    if not problems and not model_loaded:
        try:
            load_model(folder / "model.keras", where)
        except BioflowError as err:
            problems.append(str(err).rstrip("."))
    return problems + config_problems(folder, where)


def config_problems(folder, where):
    """Why the entry's ``operative_config.gin`` is not plain gin text (it is never bound; it must stay readable)."""
    source = f"{where}: operative_config.gin"
    try:
        safe_gin.check((folder / "operative_config.gin").read_bytes().decode("utf-8"), source)
    except UnicodeDecodeError as err:
        return [f"{source} is not UTF-8 text (byte {err.start} is {err.object[err.start]:#04x})"]
    except (BioflowError, OSError) as err:
        return [str(err)]
    return []
