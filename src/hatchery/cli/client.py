"""The client side of the ``hatchery`` command: ``generate``, ``tasks``, ``usage``, ``account``. It
talks to a server over HTTP through the SDK and needs nothing but httpx.

Every failure exits 1 after printing ``error: CODE: message`` on stderr (with ``--json``, an
``{"error": {...}}`` object on stdout). Codes are the API's (``NOT_FOUND``, ...) and, for what
happens on this side, ``CONNECTION_ERROR``, ``TIMEOUT``, ``TASK_FAILED``, ``TASK_CANCELLED``,
``WAIT_TIMEOUT``, ``DOWNLOAD_FAILED``, ``CONFIGURATION_ERROR`` and ``FILE_ERROR``. Ctrl-C while
waiting exits 130 with ``INTERRUPTED`` and the id of the task, which runs on.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hatchery.cli.display import (
    StatusLine,
    account_details,
    event_json,
    event_line,
    print_json,
    summary_table,
    task_details,
    task_table,
    usage_table,
)
from hatchery.client import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    Client,
    ConfigurationError,
    HatcheryError,
    Page,
    Task,
    TaskCancelledError,
    TaskFailedError,
    WaitTimeoutError,
)
from hatchery.client._base import finished

Command = Callable[[Client, argparse.Namespace], int]


class Interrupted(HatcheryError):
    """Ctrl-C while waiting: the task runs on, and the user is told its id."""

    def __init__(self, task_id: str) -> None:
        super().__init__(
            f"stopped waiting; task {task_id} runs on (`hatchery tasks wait {task_id}` waits again)"
        )


class DownloadFailed(HatcheryError):
    """The task completed (and was charged) but its outputs could not be saved."""

    def __init__(self, task: Task, cause: Exception) -> None:
        code, message = describe(cause)
        super().__init__(
            f"task {task.id} completed but its outputs were not saved: {code}: {message}"
        )
        self.task = task


def _show_task(args: argparse.Namespace, task: Task, files: list[Path] | None = None) -> None:
    if args.json:
        extra = {"files": [str(p) for p in files]} if files is not None else {}
        print_json(sys.stdout, {**task.raw, **extra})
    elif files is not None:
        sys.stdout.write("".join(f"{path}\n" for path in files))
    else:
        sys.stdout.write(task_details(task) + "\n")


def _wait(client: Client, args: argparse.Namespace, task_id: str) -> Task:
    try:
        if args.json and not sys.stderr.isatty():
            return client.tasks.wait(task_id, timeout=args.timeout)
        with StatusLine(sys.stderr, task_id) as line:
            return client.tasks.wait(task_id, timeout=args.timeout, on_update=line.update)
    except KeyboardInterrupt:
        raise Interrupted(task_id) from None


def _download(client: Client, task: Task, out: str) -> list[Path]:
    try:
        return client.download(task, out)
    except (HatcheryError, OSError) as exc:
        raise DownloadFailed(task, exc) from exc
    except KeyboardInterrupt:
        raise DownloadFailed(task, HatcheryError("interrupted")) from None


def generate(client: Client, args: argparse.Namespace) -> int:
    args.out = args.out or "."
    if not args.no_wait:  # before paying for outputs that could not be saved
        Path(args.out).mkdir(parents=True, exist_ok=True)
    task = client.generate(
        model=args.model,
        prompt=args.prompt,
        negative_prompt=args.negative_prompt,
        num_outputs=args.num_outputs,
        duration=args.duration,
        aspect_ratio=args.aspect_ratio,
        resolution=args.resolution,
        image_urls=args.image_url or None,
        webhook_url=args.webhook_url,
        idempotency_key=args.idempotency_key,
    )
    if args.no_wait:
        if args.json:
            _show_task(args, task)
        else:
            sys.stdout.write(task.id + "\n")
        return 0
    task = _wait(client, args, task.id)
    _show_task(args, task, _download(client, task, args.out))
    return 0


def tasks_list(client: Client, args: argparse.Namespace) -> int:
    page = client.tasks.list(
        page=args.page,
        per_page=args.per_page,
        status=args.status,
        model=args.model,
        type=args.type,
        cursor=args.cursor,
    )
    return _show_page(args, page, task_table(page))


def _show_page(args: argparse.Namespace, page: Page[Any], table: str) -> int:
    """A list's page: the API's object with ``--json``, else its table."""
    if args.json:
        items = [item.raw for item in page]
        print_json(sys.stdout, {"items": items, "pagination": page.pagination.raw})
    else:
        sys.stdout.write(table + "\n")
    return 0


def tasks_get(client: Client, args: argparse.Namespace) -> int:
    _show_task(args, client.tasks.get(args.id))
    return 0


def tasks_cancel(client: Client, args: argparse.Namespace) -> int:
    _show_task(args, client.tasks.cancel(args.id))
    return 0


def tasks_watch(client: Client, args: argparse.Namespace) -> int:
    for event in client.tasks.stream(args.id):
        sys.stdout.write((event_json(event) if args.json else event_line(event)) + "\n")
        sys.stdout.flush()
        if event.task is not None:
            finished(event.task)
    return 0


def tasks_wait(client: Client, args: argparse.Namespace) -> int:
    task = _wait(client, args, args.id)
    _show_task(args, task, _download(client, task, args.out) if args.out else None)
    return 0


def usage_list(client: Client, args: argparse.Namespace) -> int:
    page = client.usage.list(
        page=args.page,
        per_page=args.per_page,
        model=args.model,
        type=args.type,
        api_key=args.key,
        start_date=args.start_date,
        end_date=args.end_date,
    )
    return _show_page(args, page, usage_table(page))


def usage_summary(client: Client, args: argparse.Namespace) -> int:
    entries = client.usage.summary(
        start_date=args.start_date, end_date=args.end_date, api_key=args.key
    )
    if args.json:
        print_json(sys.stdout, [e.raw for e in entries])
    else:
        sys.stdout.write(summary_table(entries) + "\n")
    return 0


def account(client: Client, args: argparse.Namespace) -> int:
    found = client.account(api_key=args.key)
    if args.json:
        print_json(sys.stdout, found.raw)
    else:
        sys.stdout.write(account_details(found) + "\n")
    return 0


COMMANDS: dict[tuple[str, str | None], Command] = {
    ("generate", None): generate,
    ("tasks", "list"): tasks_list,
    ("tasks", "get"): tasks_get,
    ("tasks", "wait"): tasks_wait,
    ("tasks", "watch"): tasks_watch,
    ("tasks", "cancel"): tasks_cancel,
    ("usage", "list"): usage_list,
    ("usage", "summary"): usage_summary,
    ("account", None): account,
}
NAMES = {command for command, _ in COMMANDS}


def describe(exc: Exception) -> tuple[str, str]:
    """An error's code and message, as the CLI reports it."""
    if isinstance(exc, APIError):
        return exc.code, exc.message
    kinds: list[tuple[type[Exception], str]] = [
        (Interrupted, "INTERRUPTED"),
        (DownloadFailed, "DOWNLOAD_FAILED"),
        (TaskCancelledError, "TASK_CANCELLED"),
        (TaskFailedError, "TASK_FAILED"),
        (WaitTimeoutError, "WAIT_TIMEOUT"),
        (APITimeoutError, "TIMEOUT"),
        (APIConnectionError, "CONNECTION_ERROR"),
        (ConfigurationError, "CONFIGURATION_ERROR"),
        (OSError, "FILE_ERROR"),
    ]
    code = next((code for kind, code in kinds if isinstance(exc, kind)), "ERROR")
    return code, str(exc)


def report(exc: Exception, as_json: bool) -> None:
    code, message = describe(exc)
    request_id: str | None = getattr(exc, "request_id", None)
    task: Task | None = getattr(exc, "task", None)
    if as_json:
        error = {"code": code, "message": message}
        if request_id:
            error["request_id"] = request_id
        print_json(sys.stdout, {"error": error, **({"task": task.raw} if task else {})})
    else:
        suffix = f" (request id {request_id})" if request_id else ""
        sys.stderr.write(f"error: {code}: {message}{suffix}\n")


def run(args: argparse.Namespace) -> int:
    command = COMMANDS[(args.command, getattr(args, "action", None))]
    try:
        client = Client(api_key=args.api_key, base_url=args.base_url)
    except ConfigurationError as exc:
        message = (
            str(exc)
            .replace("pass api_key=...", "pass --api-key")
            .replace("(HATCHERY_BASE_URL)", "(--base-url or HATCHERY_BASE_URL)")
        )
        report(ConfigurationError(message), args.json)
        return 1
    try:
        with client:
            return command(client, args)
    except (HatcheryError, OSError) as exc:  # OSError: the output directory cannot be written
        report(exc, args.json)
        return 130 if isinstance(exc, Interrupted) else 1
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
