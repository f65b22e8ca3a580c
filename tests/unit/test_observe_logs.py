"""Tests for hatchery.observe.logs: the ids on each line (context variables, ``bound``), the JSON
and text formats, and ``configure`` sending every logger's lines through one handler."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
from collections.abc import Iterator

import pytest

from hatchery.observe import logs

IDS = ("request_id", "task_id", "account_id", "provider", "trace_id")


@contextlib.contextmanager
def captured(name: str, formatter: logging.Formatter) -> Iterator[io.StringIO]:
    """A logger of its own whose lines go, formatted and with the ids, into the stream."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(logs.ContextFilter())
    handler.setFormatter(formatter)
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield out
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    with captured("tests.observe.json", logs.JsonFormatter()) as out:
        yield out


@pytest.fixture
def text_stream() -> Iterator[io.StringIO]:
    with captured("tests.observe.text", logging.Formatter(logs.TEXT_FORMAT)) as out:
        yield out


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """``configure`` changes the root logger and uvicorn's: put them back afterwards."""
    root = logging.getLogger()
    saved_root = (list(root.handlers), root.level)
    names = ("uvicorn", "uvicorn.error", "uvicorn.access")
    saved = {
        n: (list(logging.getLogger(n).handlers), logging.getLogger(n).propagate) for n in names
    }
    yield
    for handler in list(root.handlers):
        if handler not in saved_root[0]:
            root.removeHandler(handler)
    for handler in saved_root[0]:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(saved_root[1])
    for name, (handlers, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.propagate = propagate


def lines(out: io.StringIO) -> list[dict[str, object]]:
    text = out.getvalue()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def json_log() -> logging.Logger:
    return logging.getLogger("tests.observe.json")


def test_a_line_without_ids_has_none_of_them(stream: io.StringIO) -> None:
    json_log().info("hello %s", "world")
    [line] = lines(stream)
    assert line["message"] == "hello world"
    assert line["level"] == "info"
    assert line["logger"] == "tests.observe.json"
    assert isinstance(line["time"], str) and line["time"].endswith("+00:00")
    assert not set(IDS) & set(line)
    assert "exception" not in line


def test_ids_set_are_on_the_line(stream: io.StringIO) -> None:
    token = logs.REQUEST_ID.set("req_1")
    try:
        with logs.bound(task_id="gen_1", account_id="acct_1", provider="fal"):
            json_log().warning("working")
    finally:
        logs.REQUEST_ID.reset(token)
    [line] = lines(stream)
    assert line["level"] == "warning"
    assert {k: line[k] for k in ("request_id", "task_id", "account_id", "provider")} == {
        "request_id": "req_1",
        "task_id": "gen_1",
        "account_id": "acct_1",
        "provider": "fal",
    }
    assert "trace_id" not in line


def test_only_the_ids_that_are_set_appear(stream: io.StringIO) -> None:
    with logs.bound(task_id="gen_2"):
        json_log().info("one id")
    [line] = lines(stream)
    assert line["task_id"] == "gen_2"
    assert not {"request_id", "account_id", "provider", "trace_id"} & set(line)


def test_each_record_is_one_line_even_with_newlines_in_it(stream: io.StringIO) -> None:
    json_log().info("first\nsecond")
    json_log().info("third")
    first, third = lines(stream)
    assert first["message"] == "first\nsecond"
    assert third["message"] == "third"


def test_an_exception_is_on_the_line_with_its_traceback(stream: io.StringIO) -> None:
    def fails() -> None:
        raise RuntimeError("it broke")

    try:
        fails()
    except RuntimeError:
        json_log().exception("failed")
    [line] = lines(stream)
    assert line["level"] == "error"
    assert line["message"] == "failed"
    exception = str(line["exception"])
    assert exception.startswith("Traceback (most recent call last):")
    assert "in fails" in exception
    assert exception.rstrip().endswith("RuntimeError: it broke")


def test_bound_restores_the_previous_values_nested() -> None:
    assert logs.context() == {}
    with logs.bound(task_id="outer", account_id="acct_1"):
        assert logs.context() == {"task_id": "outer", "account_id": "acct_1"}
        with logs.bound(task_id="inner", provider="fal"):
            assert logs.context() == {"task_id": "inner", "account_id": "acct_1", "provider": "fal"}
        assert logs.context() == {"task_id": "outer", "account_id": "acct_1"}
    assert logs.context() == {}


def test_bound_restores_them_when_the_block_raises() -> None:
    with pytest.raises(ValueError), logs.bound(task_id="gen_3", provider="fal"):
        raise ValueError("x")
    assert logs.TASK_ID.get() is None
    assert logs.PROVIDER.get() is None


def test_bound_leaves_the_ids_not_given_as_they_are() -> None:
    token = logs.TASK_ID.set("kept")
    try:
        with logs.bound(provider="fal"):
            assert logs.TASK_ID.get() == "kept"
        assert logs.TASK_ID.get() == "kept"
        assert logs.PROVIDER.get() is None
    finally:
        logs.TASK_ID.reset(token)


def test_text_lines_end_with_the_ids(text_stream: io.StringIO) -> None:
    logger = logging.getLogger("tests.observe.text")
    logger.info("no ids")
    with logs.bound(task_id="gen_4", account_id="acct_4"):
        logger.info("some ids")
    plain, with_ids = text_stream.getvalue().splitlines()
    assert plain.endswith(" INFO tests.observe.text: no ids")
    assert with_ids.endswith(" INFO tests.observe.text: some ids [task_id=gen_4 account_id=acct_4]")


async def test_ids_set_in_an_asyncio_task_stay_in_that_task(stream: io.StringIO) -> None:
    token = logs.REQUEST_ID.set("req_parent")
    try:

        async def child() -> None:
            logs.bind_task("gen_child", "acct_child")
            await asyncio.sleep(0)
            json_log().info("in the child")

        await asyncio.create_task(child())
        json_log().info("in the parent")
    finally:
        logs.REQUEST_ID.reset(token)
    in_child, in_parent = lines(stream)
    assert in_child["message"] == "in the child"
    assert in_child["request_id"] == "req_parent"  # copied from the parent's context
    assert in_child["task_id"] == "gen_child"
    assert in_child["account_id"] == "acct_child"
    assert in_parent["request_id"] == "req_parent"
    assert "task_id" not in in_parent
    assert "account_id" not in in_parent
    assert logs.TASK_ID.get() is None


def configured_stream() -> io.StringIO:
    """The stream of the handler ``configure`` put on the root logger (now a StringIO)."""
    [handler] = logging.getLogger().handlers
    assert isinstance(handler, logging.StreamHandler)
    out = io.StringIO()
    handler.setStream(out)
    return out


@pytest.mark.usefixtures("restore_logging")
def test_configure_json_sends_uvicorns_lines_through_the_root_handler_once() -> None:
    # uvicorn's own logging configuration: handlers of its own, not propagating.
    theirs = io.StringIO()
    for name in ("uvicorn", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.addHandler(logging.StreamHandler(theirs))
        logger.propagate = False
    logs.configure("info", "json")
    out = configured_stream()
    with logs.bound(task_id="gen_5"):
        logging.getLogger("uvicorn.error").info("Started server process")
    logging.getLogger("uvicorn.access").info("GET / 200")
    logging.getLogger("uvicorn.error").debug("below the level")
    first, second = lines(out)
    assert (first["logger"], first["message"], first["task_id"]) == (
        "uvicorn.error",
        "Started server process",
        "gen_5",
    )
    assert (second["logger"], second["message"]) == ("uvicorn.access", "GET / 200")
    assert theirs.getvalue() == ""
    assert logging.getLogger().level == logging.INFO


@pytest.mark.usefixtures("restore_logging")
def test_configure_replaces_the_root_handlers_and_text_is_the_other_format() -> None:
    old = logging.StreamHandler(io.StringIO())
    logging.getLogger().addHandler(old)
    logs.configure("debug", "text")
    assert old not in logging.getLogger().handlers
    out = configured_stream()
    with logs.bound(provider="fal"):
        logging.getLogger("hatchery.test").debug("plain")
    [line] = out.getvalue().splitlines()
    assert line.endswith(" DEBUG hatchery.test: plain [provider=fal]")
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_a_new_request_starts_without_the_ids_the_last_one_left() -> None:
    """uvicorn may start a request in the context its connection's previous one left."""

    async def main() -> dict[str, str]:
        logs.begin_request("req-a")
        logs.bind_task("gen_a", "acct_a")
        logs.PROVIDER.set("veo")
        logs.begin_request("req-b")
        return logs.context()

    assert asyncio.run(main()) == {"request_id": "req-b"}
