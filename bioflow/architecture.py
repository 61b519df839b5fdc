"""The architecture of a built network, recorded by ``build_model`` when it builds it.

:func:`bioflow.model.build_model` attaches an :class:`Architecture` to the model
(``model.bioflow_architecture``). The runner writes it into ``run.json``, publishing into the zoo
card, and evaluation and the report read it from there: nothing works the architecture out again
from layer names.

Runs and zoo entries made before the record existed (bioflow 0.1) lack it. :func:`read` then falls
back to what they do hold: the card's older ``architecture`` keys, or, for a bare run directory,
the layer names its builder gave (:func:`from_layer_names`).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

import keras

from bioflow import schema
from bioflow.errors import BioflowError

#: Bumped when the record's fields change.
SCHEMA = 1


@dataclasses.dataclass(frozen=True)
class Architecture:
    """What a bioflow network is made of.

    Attributes:
        base: the registered base (``'vgg16'``).
        convolution: what computes the first layer, as the result tables name it: ``'original'``
            (the base's own conv), the bank's kind (``'gabor'``, ``'combined'``), or the recurrence's
            kind when a recurrence replaced it (``'convlstm'``).
        bottleneck: the bottleneck's width, or None.
        recurrence: the recurrence's kind, or None.
        input_shape: ``(H, W, C)``.
        classes: the number of outputs.
        filter_bank_config: the bank's ``{'class_name', 'config'}``, or None.
        bottleneck_config, recurrence_config: their settings, or None.
        weights: the pretrained weights it was built with, or None.
        parameters: ``{'total_params', 'trainable_params', 'non_trainable_params'}``.
        schema: the record's version (:data:`SCHEMA`; None or 0 in records older than it).

    The field types are the record's JSON types too: :data:`JSON_SCHEMA` is made from them.
    """

    base: str | None
    convolution: str | None
    bottleneck: int | None = None
    recurrence: str | None = None
    input_shape: tuple[int, ...] | None = None
    classes: int | None = None
    filter_bank_config: dict | None = None
    bottleneck_config: dict | None = None
    recurrence_config: dict | None = None
    weights: str | None = None
    parameters: dict[str, int] = dataclasses.field(default_factory=dict)
    schema: int | None = SCHEMA

    def to_dict(self) -> dict:
        """A JSON-ready dict (the ``architecture`` of run.json and of the card)."""
        out = dataclasses.asdict(self)
        out["input_shape"] = list(self.input_shape) if self.input_shape is not None else None
        return out

    @classmethod
    def from_dict(cls, record: Mapping[str, Any], where: str = "the architecture record") -> "Architecture":
        """Read a record written by :meth:`to_dict`; unknown keys (layer settings) are ignored."""
        found = schema.problems(record, JSON_SCHEMA, where)
        if found:
            text = "; ".join(found)
            raise BioflowError(f"{text}." if text.startswith(where) else f"{where}: {text}.")
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in record.items() if k in fields}
        if values.get("input_shape") is not None:
            values["input_shape"] = tuple(values["input_shape"])
        return cls(**values)


#: The JSON Schema of :meth:`Architecture.to_dict`'s record, from the field types above.
JSON_SCHEMA = schema.of_dataclass(Architecture)


def count_weights(weights) -> int:
    """The number of values in ``weights``."""
    return int(sum(math.prod(w.shape) for w in weights))


def parameter_counts(model: keras.Model) -> dict:
    """``{'total_params', 'trainable_params', 'non_trainable_params'}`` of ``model``."""
    trainable, frozen = count_weights(model.trainable_weights), count_weights(model.non_trainable_weights)
    return dict(total_params=trainable + frozen, trainable_params=trainable, non_trainable_params=frozen)


def of(model: keras.Model) -> Architecture:
    """The record ``build_model`` attached to ``model`` (a model it built, not one loaded from disk)."""
    record = getattr(model, "bioflow_architecture", None)
    if record is None:
        raise BioflowError(f"Model {model.name!r} was not built by bioflow.model.build_model in this process; read "
                           "its architecture from its run.json or card with bioflow.architecture.read.")
    return record


def read(info: Mapping[str, Any], model: keras.Model | None = None) -> Architecture:
    """The architecture recorded in ``info`` (a run.json or a card), with the fallbacks for older ones.

    A record from this release is read as is. An older card's ``architecture`` holds base,
    convolution, bottleneck and recurrence: those are used, with the input shape and parameters
    from the card. An older run.json holds none of it: the model's layer names are read.
    """
    record = info.get("architecture")
    if isinstance(record, Mapping) and record.get("schema") is not None:
        return Architecture.from_dict(record)
    if isinstance(record, Mapping) and "base" in record:  # an entry published by bioflow 0.1
        arch = Architecture.from_dict(record, "the card's architecture")
        shape = info.get("input_shape")
        return dataclasses.replace(arch, schema=0, input_shape=tuple(shape) if isinstance(shape, list) else None,
                                   parameters=dict(info.get("parameters") or {}))
    if model is None:
        raise BioflowError("This run records no architecture; pass its model to read it from its layers.")
    return from_layer_names(model)


def from_layer_names(model: keras.Model) -> Architecture:
    """The architecture of a model saved by bioflow 0.1 (no record), from the layer names its builder gave."""
    names = {layer.name for layer in model.layers}
    base = next((b for b, marker in (("resnet50", "conv5_block3_out"), ("vgg19", "block5_conv4"),
                                     ("vgg16", "block5_conv3"), ("allcnn", "conv9")) if marker in names), None)
    kinds = [layer.name[3:] for layer in model.layers if layer.name.startswith("v1_")]
    recurrence = "convlstm" if "recurrent_convlstm" in names else ("blt" if "recurrent_blt" in names else None)
    convolution = "combined" if len(kinds) > 1 else (kinds[0] if kinds else "original")
    if recurrence == "convlstm" and not kinds:
        convolution = "convlstm"
    bottleneck = int(model.get_layer("retina_conv3").output.shape[-1]) if "retina_conv3" in names else None
    return Architecture(base=base, convolution=convolution, bottleneck=bottleneck, recurrence=recurrence,
                        input_shape=tuple(model.input_shape[1:]), classes=int(model.output_shape[-1]),
                        parameters=parameter_counts(model), schema=0)
