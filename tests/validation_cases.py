"""The generate request's validation rules as (change to a valid body, Go field name, tag):
shared by the schema's unit tests and the HTTP tests."""

from __future__ import annotations

from typing import Any

CASES = [
    ({"model": "dall-e"}, "Model", "oneof"),
    ({"model": None}, "Model", "oneof"),
    ({"model": ...}, "Model", "required"),
    ({"prompt": ...}, "Prompt", "required"),
    ({"prompt": ""}, "Prompt", "min"),
    ({"prompt": "x" * 2001}, "Prompt", "max"),
    ({"prompt": 42}, "Prompt", "type"),
    ({"negative_prompt": "x" * 1001}, "NegativePrompt", "max"),
    ({"num_outputs": 0}, "NumOutputs", "min"),
    ({"num_outputs": 5}, "NumOutputs", "max"),
    ({"num_outputs": "2"}, "NumOutputs", "type"),
    ({"num_outputs": 2.5}, "NumOutputs", "type"),  # 2.0 is 2 (JSON Schema's integers)
    ({"num_outputs": True}, "NumOutputs", "type"),
    ({"duration": 0}, "Duration", "min"),
    ({"duration": 61}, "Duration", "max"),
    ({"aspect_ratio": "4:3"}, "AspectRatio", "oneof"),
    ({"resolution": "8k"}, "Resolution", "oneof"),
    ({"image_urls": ["https://example.com/a.png"] * 10}, "ImageURLs", "max"),
    ({"image_urls": ["not a url"]}, "ImageURLs", "url"),
    ({"image_urls": ["ftp://example.com/a.png"]}, "ImageURLs", "url"),
    ({"image_urls": "https://example.com/a.png"}, "ImageURLs", "type"),
    ({"webhook_url": "notaurl"}, "WebhookURL", "url"),
    ({"webhook_url": "https://example.com/" + "a" * 2048}, "WebhookURL", "max"),
]


def body_with(valid: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """``valid`` with ``change`` applied; a value of ``...`` removes the field."""
    body = {**valid, **change}
    return {k: v for k, v in body.items() if v is not ...}
