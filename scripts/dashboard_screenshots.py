"""Screenshots of every dashboard page, for docs/dashboard/ (``make screenshots``).

Starts a server on a new embedded database, fills an account with a little of everything (a few
generations, a tool execution, an upload, a key, a webhook endpoint whose deliveries fail), and
photographs each page with the machine's Chromium at desktop width and at phone width.
"""

from __future__ import annotations

import io
import re
import sys
import tempfile
import time
from pathlib import Path

import httpx
from PIL import Image
from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser import DESKTOP, PHONE, chromium  # noqa: E402
from tests.dashboard_helpers import PASSWORD, set_password  # noqa: E402
from tests.helpers import ServerProcess, wait_for_task  # noqa: E402

OUT = ROOT / "docs" / "dashboard"
EMAIL = "local@localhost"
PROMPTS = ("a lighthouse at dusk", "a red fox in the snow", "a bowl of ramen, top view")


def _png() -> bytes:
    image = Image.new("RGB", (320, 200), (61, 90, 254))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def fill(server: ServerProcess) -> dict[str, str]:
    """Some of everything; the ids of what the detail pages show."""
    with server.client() as api:
        endpoint = {  # nothing listens there: its deliveries fail and are retried
            "url": "http://127.0.0.1:9/endpoint",
            "events": ["tool_execution.succeeded", "task.completed"],
            "description": "staging receiver",
        }
        assert api.post("/v1/webhooks/endpoints", json=endpoint).status_code == 201
        made = [
            api.post("/v1/generate", json={"model": "nanobanana", "prompt": p}).json()["data"]
            for p in PROMPTS
        ]
        hooked = {
            "model": "nanobanana",
            "prompt": "a paper boat",
            "webhook_url": "http://127.0.0.1:9/hook",
        }
        made.append(api.post("/v1/generate", json=hooked).json()["data"])
        for task in made:
            wait_for_task(api, task["id"])
        image = api.post("/v1/tools/generate-image", json={"prompt": "a green hill at noon"})
        assert image.status_code == 202, image.text
        upload = api.post("/v1/files/upload", json={"displayName": "blue.png", "type": "IMAGE"})
        target = upload.json()
        httpx.put(target["uploadUrl"], content=_png(), headers={"Content-Type": "image/png"})
        _operate(api)
        time.sleep(3)
    return {
        "task": made[-1]["id"],
        "file": target["fileId"],
        "execution": image.json()["toolExecutionId"],
    }


def _operate(api: httpx.Client) -> None:
    """What an operator does (local@localhost is the admin): an account credited, a route
    changed; both in the audit log."""
    made = api.post("/admin/v1/accounts", json={"email": "ada@example.com", "balance_micros": 0})
    assert made.status_code == 201, made.text
    credit = {"amount_micros": 25_000_000, "reason": "invoice 1042 paid"}
    assert api.post(f"/admin/v1/accounts/{made.json()['data']['id']}/balance", json=credit)
    change = {
        "price_rules": [{"when": {"resolution": "2k"}, "unit_price_micros": 14_000}],
        "reason": "2K costs more upstream",
    }
    assert api.patch("/admin/v1/routes/model/nanobanana", json=change).status_code == 200


def run_playground(page: Page) -> None:
    """The playground as it looks after a run: the image on the page."""
    page.get_by_label("Prompt", exact=True).fill("a lighthouse at dusk")
    page.get_by_role("button", name="Run").click()
    page.locator("#playground-output img").first.wait_for(timeout=60_000)


def shoot(server: ServerProcess, ids: dict[str, str]) -> list[Path]:
    pages = {
        "sign-in": "/dashboard/sign-in",
        "overview": "/dashboard",
        "playground": "/dashboard/playground?model=nanobanana",
        "tasks": "/dashboard/tasks",
        "task": f"/dashboard/tasks/{ids['task']}",
        "files": "/dashboard/files",
        "file": f"/dashboard/files/{ids['file']}",
        "keys": "/dashboard/keys",
        "webhooks": "/dashboard/webhooks",
        "usage": "/dashboard/usage",
        "admin": "/dashboard/admin",
        "admin-route": "/dashboard/admin/routes/model/nanobanana",
        "admin-queue": "/dashboard/admin/queue",
        "admin-audit": "/dashboard/admin/audit",
    }
    written: list[Path] = []
    with chromium() as browser:
        signed = browser.new_context(viewport=DESKTOP, base_url=server.url)
        page = signed.new_page()
        page.goto("/dashboard/sign-in")
        page.get_by_label("Email").fill(EMAIL)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r"/dashboard$"))
        state = signed.storage_state()
        for width, viewport in (("", DESKTOP), ("-phone", PHONE)):
            for name, path in pages.items():
                context = browser.new_context(
                    viewport=viewport,
                    base_url=server.url,
                    storage_state=None if name == "sign-in" else state,
                )
                shot = context.new_page()
                shot.goto(path)
                if name == "playground":
                    run_playground(shot)
                shot.wait_for_load_state("networkidle")
                target = OUT / f"{name}{width}.png"
                shot.screenshot(path=str(target), full_page=True)
                written.append(target)
                context.close()
    return written


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    server = ServerProcess(Path(tempfile.mkdtemp(prefix="hatchery-shots-"))).start()
    try:
        set_password(server.db_url, EMAIL)
        written = shoot(server, fill(server))
    finally:
        server.stop()
    for path in written:
        print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
