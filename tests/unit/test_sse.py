"""The Server-Sent Events parser (``hatchery.client._sse``), fed bytes as a network would."""

from __future__ import annotations

import pytest

from hatchery.client._sse import ServerSentEvent, SSEDecoder


def parse(*chunks: bytes) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    return [event for chunk in chunks for event in decoder.feed(chunk)]


def test_an_event_has_its_id_type_and_data() -> None:
    stream = b'id: 3\nevent: processing\ndata: {"status": "processing"}\n\n'
    assert parse(stream) == [ServerSentEvent("processing", '{"status": "processing"}', "3")]


@pytest.mark.parametrize("end", [b"\n", b"\r\n", b"\r"])
def test_lines_may_end_with_lf_crlf_or_cr(end: bytes) -> None:
    stream = end.join([b"id: 1", b"event: pending", b"data: a", b"", b"id: 2", b"data: b", b""])
    assert parse(stream + end) == [
        ServerSentEvent("pending", "a", "1"),
        ServerSentEvent("message", "b", "2"),
    ]


def test_the_space_after_the_colon_is_optional_and_only_one_is_removed() -> None:
    assert parse(b"data:x\n\n") == [ServerSentEvent(data="x")]
    assert parse(b"data:  two\n\n") == [ServerSentEvent(data=" two")]
    assert parse(b"event:cancelled\ndata:{}\n\n")[0].event == "cancelled"


def test_data_lines_are_joined_with_newlines() -> None:
    assert parse(b"data: first\ndata\ndata: third\n\n") == [ServerSentEvent(data="first\n\nthird")]


def test_comments_retry_and_unknown_fields_are_not_events() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"retry: 2500\n: keep-alive\n\nfoo: bar\n:\n\n") == []
    assert decoder.retry == 2500
    decoder.feed(b"retry: soon\n")  # not a number: ignored
    assert decoder.retry == 2500
    assert decoder.feed(b": keep-alive\ndata: x\n\n") == [ServerSentEvent(data="x")]


def test_the_last_id_carries_over_and_an_event_without_data_is_not_dispatched() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"id: 7\nevent: pending\n\n") == []
    assert decoder.last_event_id == "7"
    # the type of the undispatched event does not leak into the next one
    assert decoder.feed(b"data: y\n\n") == [ServerSentEvent("message", "y", "7")]
    assert decoder.feed(b"id: 8\0\ndata: z\n\n") == [ServerSentEvent("message", "z", "7")]


def test_events_split_anywhere_across_chunks_come_out_the_same() -> None:
    stream = (
        "\ufeffretry: 1000\r\n: keep-alive\r\n\r\n"
        'id: 1\r\nevent: pending\r\ndata: {"at": "é"}\r\n\r\n'
        "id: 2\r\nevent: completed\r\ndata: one\r\ndata: two\r\n\r\n"
    ).encode()
    whole = parse(stream)
    assert [e.id for e in whole] == ["1", "2"] and whole[0].data == '{"at": "é"}'
    assert whole[1].data == "one\ntwo"
    for size in (1, 2, 3, 5, 7):
        chunks = [stream[i : i + size] for i in range(0, len(stream), size)]
        assert parse(*chunks) == whole, size


def test_a_cr_lf_split_between_chunks_is_one_line_end() -> None:
    assert parse(b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n") == [ServerSentEvent(data="a\nb")]
    assert parse(b"data: a\r", b"", b"\ndata: b\n\n") == [ServerSentEvent(data="a\nb")]


def test_an_event_cut_off_by_the_end_of_the_stream_is_not_dispatched() -> None:
    assert parse(b"id: 1\ndata: whole\n\nid: 2\ndata: half") == [
        ServerSentEvent(data="whole", id="1")
    ]
    assert parse(b"id: 1\ndata: no blank line yet\n") == []
