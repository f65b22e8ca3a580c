"""Driven by tests/integration/test_endpoint_webhooks.py: the VideoGen API's official Python SDK
(``videogen`` 0.0.38, unchanged, in its own virtual environment) verifies webhook deliveries a
Hatchery server made to a real receiver, with its ``verify_webhook_signature``, and reads each
payload as its typed model. Then it tries altered copies of the first delivery: a changed body, a
changed signature, the wrong secret, no signature header, and the delivery re-signed correctly
with a timestamp six minutes old (and, as a control, with the time now).

Argument: a JSON file ``{"secret": "whsec_...", "deliveries": [{"body": "...", "headers": {}}]}``,
each body exactly as received. Prints one JSON object of what it saw on its last line."""

import base64
import json
import os
import sys
import time
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook
from videogen.core.pydantic_utilities import parse_obj_as
from videogen.types.file_upload_webhook_payload import FileUploadWebhookPayload
from videogen.types.tool_execution_webhook_payload import ToolExecutionWebhookPayload
from videogen.verify_webhook_signature import verify_webhook_signature


def attempt(body, headers, secret):
    """Whether the SDK accepts the delivery; why not, if it does not."""
    try:
        verify_webhook_signature(body, headers, secret)
    except Exception as exc:
        return {"accepted": False, "error": f"{type(exc).__name__}: {exc}"}
    return {"accepted": True, "error": None}


def typed(event):
    """The payload as the SDK's model of its family, and what the model read from it."""
    if event["event"].startswith("tool_execution."):
        model = parse_obj_as(ToolExecutionWebhookPayload, event)
        return {
            "model": type(model).__name__,
            "event": model.event,
            "tool_execution_id": model.tool_execution_id,
            "tool_type": model.tool_type,
            "occurred_at": model.occurred_at,
            "results": None
            if model.results is None
            else [
                {
                    "file_id": r.file_id,
                    "type": r.type,
                    "file_id_of_file": r.file.file_id if r.file else None,
                    "download_url": bool(
                        r.file and r.file.download_source and r.file.download_source.url
                    ),
                }
                for r in model.results
            ],
            "error": model.error.model_dump(by_alias=True) if model.error else None,
        }
    model = parse_obj_as(FileUploadWebhookPayload, event)
    return {
        "model": type(model).__name__,
        "event": model.event,
        "file_id": model.file_id,
        "occurred_at": model.occurred_at,
        "file_id_of_file": model.file.file_id,
        "error": model.error.model_dump(by_alias=True) if model.error else None,
    }


def resigned(body, headers, secret, timestamp):
    """The delivery signed again, correctly, as if sent at ``timestamp``."""
    at = datetime.fromtimestamp(timestamp, tz=UTC)
    signature = Webhook(secret).sign(headers["webhook-id"], at, body)
    return {**headers, "webhook-timestamp": str(timestamp), "webhook-signature": signature}


def altered(body, headers, secret):
    kind, _, digest = headers["webhook-signature"].split(" ")[0].partition(",")
    raw = bytearray(base64.b64decode(digest))
    raw[0] ^= 0x01
    flipped = kind + "," + base64.b64encode(bytes(raw)).decode("ascii")
    changed_body = body.replace('"occurredAt":', '"occurredAt":1', 1)
    assert changed_body != body
    unsigned = {k: v for k, v in headers.items() if k != "webhook-signature"}
    wrong = "whsec_" + base64.b64encode(os.urandom(32)).decode("ascii")
    now = int(time.time())
    return {
        "as_received": attempt(body, headers, secret),
        "tampered_body": attempt(changed_body, headers, secret),
        "tampered_signature": attempt(body, {**headers, "webhook-signature": flipped}, secret),
        "wrong_secret": attempt(body, headers, wrong),
        "no_signature": attempt(body, unsigned, secret),
        "resigned_now": attempt(body, resigned(body, headers, secret, now), secret),
        "resigned_6_minutes_ago": attempt(body, resigned(body, headers, secret, now - 360), secret),
    }


def main():
    with open(sys.argv[1]) as f:
        given = json.load(f)
    secret = given["secret"]
    seen = {"deliveries": []}
    for delivery in given["deliveries"]:
        body = delivery["body"]
        headers = {k.lower(): v for k, v in delivery["headers"].items()}
        event = verify_webhook_signature(body, headers, secret)
        seen["deliveries"].append(
            {"webhook_id": headers["webhook-id"], "verified": event, "typed": typed(event)}
        )
    first = given["deliveries"][0]
    headers = {k.lower(): v for k, v in first["headers"].items()}
    seen["altered"] = altered(first["body"], headers, secret)
    print(json.dumps(seen, default=str))


main()
