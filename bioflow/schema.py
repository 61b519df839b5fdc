"""JSON Schemas for records that arrive from outside (zoo cards, indexes, architecture records),
checked with ``jsonschema``, and their problems written as one line each.

:func:`of_type` turns a Python annotation (``int | None``, ``dict[str, int]``, ``tuple[int, ...]``)
into a schema, so a dataclass's field types are declared once and give its record's schema
(:func:`of_dataclass`). :func:`problems` lists every place where a value breaks a schema, with the
path written as bioflow's messages write it: ``run.trial must be an integer or null, got "1"``.
"""
from __future__ import annotations

import dataclasses
import json
import types
import typing

import jsonschema

_NAMES = {"string": "a string", "integer": "an integer", "number": "a number", "object": "an object",
          "array": "a list", "boolean": "a boolean", "null": "null"}
_SIMPLE = {str: "string", int: "integer", float: "number", bool: "boolean", type(None): "null"}

# JSON's integers are Python's int, never bool and never 1.0 (a card's trial of 1.0 is not a trial).
_TYPES = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
    "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool))
_Validator = jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=_TYPES)


def of_type(annotation) -> dict:
    """The JSON Schema of a Python type annotation (the subset bioflow's records use)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1 and len(args) == 2:  # X | None: X's schema, with null among its types
            inner = of_type(rest[0])
            return {**inner, "type": [inner["type"], "null"]}
        return {"anyOf": [of_type(a) for a in args]}
    if annotation in _SIMPLE:
        return {"type": _SIMPLE[annotation]}
    if annotation is dict or origin is dict:
        return {"type": "object", **({"additionalProperties": of_type(args[1])} if args else {})}
    if annotation in (list, tuple) or origin in (list, tuple):
        return {"type": "array", **({"items": of_type(args[0])} if args else {})}
    raise TypeError(f"no JSON Schema for {annotation!r}")


def of_dataclass(cls) -> dict:
    """The schema of ``dataclasses.asdict(cls(...))``: every field typed, those without a default
    required, other keys allowed."""
    hints = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)
    required = [f.name for f in fields if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    return {"type": "object", "properties": {f.name: of_type(hints[f.name]) for f in fields},
            **({"required": required} if required else {})}


def _where(error, root):
    """The instance path as bioflow writes it: ``run.trial``, ``files['model.keras'].size``, ``shape[0]``."""
    out, schema_path, instance_path = "", list(error.absolute_schema_path), list(error.absolute_path)
    for step in schema_path:
        if step in ("properties", "additionalProperties", "items", "prefixItems") and instance_path:
            key = instance_path.pop(0)
            if step == "properties":
                out += f".{key}" if out else str(key)
            else:
                out += f"[{key!r}]" if isinstance(key, str) else f"[{key}]"
    return out or root


def _message(error, root):
    where = _where(error, root)
    if error.validator == "type":
        wanted = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        if "number" in wanted:
            wanted = [w for w in wanted if w != "integer"]  # "a number" covers integers
        got = (type(error.instance).__name__ if isinstance(error.instance, (dict, list))  # not its whole text
               else json.dumps(error.instance, default=str)[:60])
        return f"{where} must be {' or '.join(_NAMES[w] for w in wanted)}, got {got}"
    if error.validator == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        prefix = "" if where == root else f"{where}."
        return "; ".join(f"{prefix}{key} is missing" for key in missing)
    if error.validator == "minProperties":
        return f"{where} must not be empty"
    if error.validator == "pattern":
        return f"{where} must match {error.validator_value!r}, got {json.dumps(error.instance)[:60]}"
    return f"{where}: {error.message}"


def problems(value, schema, root="the record") -> list[str]:
    """Every place where ``value`` breaks ``schema``, one line each, in path order (empty: it is valid)."""
    errors = sorted(_Validator(schema).iter_errors(value), key=lambda e: [str(p) for p in e.absolute_path])
    return [_message(e, root) for e in errors]
