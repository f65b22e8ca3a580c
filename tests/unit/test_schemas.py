"""Tests for hatchery.api.schemas: the generate request schema and its Go-style messages."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from tests.validation_cases import CASES
from tests.validation_cases import body_with as shared_body_with

from hatchery.api.schemas import describe, generate_model, go_message

NAMES = ("a", "b")
Request = generate_model(NAMES)
VALID: dict[str, Any] = {"model": "a", "prompt": "a lighthouse at dusk"}


def body_with(change: dict[str, Any]) -> dict[str, Any]:
    return shared_body_with(VALID, change)


def message_for(body: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        Request.model_validate(body)
    return describe(info.value, NAMES)


def test_minimal_body_gets_defaults() -> None:
    request = Request.model_validate(VALID)
    assert request.model == "a"
    assert request.prompt == "a lighthouse at dusk"
    assert request.negative_prompt is None
    assert request.num_outputs == 1
    assert request.duration == 5
    assert request.aspect_ratio == "16:9"
    assert request.resolution == "1k"
    assert request.image_urls is None
    assert request.webhook_url is None


def test_boundary_values_are_accepted() -> None:
    request = Request.model_validate(
        {
            "model": "b",
            "prompt": "p" * 2000,
            "negative_prompt": "n" * 1000,
            "num_outputs": 4,
            "duration": 60,
            "aspect_ratio": "9:16",
            "resolution": "4k",
            "image_urls": ["https://example.com/a.png"] * 9,
            "webhook_url": "https://example.com/" + "a" * (2048 - len("https://example.com/")),
        }
    )
    assert request.model == "b"
    assert request.num_outputs == 4
    assert request.duration == 60
    assert request.image_urls is not None
    assert len(request.image_urls) == 9
    assert request.webhook_url is not None
    assert len(request.webhook_url) == 2048


def test_lower_boundaries_are_accepted() -> None:
    request = Request.model_validate({**VALID, "prompt": "p", "num_outputs": 1, "duration": 1})
    assert (request.prompt, request.num_outputs, request.duration) == ("p", 1, 1)


def test_whole_numbers_written_with_a_point_are_whole_numbers() -> None:
    """JSON Schema (and so the OpenAPI document) counts 3.0 as an integer: so does the server."""
    request = Request.model_validate({**VALID, "num_outputs": 3.0, "duration": 8.0})
    assert (request.num_outputs, request.duration) == (3, 8)
    assert type(request.num_outputs) is int


def test_unknown_fields_are_ignored() -> None:
    request = Request.model_validate({**VALID, "seed": 7, "style": "oil"})
    assert "seed" not in request.model_dump()
    assert not hasattr(request, "style")


def test_the_model_is_narrowed_to_the_catalog() -> None:
    other = generate_model(("x",))
    assert other.model_validate({"model": "x", "prompt": "p"}).model == "x"
    with pytest.raises(ValidationError):
        other.model_validate(VALID)  # "a" is not in this catalog


def test_go_message() -> None:
    assert go_message("Prompt", "min") == (
        "Key: 'GenerateRequest.Prompt' Error:Field validation for 'Prompt' failed on the 'min' tag"
    )


@pytest.mark.parametrize(("change", "field", "tag"), CASES)
def test_describe_reads_like_the_reference_api(
    change: dict[str, Any], field: str, tag: str
) -> None:
    message = message_for(body_with(change))
    assert message.startswith(
        f"Key: 'GenerateRequest.{field}' Error:Field validation for '{field}' "
        f"failed on the '{tag}' tag ("
    ), message
    assert message.endswith(")")
    assert message.count("Key: 'GenerateRequest.") == 1


def test_model_messages_list_the_catalog() -> None:
    assert "(model must be one of: a, b)" in message_for(body_with({"model": "c"}))
    assert "(model is required; one of: a, b)" in message_for(body_with({"model": ...}))


def test_hint_follows_the_go_message() -> None:
    message = message_for(body_with({"num_outputs": 9}))
    assert message.endswith("failed on the 'max' tag (num_outputs must be an integer from 1 to 4)")


def test_url_errors_carry_the_reason() -> None:
    message = message_for(body_with({"image_urls": ["ftp://example.com/a.png"]}))
    assert "image_urls must be a list of at most 9 http(s) URLs; " in message
    assert "ftp" in message


def test_several_fields_come_in_request_field_order() -> None:
    body = {
        "webhook_url": "nope",
        "resolution": "8k",
        "num_outputs": 9,
        "prompt": "",
        "model": "zzz",
    }
    message = message_for(body)
    parts = message.split("; Key: ")
    assert len(parts) == 5
    fields = ["Model", "Prompt", "NumOutputs", "Resolution", "WebhookURL"]
    positions = [message.index(f"'GenerateRequest.{f}'") for f in fields]
    assert positions == sorted(positions)
    assert message.startswith("Key: 'GenerateRequest.Model'")


def test_one_message_per_field() -> None:
    message = message_for(body_with({"image_urls": ["bad one", "ftp://x/y", "also bad"]}))
    assert message.count("'GenerateRequest.ImageURLs'") == 1


def test_unknown_fields_do_not_appear_in_messages() -> None:
    message = message_for({"prompt": "", "model": "a", "extra": "x" * 5000})
    assert "extra" not in message
    assert message.startswith("Key: 'GenerateRequest.Prompt'")


def test_requests_are_frozen() -> None:
    request = Request.model_validate(VALID)
    with pytest.raises(ValidationError):
        request.prompt = "changed"
