"""The VideoGen API's official Python SDK (``videogen==0.0.38``), unchanged, against Hatchery.

It pins ``pydantic-core`` below the server's own, so it runs in a virtual environment of its own
(``scripts/ensure-videogen-sdk``, which ``make test`` runs), as a subprocess: ``tests/sdk/``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import ServerProcess, run_videogen_sdk


@pytest.mark.slow
def test_the_sdk_uploads_lists_searches_downloads_and_archives(
    server: ServerProcess, tmp_path: Path
) -> None:
    key = server.new_account("sdk-files@example.com")
    seen = run_videogen_sdk("videogen_files.py", server.url, key, str(tmp_path))
    uploaded = seen["uploaded"]
    assert isinstance(uploaded, dict)
    file_id = uploaded["file_id"]
    assert uploaded == {
        "file_id": file_id,
        "type": "IMAGE",
        "scope": "GLOBAL",
        "download_status": "ready",
        "width": 40,
    }
    assert seen["fetched_name"] == "An SDK sunrise"
    assert seen["downloaded_same"] is True
    assert seen["listed"] == [file_id]
    assert seen["found"] == [[file_id, 1.0]]
    assert seen["archived_id"] == file_id and seen["listed_after_archive"] == []
    assert seen["missing"] == [
        404,
        {"message": "File not found: vg_file_doesnotexist0000000", "code": "not_found"},
    ]
    malformed = seen["malformed"]
    assert isinstance(malformed, list) and malformed[0] == 400
    assert malformed[1]["code"] == "invalid_id"
