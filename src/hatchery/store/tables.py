"""Table definitions (SQLAlchemy Core). The tasks table is the queue; webhook_deliveries is the
outbox; ledger records every credit and the single charge of each task."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every dialect (SQLite stores them as sortable text)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("status", sa.String(16), nullable=False, server_default="active"),
    sa.Column("balance_micros", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("reserved_micros", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("webhook_secret", sa.String(128), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    # The account's own request rate limit ("100/second", "1000/minute;20/second"); NULL means
    # the server's default (HATCHERY_RATE_LIMIT).
    sa.Column("rate_limit", sa.String(64), nullable=True),
    # What the operator allows it beyond the default, comma-separated (``no-watermark``).
    sa.Column("flags", sa.String(256), nullable=False, server_default=""),
    # The dashboard's sign-in (argon2, ``domain.passwords``); NULL: no password set yet.
    sa.Column("password_hash", sa.String(256), nullable=True),
    # "user", or "admin": may use the admin API and the operator's pages (granted from the CLI)
    sa.Column("role", sa.String(16), nullable=False, server_default="user"),
    sa.CheckConstraint("reserved_micros >= 0", name="reserved_nonnegative"),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("account_id", sa.String(32), sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("prefix", sa.String(32), nullable=False, unique=True),
    sa.Column("key_hash", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=True),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
    sa.Column("name", sa.String(128), nullable=True),
    # When a request last authenticated with it, to the minute (``store.keycache``).
    sa.Column("last_used_at", UTCDateTime, nullable=True),
    sa.Index(None, "account_id", "created_at"),
)

dashboard_sessions = sa.Table(
    "dashboard_sessions",
    metadata,
    # A browser signed in to the dashboard: ``id`` is the SHA-256 of its cookie's token (the
    # token itself is never stored); ``csrf_token`` what its forms and API calls must carry.
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("account_id", sa.String(32), sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("user_agent", sa.String(256), nullable=True),
    sa.Index(None, "account_id"),
    sa.Index(None, "expires_at"),
)

dashboard_invites = sa.Table(
    "dashboard_invites",
    metadata,
    # A one-time link to set an account's password (``hatchery users invite``): ``id`` is the
    # SHA-256 of the link's token.
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("account_id", sa.String(32), sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("used_at", UTCDateTime, nullable=True),
)

tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("seq", BigId, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(64), nullable=False, unique=True),
    sa.Column("account_id", sa.String(32), sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("model", sa.String(64), nullable=False),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("webhook_url", sa.String(2048), nullable=True),
    sa.Column("price_micros", sa.BigInteger, nullable=False),
    sa.Column("cost_micros", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("file_token", sa.String(64), nullable=False),
    sa.Column("output", sa.JSON, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("usage", sa.JSON, nullable=True),
    sa.Column("upstream", sa.JSON, nullable=True),
    sa.Column("attempt", sa.Integer, nullable=False, server_default="0"),
    sa.Column("lease_owner", sa.String(64), nullable=True),
    sa.Column("lease_expires_at", UTCDateTime, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=True),
    sa.Column("completed_at", UTCDateTime, nullable=True),
    # The prefix of the API key that submitted it (NULL for tasks older than migration 0006), and
    # how many price units its quote holds (price_micros / units is the unit price).
    sa.Column("api_key", sa.String(32), nullable=True),
    sa.Column("units", sa.BigInteger, nullable=False, server_default="1"),
    # The W3C traceparent of the submit's span (tracing on), which the worker's spans continue.
    sa.Column("trace_context", sa.String(64), nullable=True),
    sa.Index(None, "account_id", "seq"),
    sa.Index(None, "status", "seq"),
    sa.Index(None, "status", "lease_expires_at"),
)

task_counts = sa.Table(
    "task_counts",
    metadata,
    # How many tasks an account has of each model and type, and how many of them ended: what a
    # list's `total` reads instead of counting the tasks. Changed in the same transaction as the
    # submit and the terminal transition, after the account's balance row (which orders them).
    sa.Column("account_id", sa.String(32), sa.ForeignKey("accounts.id"), primary_key=True),
    sa.Column("model", sa.String(64), primary_key=True),
    sa.Column("type", sa.String(32), primary_key=True),
    sa.Column("total", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("completed", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("failed", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("cancelled", sa.BigInteger, nullable=False, server_default="0"),
)

task_events = sa.Table(
    "task_events",
    metadata,
    # Every status change after the submit (claimed, given back, finished, cancelled), written in
    # the transition's own transaction: what a task's event stream replays from, so a client that
    # reconnects with Last-Event-ID misses nothing. The submit itself is event 0, implied.
    sa.Column("seq", BigId, primary_key=True, autoincrement=True),
    sa.Column("task_id", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Index(None, "task_id", "seq"),
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    # An Idempotency-Key of POST /v1/generate, per account, kept 24 hours. The row is written
    # (task_id NULL: in flight) before the submit runs, and gets its task_id in the submit's own
    # transaction; a submit that fails removes it.
    sa.Column("account_id", sa.String(32), sa.ForeignKey("accounts.id"), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("task_id", sa.String(64), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index(None, "created_at"),
)

task_attempts = sa.Table(
    "task_attempts",
    metadata,
    # One row per claim of a task: who ran it, and how the attempt ended (completed, failed,
    # released at shutdown, or lapsed: its worker stopped renewing and the reaper took it back).
    # Written in the same transaction as the claim and as the guarded transition that ends it.
    sa.Column("seq", BigId, primary_key=True, autoincrement=True),
    sa.Column("task_id", sa.String(64), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("worker", sa.String(64), nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("ended_at", UTCDateTime, nullable=True),
    sa.Column("outcome", sa.String(16), nullable=True),
    sa.UniqueConstraint("task_id", "attempt"),
)

ledger = sa.Table(
    "ledger",
    metadata,
    sa.Column("seq", BigId, primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.String(32), sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("amount_micros", sa.BigInteger, nullable=False),
    sa.Column("task_id", sa.String(64), nullable=True),
    sa.Column("note", sa.String(255), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    # One charge per task, enforced by the database as well as by the guarded transition.
    sa.UniqueConstraint("task_id", "kind"),
    sa.Index(None, "account_id", "seq"),
)

usage_records = sa.Table(
    "usage_records",
    metadata,
    # What each charge was for: written in the same transaction as the ledger's charge row of the
    # task (one record per charged task, one charge per record). Units times unit price is the
    # cost charged. ``resolution`` is the size made; ``api_key`` the submitting key's prefix.
    sa.Column("seq", BigId, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(64), nullable=False, unique=True),
    sa.Column("account_id", sa.String(32), sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("task_id", sa.String(64), nullable=False, unique=True),
    sa.Column("model", sa.String(64), nullable=False),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("api_key", sa.String(32), nullable=True),
    sa.Column("units", sa.BigInteger, nullable=False),
    sa.Column("unit", sa.String(16), nullable=False),
    sa.Column("unit_price_micros", sa.BigInteger, nullable=False),
    sa.Column("cost_micros", sa.BigInteger, nullable=False),
    sa.Column("resolution", sa.String(8), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index(None, "account_id", "seq"),
    sa.Index(None, "account_id", "created_at"),
)

usage_daily = sa.Table(
    "usage_daily",
    metadata,
    # The usage records summed per account, UTC day, model, type and API key ('' for none), and
    # over all keys ('*'), changed in the record's own transaction: what a usage summary, a usage
    # list's total and an account's usage read, so that none of them scans the records.
    sa.Column("account_id", sa.String(32), sa.ForeignKey("accounts.id"), primary_key=True),
    sa.Column("day", sa.String(10), primary_key=True),  # "2026-05-08"
    sa.Column("model", sa.String(64), primary_key=True),
    sa.Column("type", sa.String(32), primary_key=True),
    sa.Column("api_key", sa.String(32), primary_key=True),
    sa.Column("units", sa.BigInteger, nullable=False),
    sa.Column("cost_micros", sa.BigInteger, nullable=False),
    sa.Column("requests", sa.BigInteger, nullable=False),
    sa.Index(None, "account_id", "api_key", "day"),  # one key's days
)

webhook_endpoints = sa.Table(
    # An account's registered receivers (the VideoGen API's registry, open to every event).
    # ``failing_since``: when its current run of failed attempts began (NULL after a success);
    # a run that lasts HATCHERY_WEBHOOK_DISABLE_AFTER disables it. Deleting one keeps the row
    # (``deleted_at``) so the delivery log still names it.
    "webhook_endpoints",
    metadata,
    sa.Column("seq", BigId, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(40), nullable=False, unique=True),
    sa.Column("account_id", sa.String(32), sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("url", sa.String(2048), nullable=False),
    sa.Column("events", sa.JSON, nullable=False),
    sa.Column("description", sa.String(1024), nullable=True),
    sa.Column("secret", sa.String(128), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("failing_since", UTCDateTime, nullable=True),
    sa.Column("disabled_at", UTCDateTime, nullable=True),
    sa.Column("disabled_reason", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("deleted_at", UTCDateTime, nullable=True),
    sa.Index(None, "account_id", "deleted_at"),
)

webhook_deliveries = sa.Table(
    # The outbox: one row a message (an event for one receiver), written in the transaction
    # of the state change it tells of. ``message_id`` is its ``webhook-id``, shared by the rows
    # of one event (one per receiver); ``target`` is what the per-receiver concurrency cap
    # counts (the endpoint, or a per-task URL's origin); ``schedule_from``: the attempts made
    # before the last redelivery request, from which the retry schedule counts again.
    "webhook_deliveries",
    metadata,
    sa.Column("seq", BigId, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(40), nullable=False, unique=True),
    sa.Column("message_id", sa.String(40), nullable=False),
    sa.Column("subject_id", sa.String(64), nullable=False),
    sa.Column("account_id", sa.String(32), sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("endpoint_id", sa.String(40), nullable=True),
    sa.Column("target", sa.String(2048), nullable=False),
    sa.Column("event", sa.String(40), nullable=False),
    sa.Column("url", sa.String(2048), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("schedule_from", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("lease_owner", sa.String(64), nullable=True),
    sa.Column("lease_expires_at", UTCDateTime, nullable=True),
    sa.Column("last_status_code", sa.Integer, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("delivered_at", UTCDateTime, nullable=True),
    sa.Column("trace_context", sa.String(64), nullable=True),  # the writer's span (tracing on)
    sa.UniqueConstraint("message_id", "target"),
    sa.Index(None, "status", "next_attempt_at"),
    sa.Index(None, "lease_expires_at"),
    sa.Index(None, "subject_id"),
    sa.Index(None, "endpoint_id", "seq"),
    sa.Index(None, "account_id", "seq"),
)

webhook_attempts = sa.Table(
    "webhook_attempts",
    metadata,
    sa.Column("seq", BigId, primary_key=True, autoincrement=True),
    sa.Column("delivery_id", sa.String(40), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("duration_ms", sa.Integer, nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("response", sa.Text, nullable=True),  # the answer's first bytes, as text
    sa.UniqueConstraint("delivery_id", "attempt"),
)

files = sa.Table(
    "files",
    metadata,
    # Every stored file: an upload, or a task's output (written in the task's completing
    # transaction). Its bytes are objects in the store (hatchery.storage) under ``object_key``
    # and the renditions' keys. It is also a job: a file in status ``processing`` is claimed by a
    # worker with a lease (like the webhook outbox), which reads the bytes, records what they are
    # and makes the thumbnail and preview; a crash leaves the lease to lapse and another takes it.
    sa.Column("seq", BigId, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(40), nullable=False, unique=True),
    sa.Column("account_id", sa.String(32), sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # uploading, processing, ready, failed
    sa.Column("type", sa.String(8), nullable=True),  # IMAGE, VIDEO, AUDIO; NULL until known
    sa.Column("requested_type", sa.String(8), nullable=True),  # what the uploader said
    sa.Column("scope", sa.String(16), nullable=False),  # GLOBAL, TEMPORARY
    sa.Column("display_name", sa.String(512), nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("content_type", sa.String(128), nullable=True),
    sa.Column("bytes", sa.BigInteger, nullable=True),
    sa.Column("width", sa.Integer, nullable=True),
    sa.Column("height", sa.Integer, nullable=True),
    sa.Column("duration_seconds", sa.Float, nullable=True),
    sa.Column("object_key", sa.String(512), nullable=True),  # the original, best quality
    # {"thumbnail"|"preview"|"hls": {"status", "key", "content_type", "width", "height", "bytes"}}
    sa.Column("renditions", sa.JSON, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("task_id", sa.String(64), nullable=True),
    sa.Column("tool_type", sa.String(40), nullable=True),
    sa.Column("playback_id", sa.String(40), nullable=True, unique=True),  # public preview on
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("archived_at", UTCDateTime, nullable=True),
    # uploading: when the upload URL expires; TEMPORARY: when the janitor may remove it
    sa.Column("expires_at", UTCDateTime, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime, nullable=True),
    sa.Column("lease_owner", sa.String(64), nullable=True),
    sa.Column("lease_expires_at", UTCDateTime, nullable=True),
    sa.Index(None, "account_id", "updated_at"),
    sa.Index(None, "status", "next_attempt_at"),
    sa.Index(None, "expires_at"),
    sa.Index(None, "task_id"),
)

model_routes = sa.Table(
    # The routes of each model and tool: providers in order (each enabled or not), prices, the
    # synchronous flag (``spec``: ``domain.routes.Route``'s JSON). Seeded from the catalog file at
    # start; ``source`` is "catalog" until an admin changes it ("admin"), and a catalog row is
    # brought up to date with the file at each start. ``revision`` grows on every change: the
    # sum of all is what each process compares to know that it must read them again.
    "model_routes",
    metadata,
    sa.Column("kind", sa.String(8), primary_key=True),  # "model" or "tool"
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("revision", sa.BigInteger, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("updated_by", sa.String(320), nullable=True),
)

audit_log = sa.Table(
    # Every operator action: who (an admin account by key or session, or the CLI on the host),
    # what (``action`` on ``target``), and the record before and after (JSON, secrets left out).
    "audit_log",
    metadata,
    sa.Column("seq", BigId, primary_key=True, autoincrement=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(320), nullable=False),  # an email, or "cli:<user>@<host>"
    sa.Column("actor_id", sa.String(32), nullable=True),  # the admin account's id
    sa.Column("via", sa.String(40), nullable=False),  # "key:<prefix>", "session", "cli"
    sa.Column("action", sa.String(40), nullable=False),  # "account.credit", "route.update"
    sa.Column("target", sa.String(128), nullable=False),  # "account:<id>", "model:<name>"
    sa.Column("before", sa.JSON, nullable=True),
    sa.Column("after", sa.JSON, nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Index(None, "target", "seq"),
)

workers = sa.Table(
    # One row a running worker process, written every heartbeat: what it runs and how its
    # providers fare (``providers``: breaker state, calls and failures, latency, over the last
    # minutes). A row whose heartbeat is old is a worker that died; a worker that stops removes
    # its own.
    "workers",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("heartbeat_at", UTCDateTime, nullable=False),
    sa.Column("concurrency", sa.Integer, nullable=False),
    sa.Column("running", sa.Integer, nullable=False),
    sa.Column("waiting", sa.Integer, nullable=False),
    sa.Column("providers", sa.JSON, nullable=False),
)


# What migrations make by hand and the definitions above leave out: file search's full-text
# index (SQLite's FTS5 table and its shadow tables; PostgreSQL's expression index).
FULL_TEXT = ("files_search", "ix_files_search")


def defined_here(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """For Alembic's comparison (``include_object``): False for the full-text index's objects."""
    return not (name and name.startswith(FULL_TEXT))
