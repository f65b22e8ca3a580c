"""The client side of the ``hatchery`` command, run as a subprocess against a real server, with the
server extra's packages made unimportable (``tests/client_only.py``): what it prints, what it writes
and how it fails."""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hatchery.client import Client
from tests.fake_task_api import FakeTaskAPI, Fault
from tests.helpers import LocalHTTPServer, ServerProcess, clean_env, free_port

CLIENT_ONLY = Path(__file__).resolve().parent.parent / "client_only.py"
PNG = b"\x89PNG\r\n\x1a\n"


def hatchery(
    server: ServerProcess | FakeTaskAPI,
    key: str | None,
    *args: str,
    cwd: Path,
    stderr: int = subprocess.PIPE,
) -> subprocess.CompletedProcess[str]:
    """``hatchery ARGS`` with only the client's dependencies importable."""
    env = clean_env({"HATCHERY_BASE_URL": server.url})
    if key:
        env["HATCHERY_API_KEY"] = key
    return subprocess.run(
        [sys.executable, str(CLIENT_ONLY), "-m", "hatchery", *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        timeout=90,
    )


@pytest.fixture(scope="module")
def key(server: ServerProcess) -> str:
    return server.new_account("cli@example.com")


def test_generate_waits_downloads_and_prints_the_paths(
    server: ServerProcess, key: str, tmp_path: Path
) -> None:
    done = hatchery(
        server, key, "generate", "a red fox", "--num-outputs", "2", "--out", "out", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    paths = done.stdout.splitlines()
    assert len(paths) == 2 and all(p.startswith("out/gen_") for p in paths)
    for path in paths:
        assert (tmp_path / path).read_bytes().startswith(PNG)
    task_id = Path(paths[0]).name.split("-")[0]
    assert re.search(rf"^{task_id} completed \d+\.\ds$", done.stderr, re.M), done.stderr


def test_generate_json_is_the_task_with_its_files(
    server: ServerProcess, key: str, tmp_path: Path
) -> None:
    args = ["generate", "waves", "--model", "veo3.1", "--duration", "2", "--aspect-ratio", "9:16"]
    done = hatchery(server, key, *args, "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    task = json.loads(done.stdout)
    assert task["status"] == "completed" and task["model"] == "veo3.1"
    assert task["output"]["duration_seconds"] == 2 and task["cost"] == "$0.1600"
    (path,) = task["files"]
    assert path == f"./{task['id']}-0.mp4" or path == f"{task['id']}-0.mp4"
    assert (tmp_path / path).stat().st_size > 1000
    assert done.stderr == ""  # no progress lines in --json mode off a terminal


def test_no_wait_then_get_and_wait(server: ServerProcess, key: str, tmp_path: Path) -> None:
    submitted = hatchery(server, key, "generate", "later", "--no-wait", cwd=tmp_path)
    assert submitted.returncode == 0, submitted.stderr
    task_id = submitted.stdout.strip()
    assert re.fullmatch(r"gen_[a-z0-9]{16}", task_id) and not list(tmp_path.iterdir())
    waited = hatchery(server, key, "tasks", "wait", task_id, cwd=tmp_path)
    assert waited.returncode == 0, waited.stderr
    assert re.search(rf"^id\s+{task_id}$", waited.stdout, re.M)
    assert re.search(r"^status\s+completed$", waited.stdout, re.M)
    assert re.search(r"^output\s+http://127\.0\.0\.1:\d+/files/\S+/0\.png$", waited.stdout, re.M)
    got = hatchery(server, key, "tasks", "get", task_id, "--json", cwd=tmp_path)
    assert json.loads(got.stdout)["id"] == task_id and got.returncode == 0
    fetched = hatchery(server, key, "tasks", "wait", task_id, "--out", "d", cwd=tmp_path)
    assert fetched.stdout.strip() == f"d/{task_id}-0.png"
    assert (tmp_path / "d" / f"{task_id}-0.png").read_bytes().startswith(PNG)


def test_tasks_list_table_and_json(server: ServerProcess, tmp_path: Path) -> None:
    key = server.new_account("cli-list@example.com")
    ids = [
        hatchery(server, key, "generate", f"n{i}", "--no-wait", cwd=tmp_path).stdout.strip()
        for i in range(3)
    ]
    for task_id in ids:
        hatchery(server, key, "tasks", "wait", task_id, cwd=tmp_path)
    table = hatchery(server, key, "tasks", "list", "--per-page", "2", cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["ID", "STATUS", "MODEL", "TYPE", "COST", "CREATED"]
    assert [line.split()[:5] for line in lines[1:3]] == [
        [task_id, "completed", "nanobanana", "image_generate", "$0.0100"] for task_id in ids[:0:-1]
    ]
    footer, cursor = lines[3].split("; next page: --cursor ")
    assert footer == "page 1 of 2, 3 task(s)"
    page2 = hatchery(
        server, key, "tasks", "list", "--per-page", "2", "--page", "2", "--json", cwd=tmp_path
    )
    listed = json.loads(page2.stdout)
    assert [t["id"] for t in listed["items"]] == ids[:1]
    assert listed["pagination"] == {
        "page": 2,
        "per_page": 2,
        "total": 3,
        "total_pages": 2,
        "cursor": None,
    }
    after = hatchery(
        server, key, "tasks", "list", "--per-page", "2", "--cursor", cursor, cwd=tmp_path
    )
    assert [line.split()[0] for line in after.stdout.splitlines()[1:2]] == ids[:1]
    assert after.stdout.splitlines()[-1] == "after the cursor, 3 task(s)"
    none = hatchery(server, key, "tasks", "list", "--status", "failed", cwd=tmp_path)
    assert none.stdout.splitlines() == ["no tasks", "page 1 of 1, 0 task(s)"]


def test_account(server: ServerProcess, tmp_path: Path) -> None:
    key = server.new_account("cli-acct@example.com", balance="2.50")
    text = hatchery(server, key, "account", cwd=tmp_path)
    assert re.search(r"^email\s+cli-acct@example\.com$", text.stdout, re.M)
    assert re.search(r"^available\s+\$2\.5000$", text.stdout, re.M)
    data = json.loads(hatchery(server, key, "account", "--json", cwd=tmp_path).stdout)
    assert data["balance"] == "$2.5000" and data["status"] == "active"


def test_usage_records_summary_and_account_show_what_was_charged(
    server: ServerProcess, tmp_path: Path
) -> None:
    key = server.new_account("cli-usage@example.com")
    prefix = key[:13]
    images = hatchery(server, key, "generate", "two", "--num-outputs", "2", cwd=tmp_path)
    args = ["generate", "clip", "--model", "veo3.1", "--duration", "2"]
    video = hatchery(server, key, *args, cwd=tmp_path)
    assert images.returncode == video.returncode == 0, images.stderr + video.stderr
    image_id, video_id = (Path(r.stdout.split()[0]).name.split("-")[0] for r in (images, video))

    table = hatchery(server, key, "usage", cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    lines = [line.split() for line in table.stdout.splitlines()]
    assert lines[0] == [
        "TASK", "MODEL", "TYPE", "UNITS", "UNIT", "PRICE", "COST", "SIZE", "KEY", "CREATED"
    ]  # fmt: skip
    charged = [
        [video_id, "veo3.1", "video_generate", "2", "second", "$0.0800", "$0.1600"],
        [image_id, "nanobanana", "image_generate", "2", "image", "$0.0100", "$0.0200"],
    ]
    assert [line[:9] for line in lines[1:3]] == [[*row, "1k", prefix] for row in charged]
    assert table.stdout.splitlines()[3] == "page 1 of 1, 2 record(s)"
    second = hatchery(server, key, "usage", "list", "--per-page", "1", "--page", "2", cwd=tmp_path)
    assert [line.split()[0] for line in second.stdout.splitlines()[1:]] == [
        image_id,
        "page",
    ]
    assert second.stdout.splitlines()[-1] == "page 2 of 2, 2 record(s)"
    videos = hatchery(server, key, "usage", "--type", "video_generate", "--json", cwd=tmp_path)
    listed = json.loads(videos.stdout)
    assert [(r["task_id"], r["units"], r["cost"]) for r in listed["items"]] == [
        (video_id, 2, "$0.1600")
    ]
    assert listed["pagination"] == {"page": 1, "per_page": 20, "total": 1, "total_pages": 1}

    summary = hatchery(server, key, "usage", "summary", cwd=tmp_path)
    assert [line.split() for line in summary.stdout.splitlines()] == [
        ["MODEL", "REQUESTS", "UNITS", "COST"],
        ["nanobanana", "1", "2", "$0.0200"],
        ["veo3.1", "1", "2", "$0.1600"],
        ["2", "model(s),", "2", "request(s),", "$0.1800", "in", "all"],
    ]
    as_json = hatchery(server, key, "usage", "--json", "summary", "--key", prefix, cwd=tmp_path)
    assert json.loads(as_json.stdout) == [
        {"model": "nanobanana", "total_units": 2, "total_cost": "$0.0200", "request_count": 1},
        {"model": "veo3.1", "total_units": 2, "total_cost": "$0.1600", "request_count": 1},
    ]
    later = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    none = hatchery(server, key, "usage", "--start-date", later, cwd=tmp_path)
    assert none.stdout.splitlines() == ["no usage", "page 1 of 1, 0 record(s)"]
    nothing = hatchery(server, key, "usage", "summary", "--start-date", later, cwd=tmp_path)
    assert nothing.returncode == 0 and nothing.stdout == "no usage\n"

    account = hatchery(server, key, "account", cwd=tmp_path).stdout
    assert re.search(r"^requests\s+2$", account, re.M) and re.search(r"^units\s+4$", account, re.M)
    assert re.search(r"^spent\s+\$0\.1800$", account, re.M) and not re.search("^key", account)
    by_key = hatchery(server, key, "account", "--key", key, "--json", cwd=tmp_path)
    narrowed = json.loads(by_key.stdout)
    assert narrowed["api_key"] == prefix
    assert narrowed["usage"] == {"request_count": 2, "total_units": 4, "total_cost": "$0.1800"}
    keyed = hatchery(server, key, "account", "--key", prefix, cwd=tmp_path).stdout
    assert re.search(rf"^key\s+{prefix}$", keyed, re.M)
    kinds = hatchery(server, key, "tasks", "list", "--type", "video_generate", cwd=tmp_path)
    assert [line.split()[0] for line in kinds.stdout.splitlines()[1:]] == [video_id, "page"]


def test_usage_failures(server: ServerProcess, key: str, tmp_path: Path) -> None:
    foreign = hatchery(server, key, "usage", "--key", "hk_NotMine0000", cwd=tmp_path)
    assert foreign.returncode == 1 and foreign.stdout == ""
    assert foreign.stderr.startswith("error: NOT_FOUND: API key not found: 'hk_NotMine0000'")
    as_json = hatchery(server, key, "account", "--key", "hk_NotMine0000", "--json", cwd=tmp_path)
    assert as_json.returncode == 1 and json.loads(as_json.stdout)["error"]["code"] == "NOT_FOUND"
    bad_day = hatchery(server, key, "usage", "summary", "--end-date", "2026-1-1", cwd=tmp_path)
    assert bad_day.returncode == 1
    assert bad_day.stderr.startswith("error: BAD_REQUEST: end_date must be a date as YYYY-MM-DD")
    mixed = hatchery(server, key, "usage", "summary", "--model", "x", "--page", "2", cwd=tmp_path)
    assert mixed.returncode == 2 and mixed.stdout == ""
    assert "usage summary sums every model and type; --page, --model: list only" in mixed.stderr
    unknown = hatchery(server, key, "usage", "totals", cwd=tmp_path)
    assert unknown.returncode == 2 and "invalid choice: 'totals'" in unknown.stderr


def test_every_failure_exits_non_zero_with_its_code_and_message(
    server: ServerProcess, key: str, receiver: LocalHTTPServer, tmp_path: Path
) -> None:
    def fails(*args: str, key: str | None = key) -> str:
        """The error line, which ends stderr (after any status lines)."""
        result = hatchery(server, key, *args, cwd=tmp_path)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert result.stdout == ""
        return result.stderr.splitlines()[-1]

    assert fails("account", key="hk_wrong").startswith("error: UNAUTHORIZED: Invalid API key")
    assert "request id " in fails("account", key="hk_wrong")
    assert fails("tasks", "get", "gen_missing").startswith(
        "error: NOT_FOUND: Task not found: gen_missing"
    )
    assert fails("generate", "x", "--model", "dall-e").startswith("error: VALIDATION_ERROR: ")
    assert fails("tasks", "list", "--status", "done").startswith("error: BAD_REQUEST: status")
    assert fails("account", key=None).startswith(
        "error: CONFIGURATION_ERROR: no API key: pass --api-key or set HATCHERY_API_KEY"
    )
    unreachable = f"http://127.0.0.1:{free_port()}"
    assert fails("account", "--base-url", unreachable).startswith("error: CONNECTION_ERROR: ")
    reference = receiver.url("/not-an-image")
    failed = fails("generate", "x", "--image-url", reference)
    assert re.match(r"error: TASK_FAILED: task gen_\w+ failed: .*not an image", failed), failed
    assert not list(tmp_path.glob("gen_*"))
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    listed = hatchery(server, key, "tasks", "list", "--json", cwd=tmp_path).stdout
    before = json.loads(listed)["pagination"]["total"]
    assert fails("generate", "x", "--out", str(blocked / "sub")).startswith(
        "error: FILE_ERROR: [Errno 20] Not a directory"
    )
    listed = hatchery(server, key, "tasks", "list", "--json", cwd=tmp_path).stdout
    assert json.loads(listed)["pagination"]["total"] == before  # checked before submitting


def test_json_failures_are_objects_on_stdout(
    server: ServerProcess, key: str, receiver: LocalHTTPServer, tmp_path: Path
) -> None:
    missing = hatchery(server, key, "tasks", "get", "gen_missing", "--json", cwd=tmp_path)
    assert missing.returncode == 1
    error = json.loads(missing.stdout)["error"]
    assert error["code"] == "NOT_FOUND" and len(error["request_id"]) == 32
    args = ["generate", "x", "--image-url", receiver.url("/nope"), "--json"]
    failed = hatchery(server, key, *args, cwd=tmp_path)
    body = json.loads(failed.stdout)
    assert failed.returncode == 1 and body["error"]["code"] == "TASK_FAILED"
    assert body["task"]["status"] == "failed" and body["task"]["cost"] == "$0.00"


def test_usage_errors_exit_2(server: ServerProcess, key: str, tmp_path: Path) -> None:
    for args in (["generate", "x", "--num-outputs", "0"], ["tasks"], ["generate"]):
        result = hatchery(server, key, *args, cwd=tmp_path)
        assert result.returncode == 2 and "usage: hatchery" in result.stderr


def test_the_client_needs_no_server_package(server: ServerProcess, tmp_path: Path) -> None:
    code = (
        "import sys, hatchery.client, hatchery.webhooks, hatchery.cli.main, hatchery.cli.client\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {"
        "'fastapi', 'starlette', 'sqlalchemy', 'pydantic', 'numpy', 'av', 'PIL'}))"
    )
    imported = subprocess.run(
        [sys.executable, str(CLIENT_ONLY), "-c", code], capture_output=True, text=True, check=True
    )
    assert imported.stdout.strip() == "[]"
    serve = hatchery(server, None, "serve", cwd=tmp_path)
    assert serve.returncode == 1
    assert "needs the server's dependencies" in serve.stderr
    assert "pip install 'hatchery[server]'" in serve.stderr


def test_the_status_line_is_live_on_a_terminal(
    server: ServerProcess, key: str, tmp_path: Path
) -> None:
    """On a terminal the line is redrawn in place with a growing elapsed time, then left showing
    the end state; stdout still carries only the paths."""
    leader, follower = pty.openpty()
    screen: list[bytes] = []

    def read() -> None:
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                return
            if not chunk:
                return
            screen.append(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    args = ["generate", "a slow clip", "--model", "veo3.1", "--duration", "8"]
    try:
        done = hatchery(server, key, *args, cwd=tmp_path, stderr=follower)
    finally:
        os.close(follower)
        reader.join(10)
        os.close(leader)
    assert done.returncode == 0
    assert re.fullmatch(r"\./gen_\w+-0\.mp4\n|gen_\w+-0\.mp4\n", done.stdout)
    drawn = b"".join(screen).decode()
    frames = drawn.split("\r\x1b[K")
    elapsed = [float(m) for m in re.findall(r"gen_\w+ \w+ (\d+\.\d)s", drawn)]
    assert len(frames) > 3 and len(set(elapsed)) > 3
    assert elapsed == sorted(elapsed)
    assert re.search(r"gen_\w+ completed \d+\.\ds\r?\n$", drawn)


def test_ctrl_c_while_waiting_names_the_task_that_runs_on(
    make_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    api_only = make_server(HATCHERY_WORKERS="0")  # the task stays pending
    key = api_only.new_account("cli-int@example.com")
    env = clean_env({"HATCHERY_BASE_URL": api_only.url, "HATCHERY_API_KEY": key})
    proc = subprocess.Popen(
        [sys.executable, str(CLIENT_ONLY), "-m", "hatchery", "generate", "wait for me"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As at a terminal: a suite started in the background (`make test &`) inherits SIGINT
        # ignored, and so would the client, which would then never see the Ctrl-C.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stderr is not None
    first = proc.stderr.readline()  # "gen_… pending 0.0s": the first poll
    task_id = first.split()[0]
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and out == ""
    assert f"error: INTERRUPTED: stopped waiting; task {task_id} runs on" in err
    assert f"`hatchery tasks wait {task_id}`" in err
    with Client(api_key=key, base_url=api_only.url) as client:
        assert client.tasks.get(task_id).status == "pending"


def test_out_without_the_wait_is_a_usage_error(
    server: ServerProcess, key: str, tmp_path: Path
) -> None:
    result = hatchery(server, key, "generate", "x", "--no-wait", "--out", "d", cwd=tmp_path)
    assert result.returncode == 2 and "--out downloads the outputs" in result.stderr


# task control, against a fake API speaking its contract (tests/fake_task_api.py)


@pytest.fixture
def api() -> Iterator[FakeTaskAPI]:
    fake = FakeTaskAPI()
    yield fake
    fake.close()


def test_tasks_cancel_prints_the_cancelled_task_and_a_conflict_fails(
    api: FakeTaskAPI, tmp_path: Path
) -> None:
    first, second = api.create("processing"), api.create()
    text = hatchery(api, "hk_test", "tasks", "cancel", first, cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    assert re.search(rf"^id\s+{first}$", text.stdout, re.M)
    assert re.search(r"^status\s+cancelled$", text.stdout, re.M)
    assert re.search(r"^completed_at\s+\S+Z$", text.stdout, re.M)
    as_json = hatchery(api, "hk_test", "tasks", "cancel", second, "--json", cwd=tmp_path)
    task = json.loads(as_json.stdout)
    assert as_json.returncode == 0 and (task["id"], task["status"]) == (second, "cancelled")
    again = hatchery(api, "hk_test", "tasks", "cancel", first, cwd=tmp_path)
    assert again.returncode == 1 and again.stdout == ""
    assert again.stderr == f"error: CONFLICT: task {first} is already cancelled\n"
    again_json = hatchery(api, "hk_test", "tasks", "cancel", first, "--json", cwd=tmp_path)
    assert again_json.returncode == 1
    assert json.loads(again_json.stdout)["error"]["code"] == "CONFLICT"
    missing = hatchery(api, "hk_test", "tasks", "cancel", "gen_missing", cwd=tmp_path)
    assert missing.returncode == 1 and missing.stderr.startswith("error: NOT_FOUND: ")


def test_generate_sends_the_idempotency_key_given(api: FakeTaskAPI, tmp_path: Path) -> None:
    args = ["generate", "once", "--no-wait", "--idempotency-key", "order-7"]
    first = hatchery(api, "hk_test", *args, cwd=tmp_path)
    again = hatchery(api, "hk_test", *args, cwd=tmp_path)
    assert first.returncode == 0 and first.stdout == again.stdout and len(api.tasks) == 1
    keys = [s.headers["Idempotency-Key"] for s in api.requests("POST", "/v1/generate")]
    assert keys == ["order-7", "order-7"]
    other = hatchery(api, "hk_test", "generate", "another", *args[2:], cwd=tmp_path)
    assert other.returncode == 1 and other.stderr.startswith("error: IDEMPOTENCY_MISMATCH: ")
    bad = hatchery(api, "hk_test", "generate", "x", "--idempotency-key", "é", cwd=tmp_path)
    assert bad.returncode == 2 and "1 to 255 printable ASCII" in bad.stderr


def test_tasks_watch_prints_each_status_until_the_end(api: FakeTaskAPI, tmp_path: Path) -> None:
    task_id = api.create()
    api.advance_later(task_id, (0.3, "processing"), (0.3, "completed"))
    api.fail("GET", f"/v1/tasks/{task_id}/events", Fault(cut_after=1))
    watched = hatchery(api, "hk_test", "tasks", "watch", task_id, cwd=tmp_path)
    assert watched.returncode == 0, watched.stderr
    lines = [line.split("  ") for line in watched.stdout.splitlines()]
    statuses = ["pending", "processing", "completed"]
    assert [line[1:3] for line in lines] == [[task_id, status] for status in statuses]
    assert lines[-1][3] == f"{api.url}/files/{task_id}/0.png"
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", line[0]) for line in lines)
    cancelled = api.create()
    api.advance_later(cancelled, (0.3, "cancelled"))
    as_json = hatchery(api, "hk_test", "tasks", "watch", cancelled, "--json", cwd=tmp_path)
    first, last, error = as_json.stdout.split("\n", 2)  # a line per event, then the error
    rows = [json.loads(first), json.loads(last)]
    assert [(r["event_id"], r["status"]) for r in rows] == [(1, "pending"), (2, "cancelled")]
    assert rows[0]["task"] is None and rows[1]["task"]["status"] == "cancelled"
    assert as_json.returncode == 1 and json.loads(error)["error"]["code"] == "TASK_CANCELLED"
