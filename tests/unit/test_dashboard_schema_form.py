"""A request body's JSON schema as form fields (``api.dashboard.schema_form``): which control
each kind of property gets, what it holds at first, its limits, and the order of the fields."""

from __future__ import annotations

from typing import Any

import pytest

from hatchery.api.dashboard.schema_form import Field, field_of, form_fields, hint_parts, label_of

COMPONENTS: dict[str, Any] = {
    "Ratio": {
        "type": "object",
        "properties": {"width": {"type": "integer"}, "height": {"type": "integer"}},
        "description": "A ratio.",
    },
    "Mode": {"type": "string", "enum": ["FAST", "GOOD"], "default": "GOOD"},
}


def nullable(schema: dict[str, Any], **outer: Any) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}], **outer}


def one(name: str, prop: dict[str, Any], **kwargs: Any) -> Field:
    return field_of(name, prop, COMPONENTS, **kwargs)


@pytest.mark.parametrize(
    ("name", "prop", "control", "kind"),
    [
        ("size", {"type": "string", "enum": ["1k", "2k"]}, "select", "string"),
        ("steps", {"type": "integer", "enum": [10, 20]}, "select", "integer"),
        ("loud", {"type": "boolean"}, "checkbox", "boolean"),
        ("count", {"type": "integer"}, "number", "integer"),
        ("speed", {"type": "number"}, "number", "number"),
        ("prompt", {"type": "string", "maxLength": 100}, "textarea", "string"),
        ("ttsText", {"type": "string"}, "textarea", "string"),
        ("notes", {"type": "string", "maxLength": 1000}, "textarea", "string"),
        ("voiceId", {"type": "string", "maxLength": 64}, "text", "string"),
        ("urls", {"type": "array", "items": {"type": "string"}}, "lines", "lines"),
        ("ratio", {"$ref": "#/components/schemas/Ratio"}, "json", "json"),
        ("pairs", {"type": "array", "items": {"type": "object"}}, "json", "json"),
        ("mode", nullable({"$ref": "#/components/schemas/Mode"}), "select", "string"),
    ],
)
def test_each_kind_of_property_gets_its_control(
    name: str, prop: dict[str, Any], control: str, kind: str
) -> None:
    field = one(name, prop)
    assert (field.control, field.kind) == (control, kind)


def test_a_nullable_property_is_its_non_null_member_and_never_required() -> None:
    field = one(
        "count",
        nullable({"type": "integer", "minimum": 1, "maximum": 100}, default=1),
        required=True,
    )
    assert (field.control, field.kind, field.required) == ("number", "integer", False)
    assert (field.minimum, field.maximum, field.value, field.step) == (1, 100, "1", "1")


def test_limits_and_defaults_fill_the_control() -> None:
    speed = one("speed", {"type": "number", "minimum": 0.5, "maximum": 4.0})
    assert (speed.minimum, speed.maximum, speed.value, speed.step) == (0.5, 4.0, "", "any")
    prompt = one("prompt", {"type": "string", "maxLength": 2000}, required=True)
    assert (prompt.required, prompt.max_length) == (True, 2000)
    checked = one("loud", nullable({"type": "boolean"}, default=True))
    unchecked = one("quiet", nullable({"type": "boolean"}, default=False))
    assert (checked.checked, unchecked.checked) == (True, False)
    urls = one("urls", {"type": "array", "items": {"type": "string"}, "default": ["a", "b"]})
    assert urls.value == "a\nb"
    ratio = one("ratio", nullable({"$ref": "#/components/schemas/Ratio"}, default={"width": 1}))
    assert ratio.value == '{"width": 1}'


def test_an_enum_with_a_default_selects_it_and_one_without_may_be_left_unset() -> None:
    mode = one("mode", nullable({"$ref": "#/components/schemas/Mode"}))
    assert (mode.options, mode.value, mode.blank_option) == (("FAST", "GOOD"), "GOOD", False)
    size = one("size", nullable({"type": "string", "enum": ["1k", "2k"]}, default=None))
    assert (size.value, size.blank_option) == ("", True)


def test_an_example_is_the_placeholder_of_an_empty_textual_control() -> None:
    ratio = one("ratio", {"$ref": "#/components/schemas/Ratio"}, example={"width": 16})
    assert ratio.placeholder == '{"width": 16}'
    urls = one("urls", {"type": "array", "items": {"type": "string"}}, example=["x", "y"])
    assert urls.placeholder == "x\ny"
    filled = one("prompt", {"type": "string", "default": "hi"}, example="other")
    assert filled.placeholder == ""
    mode = one("mode", {"$ref": "#/components/schemas/Mode"}, example="FAST")
    assert mode.placeholder == ""  # a select has none


def test_a_refs_description_is_the_hint_unless_the_property_has_its_own() -> None:
    assert one("ratio", {"$ref": "#/components/schemas/Ratio"}).hint == (("A ratio.", False),)
    own = one("ratio", nullable({"$ref": "#/components/schemas/Ratio"}, description="Its shape."))
    assert own.hint == (("Its shape.", False),)


def test_a_forms_fields_are_required_first_then_late_ones_last_and_skipped_ones_left_out() -> None:
    schema = {
        "type": "object",
        "properties": {
            "numResults": {"type": "integer"},
            "model": {"type": "string"},
            "ratio": {"type": "string"},
            "prompt": {"type": "string"},
            "webhook_url": {"type": "string"},
            "seed": {"type": "integer"},
        },
        "required": ["model", "prompt"],
    }
    fields = form_fields(schema, COMPONENTS, skip={"model", "webhook_url"}, late={"numResults"})
    assert [f.name for f in fields] == ["prompt", "ratio", "seed", "numResults"]
    assert [f.required for f in fields] == [True, False, False, False]


def test_labels_and_ids() -> None:
    assert label_of("num_outputs") == "Num outputs"
    assert label_of("imageFileIds") == "Image file IDs"
    assert label_of("image_urls") == "Image URLs"
    assert label_of("ttsText") == "TTS text"
    assert one("aspect_ratio", {"type": "string"}).id == "field-aspect_ratio"
    assert one("a.b c", {"type": "string"}).id == "field-a-b-c"


def test_a_hints_backticks_are_code() -> None:
    assert hint_parts("`16:9` or `9:16`.") == (
        ("16:9", True),
        (" or ", False),
        ("9:16", True),
        (".", False),
    )
    assert hint_parts("an `odd one") == (("an `odd one", False),)
    assert hint_parts("") == ()
