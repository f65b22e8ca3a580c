"""A Server-Sent Events parser (the ``text/event-stream`` format of the HTML standard), pure:
bytes go in as they arrive, whole events come out. No I/O, no knowledge of Hatchery.

Lines end with CRLF, LF or CR (a CR at the end of one chunk and an LF at the start of the next
are one line end). A line starting with ``:`` is a comment (``: keep-alive``). ``field: value``
and ``field:value`` are the same; a line with no colon is a field with an empty value. ``data``
lines accumulate, joined with ``\\n``; a blank line dispatches the event (none when it has no
data). ``id`` is remembered for the events that follow (``last_event_id``), ``retry`` sets
``retry`` (milliseconds), unknown fields are ignored, and an event cut off by the end of the
stream is never dispatched.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass


@dataclass(frozen=True)
class ServerSentEvent:
    event: str = "message"
    data: str = ""
    id: str | None = None  # the last event id at dispatch (it carries over from earlier events)


class SSEDecoder:
    """One stream's parser. ``feed`` returns the events completed by a chunk of bytes."""

    def __init__(self) -> None:
        self.last_event_id: str | None = None
        self.retry: int | None = None  # milliseconds, from the last valid ``retry:`` line
        self._text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._line = ""  # an unfinished line
        self._after_cr = False  # the last chunk ended with CR: an LF starting this one is its end
        self._started = False  # a byte order mark is skipped at the very start only
        self._event = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        events = []
        for line in self._lines(self._text.decode(chunk)):
            event = self._take(line)
            if event is not None:
                events.append(event)
        return events

    def _lines(self, text: str) -> list[str]:
        if not text:
            return []
        if not self._started:
            self._started = True
            text = text.removeprefix("\ufeff")
        if self._after_cr and text.startswith("\n"):
            text = text[1:]
        self._after_cr = text.endswith("\r")
        parts = (self._line + text).replace("\r\n", "\n").replace("\r", "\n").split("\n")
        self._line = parts.pop()
        return parts

    def _take(self, line: str) -> ServerSentEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self.last_event_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        data, event = self._data, self._event
        self._data, self._event = [], ""
        if not data:
            return None
        return ServerSentEvent(event or "message", "\n".join(data), self.last_event_id)
