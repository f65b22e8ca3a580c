"""The pure pieces of task control: the Prefer and Last-Event-ID headers, Idempotency-Key rules
and body fingerprints, synchronous catalog models."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from starlette.requests import Request

from hatchery.api import idempotency, watch
from hatchery.domain.catalog import Catalog, CatalogError
from hatchery.errors import BadRequest, Conflict, IdempotencyMismatch
from hatchery.store.idempotency import Claimed


def request(**headers: str) -> Request:
    raw = [(k.lower().replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": raw})


@pytest.mark.parametrize(
    ("prefer", "wait"),
    [
        (None, None),
        ("wait=5", 5),
        ("WAIT = 60", 60),
        ('wait="7"', 7),
        ("respond-async", 0),
        ("respond-async, wait=3", 3),
        ("handling=lenient; foo, wait=0", 0),
        ("return=minimal", None),
    ],
)
def test_prefer_wait(prefer: str | None, wait: int | None) -> None:
    headers = {} if prefer is None else {"prefer": prefer}
    assert watch.requested_wait(request(**headers)) == wait


@pytest.mark.parametrize("value", ["61", "-1", "1.5", "", "soon", "٣"])
def test_prefer_wait_out_of_range_or_not_a_number_says_what_to_send(value: str) -> None:
    with pytest.raises(BadRequest, match="whole number of seconds from 0 to 60"):
        watch.requested_wait(request(prefer=f"wait={value}"))


def test_last_event_id() -> None:
    assert watch.last_event_id(request()) is None
    assert watch.last_event_id(request(last_event_id=" ")) is None
    assert watch.last_event_id(request(last_event_id="42")) == 42
    for bad in ("x", "-1", "1" * 19):
        with pytest.raises(BadRequest, match="Last-Event-ID"):
            watch.last_event_id(request(last_event_id=bad))


def test_idempotency_key_rules() -> None:
    assert idempotency.idempotency_key(request()) is None
    assert idempotency.idempotency_key(request(idempotency_key="a b~")) == "a b~"
    assert idempotency.idempotency_key(request(idempotency_key="k" * 255)) == "k" * 255
    for bad in ("k" * 256, "", "tab\there"):
        with pytest.raises(BadRequest, match="1 to 255 printable ASCII"):
            idempotency.idempotency_key(request(idempotency_key=bad))


def test_fingerprint_ignores_key_order_and_spacing_but_not_values() -> None:
    first = idempotency.fingerprint(json.loads('{"model": "m", "prompt": "p"}'))
    assert first == idempotency.fingerprint(json.loads('{"prompt":"p","model":"m"}'))
    assert first != idempotency.fingerprint({"model": "m", "prompt": "q"})


def test_a_repeated_key_gets_its_task_or_the_reason_it_gets_none() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    assert idempotency.replayed_task("k", Claimed("f", "gen_1", at), "f") == "gen_1"
    with pytest.raises(IdempotencyMismatch, match="different request body"):
        idempotency.replayed_task("k", Claimed("f", "gen_1", at), "g")
    with pytest.raises(Conflict, match="still in progress") as caught:
        idempotency.replayed_task("k", Claimed("f", None, at), "f")
    assert caught.value.retry_after == 1


def test_a_catalog_model_may_be_synchronous() -> None:
    catalog = Catalog.parse(
        '[models.a]\ntype = "image"\nprice_per_output = "0.01"\nsynchronous = true\n'
        '[models.b]\ntype = "image"\nprice_per_output = "0.01"\n'
    )
    assert catalog.models["a"].synchronous and not catalog.models["b"].synchronous
    assert not any(m.synchronous for m in Catalog.load().models.values())  # built in: none
    with pytest.raises(CatalogError, match=r"models\.a\.synchronous must be true or false"):
        Catalog.parse('[models.a]\ntype = "image"\nprice_per_output = "0.01"\nsynchronous = 1\n')
