"""Request schemas and their error messages. Validation follows seed 003: the first message of a
violation reads like the reference API's (``Key: 'GenerateRequest.Model' Error:Field validation
for 'Model' failed on the 'oneof' tag``), followed by what to fix."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    StringConstraints,
    ValidationError,
    create_model,
)
from pydantic_core import ErrorDetails

from hatchery.net.guard import URLRefused, check_url_syntax

GO_NAMES = {
    "model": "Model",
    "prompt": "Prompt",
    "negative_prompt": "NegativePrompt",
    "num_outputs": "NumOutputs",
    "duration": "Duration",
    "aspect_ratio": "AspectRatio",
    "resolution": "Resolution",
    "image_urls": "ImageURLs",
    "webhook_url": "WebhookURL",
}

HINTS = {
    "prompt": "prompt is required and must be 1 to 2000 characters",
    "negative_prompt": "negative_prompt must be a string of at most 1000 characters",
    "num_outputs": "num_outputs must be an integer from 1 to 4",
    "duration": "duration must be an integer number of seconds from 1 to 60",
    "aspect_ratio": 'aspect_ratio must be "16:9" or "9:16"',
    "resolution": 'resolution must be "1k", "2k" or "4k"',
    "image_urls": "image_urls must be a list of at most 9 http(s) URLs",
    "webhook_url": "webhook_url must be an http(s) URL of at most 2048 characters",
}

TAGS = {
    "missing": "required",
    "string_too_short": "min",
    "too_short": "min",
    "string_too_long": "max",
    "too_long": "max",
    "greater_than_equal": "min",
    "less_than_equal": "max",
    "literal_error": "oneof",
    "url": "url",
}


def _url(value: str) -> str:
    try:
        check_url_syntax(value)
    except URLRefused as exc:
        raise ValueError(str(exc)) from None
    return value


Url = Annotated[StrictStr, AfterValidator(_url)]


def _whole_number(value: Any) -> Any:
    """JSON's whole numbers, as JSON Schema counts them: ``3`` and ``3.0``; not ``true``,
    ``"3"`` or ``3.5`` (refused by the strict integer after this)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


WholeInt = Annotated[StrictInt, BeforeValidator(_whole_number)]


class GenerateBase(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    model: str  # narrowed to the catalog's names by generate_model()
    prompt: StrictStr = Field(min_length=1, max_length=2000)
    negative_prompt: StrictStr | None = Field(default=None, max_length=1000)
    num_outputs: WholeInt = Field(default=1, ge=1, le=4)
    duration: WholeInt = Field(default=5, ge=1, le=60)
    aspect_ratio: Literal["16:9", "9:16"] = "16:9"
    resolution: Literal["1k", "2k", "4k"] = "1k"
    image_urls: list[Url] | None = Field(default=None, max_length=9)
    webhook_url: (
        Annotated[StrictStr, StringConstraints(max_length=2048), AfterValidator(_url)] | None
    ) = None


def generate_model(model_names: tuple[str, ...]) -> type[GenerateBase]:
    """The request schema for a catalog: ``model`` must be one of its models."""
    choice = Literal[model_names]  # type: ignore[valid-type]
    fields: dict[str, Any] = {"model": (choice, ...)}
    return create_model("GenerateRequest", __base__=GenerateBase, **fields)


def describe(exc: ValidationError, model_names: tuple[str, ...]) -> str:
    """One message for every violated field, in the order of the request's fields."""
    by_field: dict[str, ErrorDetails] = {}
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "body"
        by_field.setdefault(field, error)
    order = list(GO_NAMES)
    fields = sorted(by_field, key=lambda f: order.index(f) if f in order else len(order))
    return "; ".join(_message(f, by_field[f], model_names) for f in fields)


def _message(field: str, error: ErrorDetails, model_names: tuple[str, ...]) -> str:
    go = GO_NAMES.get(field, field)
    tag = _tag(field, error)
    hint = HINTS.get(field) or f"model must be one of: {', '.join(model_names)}"
    if field == "model" and error["type"] == "missing":
        hint = f"model is required; one of: {', '.join(model_names)}"
    detail = error["msg"] if tag == "url" else ""
    suffix = f" ({hint}{'; ' + detail if detail else ''})"
    return go_message(go, tag) + suffix


def go_message(go_name: str, tag: str) -> str:
    """The reference API's wording of a failed field (seed 003)."""
    return (
        f"Key: 'GenerateRequest.{go_name}' Error:Field validation for '{go_name}' "
        f"failed on the '{tag}' tag"
    )


def _tag(field: str, error: ErrorDetails) -> str:
    if error["type"] == "value_error":
        return "url" if field in ("image_urls", "webhook_url") else "invalid"
    return TAGS.get(error["type"], "type")
