"""Concurrent submits can never take a balance below zero: the reservation is one conditional
update in the same write transaction as the insert."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.helpers import ServerProcess, wait_for_task


def test_concurrent_submits_never_overdraw(server: ServerProcess) -> None:
    key = server.new_account("race@example.com", balance="0.05")

    def submit(i: int) -> httpx.Response:
        with server.client(key=key) as client:
            return client.post("/v1/generate", json={"model": "nanobanana", "prompt": f"race {i}"})

    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(submit, range(40)))

    accepted = [r for r in responses if r.status_code == 202]
    refused = [r for r in responses if r.status_code != 202]
    assert len(accepted) == 5
    assert {r.status_code for r in refused} == {403}
    assert {r.json()["error"]["code"] for r in refused} == {"INSUFFICIENT_BALANCE"}
    with server.client(key=key) as client:
        for response in accepted:
            assert wait_for_task(client, response.json()["data"]["id"])["status"] == "completed"
        account = client.get("/v1/account").json()["data"]
        assert client.get("/v1/tasks").json()["data"]["pagination"]["total"] == 5
    assert account["balance"] == "$0.0000"
    assert account["reserved"] == "$0.0000"
