"""The JSON Schemas that ship with memgate, and the one place that loads them.

Policy files, baseline manifests and check reports are each validated against a Draft
2020-12 schema in this folder. Loading and compiling happens once per process per schema;
callers get a validator, or a fresh copy of the schema document they may modify (for
``memgate policy schema`` and tests).
"""

from __future__ import annotations

import copy
import functools
import json
from importlib import resources
from typing import Any, Final, Literal, cast

from jsonschema import Draft202012Validator  # type: ignore[import-untyped, unused-ignore]

#: The schemas by the short name callers use; each is ``<name>.schema.json`` here.
SchemaName = Literal["policy", "baseline", "report"]
NAMES: Final[tuple[SchemaName, ...]] = ("policy", "baseline", "report")


@functools.cache
def _document(name: SchemaName) -> dict[str, Any]:
    text = (resources.files(__name__) / f"{name}.schema.json").read_text("utf-8")
    return cast(dict[str, Any], json.loads(text))


def schema(name: SchemaName) -> dict[str, Any]:
    """The named schema as a fresh dict (the cached one is never handed out to mutate)."""
    return copy.deepcopy(_document(name))


@functools.cache
def validator(name: SchemaName) -> Draft202012Validator:
    """A compiled validator for the named schema, built once per process."""
    return Draft202012Validator(_document(name))


def errors(name: SchemaName, data: object) -> list[Any]:
    """Every way ``data`` violates the named schema, in document order (a path's keys before
    its indices where both occur, so that paths of mixed parts always compare)."""
    return sorted(validator(name).iter_errors(data),
                  key=lambda e: [(isinstance(p, str), p) for p in e.absolute_path])
