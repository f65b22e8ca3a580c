"""The admin API's bodies: what it takes (``*In``) and what it answers, as Pydantic models. The
answers are made through these models too, so the OpenAPI document (``api.admin.openapi``)
describes exactly what is sent."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hatchery.domain.money import MAX_BALANCE_MICROS, MAX_UNIT_PRICE_MICROS
from hatchery.domain.routes import MAX_RULES
from hatchery.errors import BadRequest

Money = int  # micro-dollars: 1_000_000 is $1.00
M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def parse(model: type[M], body: bytes) -> M:
    """The body as ``model``, or BadRequest naming each field that is wrong and why."""
    try:
        return model.model_validate_json(body or b"{}")
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in error['loc']) or 'body'}: {error['msg']}"
            for error in exc.errors()
        ]
        raise BadRequest(f"Invalid {model.__name__} body: {'; '.join(problems)}") from None


# -- accounts


class AccountIn(Strict):
    email: str = Field(max_length=320, examples=["ada@example.com"])
    balance_micros: Money = Field(
        0, ge=0, le=MAX_BALANCE_MICROS, description="The starting balance."
    )


class AccountPatchIn(Strict):
    rate_limit: str | None = Field(
        None,
        description="Its own limit per API key (`10/second;500/hour`), `off`, or `default` "
        "for the server's (HATCHERY_RATE_LIMIT).",
    )
    flags: list[str] | None = Field(None, description="Exactly these flags from now on.")


class BalanceIn(Strict):
    amount_micros: Money = Field(
        ge=-MAX_BALANCE_MICROS,
        le=MAX_BALANCE_MICROS,
        description="Positive to credit, negative to debit. A debit cannot take what tasks in "
        "flight hold.",
        examples=[5_000_000, -250_000],
    )
    reason: str = Field(min_length=1, max_length=255, description="Kept in the ledger.")


class AccountOut(BaseModel):
    id: str
    email: str
    status: Literal["active", "suspended"]
    role: Literal["user", "admin"]
    balance_micros: Money
    reserved_micros: Money = Field(description="Held by tasks in flight.")
    available_micros: Money
    rate_limit: str | None = Field(description="None: the server's default.")
    flags: list[str]
    created_at: datetime | None = None
    active_keys: int | None = None


class LedgerEntryOut(BaseModel):
    seq: int
    kind: Literal["credit", "debit", "charge"]
    amount_micros: Money = Field(description="What it added to the balance (negative: took).")
    task_id: str | None
    note: str | None
    created_at: datetime


class KeyOut(BaseModel):
    prefix: str
    name: str | None
    account_id: str
    email: str
    status: Literal["active", "revoked", "expired"]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class AccountDetailOut(AccountOut):
    ledger_total_micros: Money = Field(
        description="The sum of the account's ledger: equal to the balance."
    )
    ledger: list[LedgerEntryOut] = Field(description="The latest entries, newest first.")
    keys: list[KeyOut]


class BalanceOut(BaseModel):
    account: AccountOut
    entry: LedgerEntryOut


# -- routes


class ProviderRouteIO(Strict):
    name: str = Field(examples=["fal"])
    enabled: bool = Field(
        True, description="In a change: left out, as it was (a provider new to the route: true)."
    )
    upstream: str | None = Field(
        None,
        description="What the provider runs for it (a vendor model, a workflow file); null: "
        "the provider's default. In a change: left out, as it was.",
    )


class PriceRuleIO(Strict):
    when: dict[str, str | int] = Field(
        description="Request values that must all hold: resolution, aspect_ratio, duration, "
        "provider (the first provider asked).",
        examples=[{"resolution": "4k"}],
    )
    unit_price_micros: Money = Field(ge=0, le=MAX_UNIT_PRICE_MICROS)


class RoutePatchIn(Strict):
    providers: list[ProviderRouteIO] | None = Field(
        None, description="All of them, in the order they are tried."
    )
    unit_price_micros: Money | None = Field(None, ge=0, le=MAX_UNIT_PRICE_MICROS)
    price_rules: list[PriceRuleIO] | None = Field(None, max_length=MAX_RULES)
    synchronous: bool | None = Field(None, description="Models only.")
    reason: str | None = Field(None, max_length=1000, description="Kept in the audit log.")
    revision: int | None = Field(
        None,
        ge=0,
        description="The route's revision as you read it: the change is refused (409) if the "
        "route has changed since. Left out, the change is made to the route as it is.",
    )


class RouteOut(BaseModel):
    kind: Literal["model", "tool"]
    name: str
    type: Literal["image", "video", "tool"]
    unit: str = Field(description="What one price unit is: image, second, output, character.")
    unit_price_micros: Money
    providers: list[ProviderRouteIO]
    price_rules: list[PriceRuleIO]
    synchronous: bool
    source: Literal["catalog", "admin"] = Field(
        description="catalog: as the catalog file has it (and follows the file); admin: "
        "changed by an operator."
    )
    revision: int
    updated_at: datetime
    updated_by: str | None
    running: list[str] = Field(
        description="The providers the answering server runs it by now, in order."
    )


# -- the audit log


class AuditEntryOut(BaseModel):
    seq: int
    at: datetime
    actor: str = Field(description="The admin's email, or cli:<user>@<host>.")
    actor_id: str | None
    via: str = Field(description="key:<prefix>, session or cli.")
    action: str = Field(examples=["account.credit", "route.update"])
    target: str = Field(examples=["account:acct_0123", "model:flux-schnell"])
    before: Any
    after: Any
    reason: str | None


# -- health


class ProviderOut(BaseModel):
    name: str
    models: list[str] = Field(description="The models and tools whose routes list it.")
    breakers: dict[str, str | None] = Field(description="Each live worker's breaker state.")
    open_breakers: int
    completed: int
    failed: int
    refused: int
    skipped: int
    error_rate: float | None = Field(description="Failed of completed and failed, 5 minutes.")
    p50_ms: int | None
    p95_ms: int | None


class WorkerOut(BaseModel):
    id: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    seconds_since_heartbeat: float
    alive: bool
    concurrency: int
    running: int
    waiting: int = Field(description="Of those running, how many wait on an upstream job.")
    tasks_leased: int = Field(description="Tasks whose lease it holds, from the queue.")
    providers: dict[str, Any]


class QueueRowOut(BaseModel):
    status: str
    model: str
    type: str
    tasks: int


class QueueOut(BaseModel):
    by_status: dict[str, int]
    by_model: list[QueueRowOut]
    oldest_pending_at: datetime | None
    oldest_pending_seconds: float | None
    workers: list[WorkerOut]


class FailingEndpointOut(BaseModel):
    id: str
    account_id: str
    email: str
    url: str
    status: str
    failing_since: datetime | None
    disabled_at: datetime | None
    disabled_reason: str | None
    pending: int


class OutboxOut(BaseModel):
    pending: int = Field(description="Messages not yet delivered.")
    due: int = Field(description="Of those, due now.")
    sending: int
    oldest_due_at: datetime | None
    oldest_due_seconds: float
    failing_endpoints: list[FailingEndpointOut]
