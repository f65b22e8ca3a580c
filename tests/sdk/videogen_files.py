"""Driven by tests/integration/test_videogen_sdk.py: the VideoGen API's official Python SDK
(``videogen`` 0.0.38, unchanged, in its own virtual environment) against a Hatchery server.
Prints one JSON object of what it saw. Arguments: base URL, API key, scratch directory."""

import io
import json
import struct
import sys
import zlib

from videogen import VideoGenApi
from videogen.core.api_error import ApiError
from videogen.download_file import download_file
from videogen.get_hydrated_file import get_hydrated_file
from videogen.upload_file import upload_file


def png(width, height):
    raw = b"".join(b"\x00" + b"\xc8\x1e\x1e" * width for _ in range(height))

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def main():
    base_url, key, scratch = sys.argv[1:4]
    client = VideoGenApi(base_url=base_url, token=key, timeout=30)
    seen = {}
    data = png(40, 30)
    uploaded = upload_file(
        client, io.BytesIO(data), display_name="An SDK sunrise", poll_interval_ms=200
    )
    seen["uploaded"] = {
        "file_id": uploaded.file_id,
        "type": uploaded.type,
        "scope": uploaded.scope,
        "download_status": uploaded.download_source.status,
        "width": uploaded.download_source.width,
    }
    fetched = get_hydrated_file(client, uploaded.file_id)
    seen["fetched_name"] = fetched.display_name
    target = f"{scratch}/downloaded.png"
    download_file(client, uploaded.file_id, output_path=target)
    seen["downloaded_same"] = open(target, "rb").read() == data
    listed = client.files.get_files()
    seen["listed"] = [f.file_id for f in listed.files]
    found = client.files.search_files(query="sunrise")
    seen["found"] = [(r.file.file_id, r.similarity) for r in found.results]
    archived = client.files.archive_file(file_id=uploaded.file_id)
    seen["archived_id"] = archived.file_id
    seen["listed_after_archive"] = [f.file_id for f in client.files.get_files().files]
    try:
        client.files.get_file(file_id="vg_file_doesnotexist0000000")
    except ApiError as exc:
        seen["missing"] = [exc.status_code, exc.body]
    try:
        client.files.get_file(file_id="nope")
    except ApiError as exc:
        seen["malformed"] = [exc.status_code, exc.body]
    print(json.dumps(seen))


main()
