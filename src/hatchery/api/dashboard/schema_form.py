"""A request body's JSON schema (as the OpenAPI document has it) as the fields of an HTML form:
pure, no I/O. The playground renders these with Jinja and its script reads them back into a
JSON body by each field's ``kind``.

::

    schema                                   control    kind (how the script types the value)
    enum (of strings or numbers)             select     string / integer / number
    boolean                                  checkbox   boolean
    integer, number                          number     integer / number (min, max, step)
    string: prompt- or text-like, or long    textarea   string
    other strings                            text       string
    array of strings                         lines      lines (a textarea, one item per line)
    object, array of anything else, $ref'd   json       json (a textarea holding JSON)

A nullable field (``anyOf: [X, {"type": "null"}]``) is X, never required. ``$ref`` is followed
into ``#/components/schemas``. Defaults fill the controls (``null`` leaves them empty); an
example value (from the operation's example body) becomes a textual control's placeholder.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

Schema = Mapping[str, Any]

LONG_TEXT = 500  # a string allowed this many characters or more gets a textarea
TEXT_LIKE = re.compile(r"prompt|text|description|transcript", re.IGNORECASE)
WORDS = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
ACRONYMS = {"url": "URL", "urls": "URLs", "id": "ID", "ids": "IDs", "tts": "TTS", "json": "JSON"}
REF = "#/components/schemas/"
TEXTUAL = frozenset({"text", "textarea", "lines", "json", "number"})


@dataclass(frozen=True)
class Field:
    """One control of the form. ``value`` is what it holds at first (text), ``checked`` a
    checkbox's state; ``hint`` is the schema's description split at backticks into
    ``(text, is_code)`` parts."""

    name: str  # the JSON body's key
    label: str
    control: str  # select, checkbox, number, text, textarea, lines, json
    kind: str  # string, integer, number, boolean, lines, json
    required: bool = False
    value: str = ""
    checked: bool = False
    options: tuple[str, ...] = ()
    blank_option: bool = False  # a select that may be left unset
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None
    placeholder: str = ""
    hint: tuple[tuple[str, bool], ...] = ()

    @property
    def id(self) -> str:
        return "field-" + re.sub(r"[^A-Za-z0-9_-]", "-", self.name)

    @property
    def step(self) -> str:
        return "1" if self.kind == "integer" else "any"


def label_of(name: str) -> str:
    """``num_outputs`` -> ``Num outputs``, ``imageFileIds`` -> ``Image file IDs``."""
    words = [ACRONYMS.get(w.lower(), w.lower()) for w in WORDS.findall(name)] or [name]
    first = words[0]
    return " ".join([first[:1].upper() + first[1:], *words[1:]])


def hint_parts(text: str) -> tuple[tuple[str, bool], ...]:
    """A description with ``code`` spans: its pieces, each with whether it is code."""
    pieces = text.split("`")
    if len(pieces) % 2 == 0:  # an unmatched backtick: all text
        return ((text, False),) if text else ()
    return tuple((piece, i % 2 == 1) for i, piece in enumerate(pieces) if piece)


def resolve(schema: Schema, components: Mapping[str, Schema]) -> Schema:
    """``schema`` with a ``$ref`` followed (its own keys, as a description, kept over the
    target's)."""
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith(REF):
        return schema
    target = resolve(components[ref.removeprefix(REF)], components)
    return {**target, **{k: v for k, v in schema.items() if k != "$ref"}}


def unwrap(schema: Schema, components: Mapping[str, Schema]) -> tuple[Schema, bool]:
    """The schema a value of the field has (a nullable one's non-null member, resolved), and
    whether null is allowed."""
    schema = resolve(schema, components)
    members = schema.get("anyOf") or schema.get("oneOf")
    if not members:
        return schema, False
    kept = [m for m in members if m.get("type") != "null"]
    if len(kept) != 1:
        return schema, len(kept) < len(members)
    outer = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}
    return {**resolve(kept[0], components), **outer}, len(kept) < len(members)


def _number(value: Any) -> float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _text(value: Any, kind: str) -> str:
    """A value as a textual control shows it."""
    if value is None:
        return ""
    if kind == "lines" and isinstance(value, list):
        return "\n".join(str(item) for item in value)
    if kind == "json":
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _enum_kind(values: list[Any]) -> str:
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "integer"
    if all(_number(v) is not None for v in values):
        return "number"
    return "string"


def control_of(name: str, schema: Schema, components: Mapping[str, Schema]) -> tuple[str, str]:
    """The control and the kind of value a (non-null) schema gets."""
    kind = schema.get("type")
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return "select", _enum_kind(schema["enum"])
    if kind == "boolean":
        return "checkbox", "boolean"
    if kind in ("integer", "number"):
        return "number", str(kind)
    if kind == "string":
        long = int(schema.get("maxLength", 0)) >= LONG_TEXT
        return ("textarea" if long or TEXT_LIKE.search(name) else "text"), "string"
    if kind == "array":
        items, _ = unwrap(schema.get("items", {}), components)
        if items.get("type") == "string":
            return "lines", "lines"
    return "json", "json"


def field_of(
    name: str,
    prop: Schema,
    components: Mapping[str, Schema],
    *,
    required: bool = False,
    example: Any = None,
) -> Field:
    """The control of one property of a body."""
    schema, nullable = unwrap(prop, components)
    control, kind = control_of(name, schema, components)
    default = schema.get("default")
    options = tuple(str(v) for v in schema.get("enum", ()))
    value = _text(default, kind)
    return Field(
        name=name,
        label=label_of(name),
        control=control,
        kind=kind,
        required=required and not nullable,
        value=value if control != "checkbox" else "",
        checked=default is True,
        options=options,
        blank_option=control == "select" and (value not in options),
        minimum=_number(schema.get("minimum")),
        maximum=_number(schema.get("maximum")),
        max_length=schema.get("maxLength") if kind == "string" else None,
        placeholder=_text(example, kind) if control in TEXTUAL and not value else "",
        hint=hint_parts(str(schema.get("description") or "")),
    )


def form_fields(
    schema: Schema,
    components: Mapping[str, Schema],
    *,
    skip: Collection[str] = (),
    late: Collection[str] = (),
    example: Mapping[str, Any] | None = None,
) -> list[Field]:
    """The fields of an object schema but for those in ``skip``: the required ones first, those
    in ``late`` last, each group in the schema's order."""
    schema = resolve(schema, components)
    required = set(schema.get("required", ()))
    example = example or {}
    fields = [
        field_of(name, prop, components, required=name in required, example=example.get(name))
        for name, prop in schema.get("properties", {}).items()
        if name not in skip
    ]
    return sorted(fields, key=lambda f: (not f.required, f.name in late))
