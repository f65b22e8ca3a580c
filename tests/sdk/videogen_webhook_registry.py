"""Driven by tests/integration/test_endpoint_webhooks.py: the VideoGen API's official Python SDK
(``videogen`` 0.0.38, unchanged, in its own virtual environment) manages webhook endpoints on a
Hatchery server. Arguments: base URL, API key, then ``create URL EVENT...``, ``list`` or
``delete ENDPOINT_ID``. Prints one JSON object of what it saw on its last line."""

import json
import sys

from videogen import VideoGenApi
from videogen.core.api_error import ApiError


def shown(endpoint):
    return {
        "endpoint_id": endpoint.endpoint_id,
        "url": endpoint.url,
        "events": list(endpoint.events),
        "description": endpoint.description,
        "created_at": endpoint.created_at,
        "signing_secret": endpoint.signing_secret,
        "signing_secret_last4": endpoint.signing_secret_last4,
        "type": type(endpoint).__name__,
    }


def main() -> None:
    base_url, key, command, *args = sys.argv[1:]
    client = VideoGenApi(base_url=base_url, token=key)
    seen: dict[str, object] = {"command": command}
    if command == "create":
        url, *events = args
        made = client.webhooks.create_webhook_endpoint(url=url, events=events, description="sdk")
        seen["endpoint"] = shown(made)
    elif command == "list":
        listed = client.webhooks.list_webhook_endpoints()
        seen["endpoints"] = [shown(e) for e in listed.endpoints]
    elif command == "delete":
        seen["deleted"] = client.webhooks.delete_webhook_endpoint(args[0])
        try:
            client.webhooks.delete_webhook_endpoint(args[0])
        except ApiError as exc:
            seen["again"] = {"status": exc.status_code, "body": exc.body}
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
