"""Settings: every knob of the server, read once at start-up and passed down.

Values come from ``HATCHERY_*`` environment variables and, for the CLI, from ``--flags`` of the same
names (``HATCHERY_PUBLIC_URL`` is ``--public-url``). Nothing else in the package reads
``os.environ``: build a :class:`Settings` with :meth:`Settings.from_env` and hand it on.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import unquote

PREFIX = "HATCHERY_"
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
WATERMARK_AUTO = ("account", "always", "never")


class SettingsError(ValueError):
    """A setting that cannot be used; the message names the variable."""


def _default_workers() -> int:
    return max(4, min(32, 4 * (os.cpu_count() or 1)))


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path(".hatchery")
    database_url: str = ""
    database_pool_size: int = 10
    public_url: str = ""
    catalog: Path | None = None
    moderation_denylist: Path | None = None
    allow_private_urls: bool = False
    workers: int = field(default_factory=_default_workers)
    lease_seconds: float = 30.0
    poll_interval: float = 2.0
    reaper_interval: float = 5.0
    # How often a process checks that the model routes did not change (a change made through
    # the admin API applies at once on PostgreSQL, by notification) and a worker writes its
    # heartbeat (a worker silent for three of them is shown as gone).
    routes_refresh: float = 5.0
    heartbeat_interval: float = 10.0
    max_attempts: int = 5
    shutdown_grace: float = 20.0
    webhook_timeout: float = 30.0
    webhook_max_retries: int = 5
    webhook_backoff_base: float = 60.0
    webhook_backoff_max: float = 4 * 3600.0
    # Registered endpoints (the VideoGen API's registry): their answer timeout, their retry
    # schedule, how long an endpoint may fail every attempt before it is disabled, and how many
    # attempts one receiver gets at once (so a slow one cannot hold back the others).
    webhook_endpoint_timeout: float = 15.0
    webhook_endpoint_schedule: str = "5s,5m,30m,2h,5h,10h"
    webhook_disable_after: float = 5 * 86400.0
    webhook_per_receiver: int = 4
    reference_max_bytes: int = 20 * 1024 * 1024
    reference_timeout: float = 15.0
    gemini_api_key: str = field(default="", repr=False)
    gemini_base_url: str = "https://generativelanguage.googleapis.com/v1beta"
    fal_key: str = field(default="", repr=False)
    fal_base_url: str = "https://queue.fal.run"
    replicate_api_token: str = field(default="", repr=False)
    replicate_base_url: str = "https://api.replicate.com/v1"
    elevenlabs_api_key: str = field(default="", repr=False)
    elevenlabs_base_url: str = "https://api.elevenlabs.io"
    # Self-hosted inference: a ComfyUI server (its workflows named in the catalog) and any server
    # speaking the OpenAI images API; each provider exists once its URL is set.
    comfyui_url: str = ""
    comfyui_token: str = field(default="", repr=False)
    openai_images_url: str = ""  # e.g. http://gpu-box:8000/v1, or https://api.openai.com/v1
    openai_api_key: str = field(default="", repr=False)
    # How vendors get a tool's input files: "auto" gives presigned URLs when the files are in an
    # S3-compatible store (which the vendors must be able to reach) and the bytes otherwise;
    # "inline" always gives the bytes (inline or through the vendor's upload API).
    vendor_inputs: str = "auto"
    # How long an input file's presigned URL given to a vendor works.
    vendor_input_url_seconds: int = 7200
    upstream_timeout: float = 120.0
    upstream_deadline: float = 1800.0
    upstream_poll_max: float = 10.0
    upstream_max_bytes: int = 512 * 1024 * 1024
    provider_rounds: int = 2
    provider_backoff: float = 2.0
    provider_concurrency: int = 32
    breaker_failures: int = 5
    breaker_cooldown: float = 30.0
    max_in_flight: int = 10000
    rate_limit: str = "6000/minute"
    rate_limit_ip: str = "30000/minute"
    redis_url: str = field(default="", repr=False)
    max_body_bytes: int = 256 * 1024
    # How long a process keeps an API key in memory (store.keycache); 0: read it every request.
    key_cache_seconds: float = 1.0
    body_timeout: float = 10.0
    log_level: str = "info"
    # Observability (docs/observability.md): "text" lines or one JSON object per line; the
    # metrics' bearer token (empty: /metrics is open) and a worker process's metrics port (0:
    # none); how often a scrape reads the queue's state again; and the OpenTelemetry traces, off
    # unless an OTLP/HTTP collector is named (e.g. http://otel-collector:4318).
    log_format: str = "text"
    metrics_token: str = field(default="", repr=False)
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9464
    metrics_refresh: float = 5.0
    otlp_endpoint: str = ""
    otlp_headers: str = field(default="", repr=False)
    trace_sample_ratio: float = 1.0
    service_name: str = "hatchery"
    # Where files live (hatchery.storage): empty for DATA_DIR on local disk, or
    # s3://bucket[/prefix] for any S3-compatible store (credentials: the standard AWS_* variables,
    # read by the S3 client library itself).
    storage_url: str = ""
    storage_endpoint: str = ""  # e.g. https://<account>.r2.cloudflarestorage.com; empty for AWS
    storage_region: str = ""
    # The key of the local store's signed URLs; empty: one made on first start, in DATA_DIR.
    storage_secret: str = field(default="", repr=False)
    signed_url_seconds: int = 3600  # how long a file's signed download URL works
    upload_url_seconds: int = 900  # how long an upload URL takes the bytes
    max_upload_bytes: int = 512 * 1024 * 1024
    temporary_file_hours: float = 24.0  # a TEMPORARY file is kept this long, at least 24
    janitor_interval: float = 60.0  # seconds between the file janitor's sweeps
    # The VideoGen API's tools. What watermarkMode AUTO does: "account" marks the outputs of
    # accounts without the no-watermark flag, "always" marks every output, "never" none.
    watermark_auto: str = "account"
    watermark_text: str = "Hatchery"
    # Each endpoint group's hourly limit per key, over the contract's (api.videogen.auth), as
    # "tools=1000/hour,execution=20000/hour".
    videogen_rate_limits: str = ""
    # Outputs of one execution the local provider makes at once (0: one per CPU core).
    local_parallel: int = 0
    # The dashboard (/dashboard): how long a signed-in browser stays signed in without being
    # used (each use renews it, up to 30 days from the sign-in), and how many sign-in attempts
    # one client IP and one email may make.
    dashboard_session_hours: float = 12.0
    dashboard_signin_limit: str = "10/minute;50/hour"

    def __post_init__(self) -> None:
        data_dir = Path(self.data_dir)
        object.__setattr__(self, "data_dir", data_dir)
        if not self.database_url:
            object.__setattr__(
                self, "database_url", f"sqlite+aiosqlite:///{data_dir / 'hatchery.db'}"
            )
        if not self.public_url:
            object.__setattr__(self, "public_url", f"http://{self.host}:{self.port}")
        object.__setattr__(self, "public_url", self.public_url.rstrip("/"))
        self._check_ranges()
        self._check_rate_limits()
        self._check_storage()
        self._check_tools()
        self._check_webhooks()
        self._check_observability()
        if not 0 <= self.key_cache_seconds <= 60:  # NaN fails this too
            raise SettingsError(f"{PREFIX}KEY_CACHE_SECONDS must be from 0 to 60")

    def _check_ranges(self) -> None:
        if self.workers < 0:
            raise SettingsError("HATCHERY_WORKERS must be 0 or more")
        if self.database_pool_size < 1:
            raise SettingsError("HATCHERY_DATABASE_POOL_SIZE must be 1 or more")
        if not 0 < self.port < 65536:
            raise SettingsError("HATCHERY_PORT must be from 1 to 65535")
        positive = (
            "lease_seconds",
            "poll_interval",
            "reaper_interval",
            "routes_refresh",
            "heartbeat_interval",
            "webhook_timeout",
            "webhook_endpoint_timeout",
            "webhook_disable_after",
            "upstream_timeout",
            "upstream_deadline",
            "upstream_poll_max",
            "provider_backoff",
            "breaker_cooldown",
            "body_timeout",
            "janitor_interval",
            "dashboard_session_hours",
        )
        for name in positive:
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise SettingsError(f"{PREFIX}{name.upper()} must be a positive number")
        counts = (
            "provider_rounds",
            "provider_concurrency",
            "breaker_failures",
            "max_in_flight",
            "upstream_max_bytes",
            "max_body_bytes",
            "max_upload_bytes",
            "webhook_per_receiver",
        )
        for name in counts:
            if getattr(self, name) < 1:
                raise SettingsError(f"{PREFIX}{name.upper()} must be 1 or more")

    def _check_rate_limits(self) -> None:
        from hatchery.domain.rates import parse_rates  # the server extra's `limits`

        for name in ("rate_limit", "rate_limit_ip", "dashboard_signin_limit"):
            value = getattr(self, name)
            try:
                parse_rates(value)
            except ValueError as exc:
                raise SettingsError(f"{PREFIX}{name.upper()}={value!r} {exc}") from None
        if self.redis_url and not self.redis_url.startswith(REDIS_SCHEMES):
            raise SettingsError(
                f"{PREFIX}REDIS_URL must start with one of {', '.join(REDIS_SCHEMES)} "
                "(e.g. redis://127.0.0.1:6379/0)"
            )

    def _check_storage(self) -> None:
        if self.storage_url and not re.fullmatch(
            r"s3://[a-z0-9][a-z0-9.-]{1,62}(/[^/].*)?", self.storage_url
        ):
            raise SettingsError(
                f"{PREFIX}STORAGE_URL must be empty (files on local disk) or "
                "s3://bucket or s3://bucket/prefix (an S3-compatible store)"
            )
        if not 60 <= self.signed_url_seconds <= 7 * 86400:
            raise SettingsError(f"{PREFIX}SIGNED_URL_SECONDS must be from 60 to 604800 (7 days)")
        if self.vendor_inputs not in ("auto", "inline"):
            raise SettingsError(
                f'{PREFIX}VENDOR_INPUTS must be "auto" or "inline" (got {self.vendor_inputs!r})'
            )
        if not 60 <= self.vendor_input_url_seconds <= 7 * 86400:
            raise SettingsError(
                f"{PREFIX}VENDOR_INPUT_URL_SECONDS must be from 60 to 604800 (7 days)"
            )
        if not 60 <= self.upload_url_seconds <= 86400:
            raise SettingsError(f"{PREFIX}UPLOAD_URL_SECONDS must be from 60 to 86400")
        if not 24 <= self.temporary_file_hours <= 24 * 365:  # NaN fails this too
            raise SettingsError(f"{PREFIX}TEMPORARY_FILE_HOURS must be from 24 to 8760")

    def _check_tools(self) -> None:
        if self.watermark_auto not in WATERMARK_AUTO:
            raise SettingsError(
                f"{PREFIX}WATERMARK_AUTO must be one of {', '.join(WATERMARK_AUTO)} "
                f"(got {self.watermark_auto!r})"
            )
        if not 1 <= len(self.watermark_text.strip()) <= 40:
            raise SettingsError(f"{PREFIX}WATERMARK_TEXT must be 1 to 40 characters")
        if self.local_parallel < 0:
            raise SettingsError(f"{PREFIX}LOCAL_PARALLEL must be 0 (one per core) or more")
        for name in ("comfyui_url", "openai_images_url", "elevenlabs_base_url"):
            value = getattr(self, name)
            if value and not re.fullmatch(r"https?://[^\s/]+(/\S*)?", value):
                raise SettingsError(
                    f"{PREFIX}{name.upper()} must be an http(s) URL such as "
                    f"http://gpu-box:8188 (got {value!r})"
                )

    def _check_observability(self) -> None:
        if self.log_format not in ("text", "json"):
            raise SettingsError(
                f'{PREFIX}LOG_FORMAT must be "text" or "json" (got {self.log_format!r})'
            )
        if not 0 <= self.metrics_port < 65536:
            raise SettingsError(f"{PREFIX}METRICS_PORT must be from 0 (none) to 65535")
        if not (self.metrics_refresh > 0 and math.isfinite(self.metrics_refresh)):
            raise SettingsError(f"{PREFIX}METRICS_REFRESH must be a positive number")
        if self.otlp_endpoint and not re.fullmatch(r"https?://[^\s/]+(/\S*)?", self.otlp_endpoint):
            raise SettingsError(
                f"{PREFIX}OTLP_ENDPOINT must be an http(s) URL such as "
                f"http://otel-collector:4318 (got {self.otlp_endpoint!r})"
            )
        if not 0 <= self.trace_sample_ratio <= 1:
            raise SettingsError(f"{PREFIX}TRACE_SAMPLE_RATIO must be from 0 to 1")
        try:
            self.otlp_header_pairs()
        except ValueError as exc:
            raise SettingsError(f"{PREFIX}OTLP_HEADERS: {exc}") from None

    def otlp_header_pairs(self) -> dict[str, str]:
        """``HATCHERY_OTLP_HEADERS`` ("name=value,name=value", percent-encoded as the standard
        ``OTEL_EXPORTER_OTLP_HEADERS``: ``Authorization=Basic%20...``) as a mapping. An error
        names the item by its place only: a value may be a secret."""
        pairs: dict[str, str] = {}
        items = filter(None, (part.strip() for part in self.otlp_headers.split(",")))
        for place, item in enumerate(items, 1):
            name, sep, value = item.partition("=")
            if not sep or not name.strip():
                raise ValueError(f"item {place} is not name=value")
            pairs[unquote(name.strip())] = unquote(value.strip())
        return pairs

    def _check_webhooks(self) -> None:
        from hatchery.domain.webhooks import parse_schedule

        try:
            parse_schedule(self.webhook_endpoint_schedule)
        except ValueError as exc:
            raise SettingsError(f"{PREFIX}WEBHOOK_ENDPOINT_SCHEDULE: {exc}") from None
        if self.webhook_max_retries < 0:
            raise SettingsError(f"{PREFIX}WEBHOOK_MAX_RETRIES must be 0 or more")

    @property
    def local_threads(self) -> int:
        return self.local_parallel or max(1, os.cpu_count() or 1)

    @property
    def outputs_dir(self) -> Path:
        return self.data_dir / "outputs"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``HATCHERY_*`` variables; ``overrides`` (CLI flags) win when not None."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = PREFIX + f.name.upper()
            if overrides.get(f.name) is not None:
                values[f.name] = _coerce(f, name, overrides[f.name])
            elif env.get(name, "") != "":
                values[f.name] = _coerce(f, name, env[name])
        return cls(**values)


def _coerce(f: dataclasses.Field[Any], name: str, raw: Any) -> Any:
    kind = str(f.type)
    if not isinstance(raw, str):
        return raw
    try:
        if kind == "bool":
            return _parse_bool(raw)
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a valid {kind}") from None
    if "Path" in kind:
        return Path(raw)
    return raw


def _parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ValueError(raw)


def setting_names() -> dict[str, str]:
    """Each setting's name and its type's name (``"int"``, ``"bool"``, ``"Path | None"``...)."""
    return {f.name: str(f.type) for f in fields(Settings)}
