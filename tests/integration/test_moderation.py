"""A deny-list named by HATCHERY_MODERATION_DENYLIST fails matching prompts at no cost."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.helpers import LocalHTTPServer, ServerProcess, wait_for_task

ERROR = "Content moderation: prompt contains prohibited content"


def test_denylisted_prompt_fails_with_the_seed_error(
    make_server: Callable[..., ServerProcess], receiver: LocalHTTPServer, tmp_path: Path
) -> None:
    denylist = tmp_path / "deny.txt"
    denylist.write_text("# words and phrases\nforbidden\nblood  moon\n/b[a4]nned\\d+/\n")
    server = make_server(HATCHERY_MODERATION_DENYLIST=str(denylist))
    key = server.new_account("mod@example.com", balance="0.05")
    prompts = {
        "a FORBIDDEN castle": "failed",
        "the blood moon rises": "failed",
        "b4nned42 logo": "failed",
        "forbiddenness is a made-up word": "completed",
        "a bloody moonlit night": "completed",
    }
    with server.client(key=key) as client:
        ids = {
            p: client.post(
                "/v1/generate",
                json={"model": "nanobanana", "prompt": p, "webhook_url": receiver.url("/mod")},
            ).json()["data"]["id"]
            for p in prompts
        }
        tasks = {p: wait_for_task(client, task_id) for p, task_id in ids.items()}
        account = client.get("/v1/account").json()["data"]
        totals = {
            status: client.get(f"/v1/tasks?status={status}").json()["data"]["pagination"]["total"]
            for status in ("pending", "processing", "completed", "failed")
        }
    assert totals == {"pending": 0, "processing": 0, "completed": 2, "failed": 3}
    for prompt, status in prompts.items():
        assert tasks[prompt]["status"] == status, prompt
    failed = [t for t in tasks.values() if t["status"] == "failed"]
    assert {t["error"] for t in failed} == {ERROR}
    assert {t["cost"] for t in failed} == {"$0.00"}
    assert account["balance"] == "$0.0300"  # two completed at $0.01 each
    hooks = receiver.wait_for(5, path="/mod")
    failed_events = [h.json() for h in hooks if h.json()["event"] == "task.failed"]
    assert len(failed_events) == 3
    assert {e["error"] for e in failed_events} == {ERROR}
    assert {e["cost"] for e in failed_events} == {"0.000000"}
