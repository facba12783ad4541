"""Reading a policy file: size guards, strict YAML, the schema, and messages people can act on.

Every problem a user can cause becomes a one-line :class:`~memgate.errors.PolicyError` naming
the file, with the path of each problem in the document (``rules[2].max_increase: ...``).
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Final

import yaml

# jsonschema ships no type information; types-jsonschema may or may not be installed.
from jsonschema.exceptions import ValidationError  # type: ignore[import-untyped, unused-ignore]

from memgate import schemas
from memgate.errors import PolicyError
from memgate.fs import ReadLimitExceeded, read_limited
from memgate.policy.model import Defaults, Limits, Policy
from memgate.policy.parse import Base, DocPath, Parser, format_path
from memgate.quantities import AMOUNT_PATTERN, DURATION_PATTERN, PERCENT_PATTERN, RATE_PATTERN

#: The base under the built-in policy file itself: neutral values, no limits. Every key is
#: set in default-policy.yml, so these only matter if that file is edited down.
_NEUTRAL_DEFAULTS: Final = Defaults(
    sample_types=("inuse_space", "inuse_objects", "alloc_space", "alloc_objects"),
    metric="flat",
    limits=Limits(),
    noise_floor=(),
    severity="fail",
    confidence=0.99,
)


def policy_schema() -> dict[str, Any]:
    """The policy JSON Schema (Draft 2020-12), as a fresh dict the caller may modify."""
    return schemas.schema("policy")


def load_policy(path: str | Path) -> Policy:
    """Read, validate and load a policy file (YAML or JSON; JSON is read as YAML).

    Every problem a user can cause becomes a one-line :class:`PolicyError` naming the file:
    missing or unreadable file, YAML syntax (with line and column), duplicate keys (which
    YAML would otherwise silently resolve to the last one), and all schema and semantic errors
    at once, each with its path (``rules[2].max_increase: ...``), so that one run shows
    everything to fix.
    """
    source = str(path)
    try:
        text = read_policy_bytes(path).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError(
            f"policy file is not UTF-8 text (byte {exc.start})", source=source
        ) from None
    return load_policy_data(_parse_yaml(text, source), source)


#: The largest policy file read. A real one is a few kilobytes; YAML parsing costs about a
#: second per megabyte, so a bigger file is refused rather than parsed for minutes.
MAX_POLICY_BYTES: Final = 1 << 20


def read_policy_bytes(path: str | Path) -> bytes:
    """The bytes of a policy file, at most :data:`MAX_POLICY_BYTES` of any kind of file
    (a link to ``/dev/zero`` included); every problem is a one-line :class:`PolicyError`."""
    source = str(path)
    try:
        return read_limited(path, MAX_POLICY_BYTES)
    except ReadLimitExceeded:
        raise PolicyError(f"policy file is larger than {MAX_POLICY_BYTES // 1024} KiB; a "
                          "policy is a few kilobytes of YAML", source=source) from None
    except FileNotFoundError:
        raise PolicyError("policy file not found", source=source) from None
    except IsADirectoryError:
        raise PolicyError("policy path is a directory, not a file", source=source) from None
    except OSError as exc:
        raise PolicyError(
            f"cannot read policy file: {exc.strerror or exc}", source=source
        ) from None


def load_policy_data(data: object, source: str) -> Policy:
    """Validate and load an already-parsed policy (the result of YAML/JSON parsing).

    Left-out parts fall back to the built-in default policy (see the module docstring).
    """
    return _load(data, source, _builtin_base())


@functools.cache
def default_policy() -> Policy:
    """The built-in policy shipped as ``memgate/data/default-policy.yml`` (cached)."""
    source = "<built-in default policy>"
    text = (resources.files("memgate") / "data" / "default-policy.yml").read_text("utf-8")
    return _load(_parse_yaml(text, source), source, Base(_NEUTRAL_DEFAULTS, None, None))


def _builtin_base() -> Base:
    builtin = default_policy()
    return Base(builtin.defaults, builtin.total, builtin.new_functions)


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that rejects duplicate mapping keys instead of keeping the last."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[object, yaml.Node] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # "<<: *anchor" keys may legitimately be overridden
        key = loader.construct_object(key_node, deep=True)
        try:
            previous = seen.setdefault(key, key_node)
        except TypeError:  # unhashable key: construct_mapping reports it
            continue
        if previous is not key_node:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first defined on line {previous.start_mark.line + 1})",
                key_node.start_mark,
            )
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _parse_yaml(text: str, source: str) -> object:
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        if exc.problem and exc.context and exc.context_mark is not None:
            # "expected ']' ... (while parsing a flow sequence started at line 5, column 12)":
            # the problem is often found only at the end of the file, the cause is here.
            ctx = exc.context_mark
            problem += f" ({exc.context} started at line {ctx.line + 1}, column {ctx.column + 1})"
        kind = (
            "invalid YAML"
            if isinstance(exc, yaml.constructor.ConstructorError)
            else "YAML syntax error"
        )
        raise PolicyError(f"{kind}{where}: {problem}", source=source) from None
    except yaml.YAMLError as exc:
        message = " ".join(str(exc).split())
        raise PolicyError(f"YAML syntax error: {message}", source=source) from None
    except RecursionError:
        raise PolicyError("invalid YAML: nested too deeply", source=source) from None


#: Values a policy may hold once YAML aliases are expanded. A real policy has hundreds; nine
#: nested aliases of nine items each ("billion laughs") have 9^9, which the schema validator
#: would walk one by one.
MAX_POLICY_NODES: Final = 100_000
#: How deep a policy may nest (the validator and the parser recurse).
MAX_POLICY_DEPTH: Final = 64


def _check_size(data: object, source: str) -> None:
    """Refuse documents too big or too deep once aliases are expanded, without expanding
    them: the walk stops at the first value past the budget."""
    stack: list[tuple[object, int]] = [(data, 0)]
    count = 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_POLICY_NODES:
            raise PolicyError(f"policy too large: more than {MAX_POLICY_NODES} values (with "
                              "YAML aliases expanded)", source=source)
        if depth > MAX_POLICY_DEPTH:
            raise PolicyError(f"policy nested too deeply (more than {MAX_POLICY_DEPTH} levels)",
                              source=source)
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)


def _load(data: object, source: str, base: Base) -> Policy:
    _check_size(data, source)
    if data is None:
        raise PolicyError(
            "policy is empty: expected a mapping with at least 'version: 1'", source=source
        )
    if not isinstance(data, dict):
        raise PolicyError(
            f"policy must be a mapping at the top level, not {_kind(data)}", source=source
        )
    key_errors = list(_non_string_keys(data, ()))
    if key_errors:
        raise PolicyError(_join(data, key_errors), source=source)
    errors = list(_schema_errors(data))
    parser = Parser(errors)
    policy = parser.policy(data, source, base)
    if errors:
        raise PolicyError(_join(data, errors), source=source)
    return policy


def _join(data: object, errors: list[tuple[DocPath, str]]) -> str:
    """All errors in document order, deduplicated, as one line."""
    unique = list(dict.fromkeys(errors))
    order = {err: i for i, err in enumerate(unique)}
    unique.sort(key=lambda err: (_document_position(data, err[0]), order[err]))
    return "; ".join(f"{format_path(path)}: {message}" for path, message in unique)


def _document_position(data: object, path: DocPath) -> tuple[int, ...]:
    position: list[int] = []
    node = data
    for part in path:
        if isinstance(node, dict) and part in node:
            position.append(list(node).index(part))
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            position.append(part)
            node = node[part]
        else:
            position.append(1 << 30)
            break
    return tuple(position)


def _non_string_keys(node: object, path: DocPath) -> Iterator[tuple[DocPath, str]]:
    """YAML allows keys like ``1:`` or ``true:``; the schema (and JSON) does not."""
    if isinstance(node, dict):
        for key, value in node.items():
            if not isinstance(key, str):
                yield path, f"key {key!r} must be a string"
            else:
                yield from _non_string_keys(value, (*path, key))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _non_string_keys(item, (*path, i))


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _yaml_bool_hint(value: object) -> str:
    """YAML 1.1 reads yes/no/on/off as booleans: ``severity: no`` arrives as False."""
    if isinstance(value, bool):
        return " (YAML reads yes/no/on/off/true/false as booleans: quote the word)"
    return ""


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_PATTERN_NAMES: Final = {
    RATE_PATTERN: "rate format (e.g. '1MiB/h', '100k/min', '10 objects/s')",
    AMOUNT_PATTERN: "amount format (e.g. '2MiB', '20k', '10 objects': a limit on a level, "
                    "what is in use, takes an amount, not a rate)",
    PERCENT_PATTERN: "percentage format (e.g. '10%' or 10)",
    DURATION_PATTERN: "duration format (e.g. '30s', '48h', '1h30m' or a number of seconds)",
}

_TYPE_NAMES: Final = {
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "array": "a list",
    "object": "a mapping",
    "null": "null",
    "boolean": "true or false",
}


_BOUNDS: Final = {
    "minimum": "at least",
    "maximum": "at most",
    "exclusiveMinimum": "greater than",
    "exclusiveMaximum": "less than",
}


def _suggest(key: str, allowed: Sequence[str]) -> list[str]:
    """The allowed key the user probably meant: same words in another order, else closest."""
    words = sorted(key.lower().replace("-", "_").split("_"))
    same_words = [a for a in allowed if sorted(a.split("_")) == words]
    return same_words[:1] or difflib.get_close_matches(key, allowed, n=1)


def _schema_errors(data: object) -> Iterator[tuple[DocPath, str]]:
    for error in schemas.validator("policy").iter_errors(data):
        yield from _describe(error)


def _describe(error: ValidationError) -> Iterator[tuple[DocPath, str]]:
    """Rephrase a jsonschema error for people who write YAML, not JSON Schema."""
    path: DocPath = tuple(error.absolute_path)
    instance = error.instance
    kind = error.validator
    if kind == "additionalProperties" and isinstance(instance, dict):
        schema = error.schema if isinstance(error.schema, dict) else {}
        allowed = list(schema.get("properties", {}))
        patterns = list(schema.get("patternProperties", {}))
        for key in instance:
            if key in allowed or any(re.search(p, key) for p in patterns):
                continue
            if patterns:
                message = f"invalid name {key!r}: use only letters, digits, '.', '_' and '-'"
            else:
                close = _suggest(key, allowed)
                hint = f"did you mean {close[0]!r}? " if close else ""
                message = f"unknown key ({hint}allowed: {', '.join(allowed)})"
            yield (*path, key), message
        return
    if kind == "pattern":
        name = _PATTERN_NAMES.get(str(error.validator_value), f"pattern {error.validator_value}")
        yield path, f"{_short(instance)} does not match the {name}"
    elif kind == "type":
        expected = error.validator_value
        names = [expected] if isinstance(expected, str) else list(expected)
        wanted = " or ".join(_TYPE_NAMES.get(n, n) for n in names)
        got = "nothing (an empty value)" if instance is None else \
            f"{_kind(instance)} {_short(instance)}"
        yield path, f"expected {wanted}, got {got}{_yaml_bool_hint(instance)}"
    elif kind == "required":
        missing = [k for k in error.validator_value if k not in instance]
        for key in missing:
            yield path, f"missing required key {key!r}"
    elif kind == "const":
        yield path, f"must be {error.validator_value!r}, not {_short(instance)}"
    elif kind == "enum":
        choices = ", ".join(repr(v) for v in error.validator_value)
        yield path, f"{_short(instance)} is not one of {choices}{_yaml_bool_hint(instance)}"
    elif kind in ("minItems", "minLength") and len(instance) == 0:
        yield path, "must not be empty"
    elif kind == "maxItems":
        yield (
            path,
            (
                f"has {len(instance)} items, at most {error.validator_value} allowed "
                "(one rate per dimension: bytes and count)"
            ),
        )
    elif kind in _BOUNDS:
        yield path, f"must be {_BOUNDS[kind]} {error.validator_value!r}, not {_short(instance)}"
    elif kind == "uniqueItems":
        yield path, f"{_short(instance)} has duplicate items"
    else:
        yield path, error.message
