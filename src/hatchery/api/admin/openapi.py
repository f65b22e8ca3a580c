"""The admin API's part of the OpenAPI document: its operations under ``/admin/v1`` (tag
*Admin: ...*), their bodies and answers from the schemas the routes answer through
(``api.admin.schemas``), their errors in the Egg API's envelope (``api.openapi.error``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from hatchery.api.admin import schemas as s
from hatchery.api.admin.routes import MAX_LIMIT, PREFIX
from hatchery.api.openapi import JSON, Doc, _headers, _query, error, v1_errors
from hatchery.settings import Settings

TAGS = (
    ("Admin: Accounts", "Admins only: accounts, balances (credits and debits), API keys."),
    ("Admin: Routes", "Admins only: each model's and tool's providers, prices and flags."),
    ("Admin: Health", "Admins only: providers, the queue, workers and the webhook outbox."),
    ("Admin: Audit", "Admins only: every operator action, who did it, before and after."),
)
SCHEMA_PREFIX = "Admin"
_REF = "#/components/schemas/" + SCHEMA_PREFIX + "{model}"


@dataclass(frozen=True)
class Op:
    method: str
    path: str
    operation_id: str
    tag: str
    summary: str
    answer: type[BaseModel] | None  # None: no body
    listed: bool = False  # the answer is a page of ``answer``
    body: type[BaseModel] | None = None
    query: tuple[Doc, ...] = ()
    errors: dict[str, dict[str, str]] = field(default_factory=dict)
    status: str = "200"


_LIMIT = _query(
    "limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}, "Items per page (50)."
)
_BEFORE = _query("before", {"type": "string"}, "A page's `next`: the page after it.")
_NO_ACCOUNT = {"404": {"NOT_FOUND": "no account with this id"}}
_BAD_QUERY = {"400": {"BAD_REQUEST": "a query parameter out of its range, or a bad `before`"}}
_BAD_BODY = "the body is not JSON, lacks a field, or has one of the wrong type or unknown"
_NO_ROUTE = {"NOT_FOUND": "no model or tool of that name (or the kind is not model or tool)"}

A, R, H, L = (tag for tag, _ in TAGS)

OPS = (
    Op(
        "get",
        "/accounts",
        "adminListAccounts",
        A,
        "List and search accounts, by email",
        s.AccountOut,
        listed=True,
        query=(
            _query("query", {"type": "string", "maxLength": 320}, "Part of an email or an id."),
            _query("status", {"enum": ["active", "suspended"]}, "Only these."),
            _query("role", {"enum": ["user", "admin"]}, "Only these."),
            _query("after", {"type": "string"}, "A page's `next`: the page after it."),
            _LIMIT,
        ),
        errors=_BAD_QUERY,
    ),
    Op(
        "post",
        "/accounts",
        "adminCreateAccount",
        A,
        "Create an account",
        s.AccountDetailOut,
        body=s.AccountIn,
        errors={"400": {"BAD_REQUEST": _BAD_BODY + "; not an email; the email is taken"}},
        status="201",
    ),
    Op(
        "get",
        "/accounts/{account_id}",
        "adminGetAccount",
        A,
        "An account, its latest ledger entries and its keys",
        s.AccountDetailOut,
        errors=_NO_ACCOUNT,
    ),
    Op(
        "patch",
        "/accounts/{account_id}",
        "adminUpdateAccount",
        A,
        "Set an account's rate limit or flags",
        s.AccountDetailOut,
        body=s.AccountPatchIn,
        errors={
            "400": {
                "BAD_REQUEST": _BAD_BODY + "; a bad limit; an unknown flag; neither given "
                "(nothing to change)"
            }
        }
        | _NO_ACCOUNT,
    ),
    Op(
        "post",
        "/accounts/{account_id}/suspend",
        "adminSuspendAccount",
        A,
        "Suspend an account: its keys are refused, its dashboard sessions end",
        s.AccountDetailOut,
        errors=_NO_ACCOUNT,
    ),
    Op(
        "post",
        "/accounts/{account_id}/activate",
        "adminActivateAccount",
        A,
        "Activate a suspended account",
        s.AccountDetailOut,
        errors=_NO_ACCOUNT,
    ),
    Op(
        "post",
        "/accounts/{account_id}/balance",
        "adminAdjustBalance",
        A,
        "Credit or debit an account, with a reason (a ledger entry)",
        s.BalanceOut,
        body=s.BalanceIn,
        errors={
            "400": {"BAD_REQUEST": _BAD_BODY + "; a zero amount; a debit beyond what is available"}
        }
        | _NO_ACCOUNT,
    ),
    Op(
        "get",
        "/accounts/{account_id}/ledger",
        "adminAccountLedger",
        A,
        "An account's ledger, newest first",
        s.LedgerEntryOut,
        listed=True,
        query=(_BEFORE, _LIMIT),
        errors=_BAD_QUERY | _NO_ACCOUNT,
    ),
    Op(
        "get",
        "/keys",
        "adminListKeys",
        A,
        "API keys of every account (or one), newest first",
        s.KeyOut,
        listed=True,
        query=(
            _query("account_id", {"type": "string"}, "One account's only."),
            _query("status", {"enum": ["active"]}, "Only keys not revoked."),
            _BEFORE,
            _LIMIT,
        ),
        errors=_BAD_QUERY | {"404": {"NOT_FOUND": "account_id is not an account id"}},
    ),
    Op(
        "post",
        "/keys/{prefix}/revoke",
        "adminRevokeKey",
        A,
        "Revoke any account's key, by its prefix",
        s.KeyOut,
        errors={
            "400": {"BAD_REQUEST": "shorter than a key's prefix (hk_ and 10 characters)"},
            "404": {"NOT_FOUND": "no active key with this prefix"},
        },
    ),
    Op("get", "/routes", "adminListRoutes", R, "Every model's and tool's route", s.RouteOut, True),
    Op(
        "get",
        "/routes/{kind}/{name}",
        "adminGetRoute",
        R,
        "A model's or tool's route",
        s.RouteOut,
        errors={"404": _NO_ROUTE},
    ),
    Op(
        "patch",
        "/routes/{kind}/{name}",
        "adminUpdateRoute",
        R,
        "Change a route: providers in order and enabled, prices, synchronous",
        s.RouteOut,
        body=s.RoutePatchIn,
        errors={
            "400": {
                "BAD_REQUEST": _BAD_BODY,
                "VALIDATION_ERROR": "the change would break the route, and the message says "
                "how: a provider not configured on this server or that does not make it, no "
                "provider left enabled, a provider named twice, a price rule on a value prices "
                "cannot depend on, `synchronous` on a tool, nothing to change",
            },
            "404": _NO_ROUTE,
            "409": {"CONFLICT": "`revision` was given and the route has changed since"},
        },
    ),
    Op(
        "post",
        "/routes/{kind}/{name}/reset",
        "adminResetRoute",
        R,
        "Put a route back as the catalog file has it",
        s.RouteOut,
        errors={"404": {"NOT_FOUND": "no such route, or the catalog file has none to go back to"}},
    ),
    Op("get", "/providers", "adminListProviders", H, "Providers' health", s.ProviderOut, True),
    Op("get", "/queue", "adminQueue", H, "The queue and the workers", s.QueueOut),
    Op("get", "/outbox", "adminOutbox", H, "The webhook outbox", s.OutboxOut),
    Op(
        "get",
        "/audit",
        "adminListAudit",
        L,
        "The audit log, newest first",
        s.AuditEntryOut,
        listed=True,
        query=(
            _query("target", {"type": "string"}, "`account:ID`, `model:NAME`, or `model:`."),
            _query("actor", {"type": "string"}, "An admin's email, or `cli:USER@HOST`."),
            _query("action", {"type": "string"}, "`account.credit`, or `route.` for all."),
            _BEFORE,
            _LIMIT,
        ),
        errors=_BAD_QUERY,
    ),
)

DESCRIPTIONS = {
    "adminUpdateRoute": "Any of `providers` (all of them, in the order they are tried, each "
    "enabled or not), `unit_price_micros`, `price_rules`, `synchronous` (models only); "
    "`reason` is kept in the audit log. The change is checked against the providers this "
    "server has, written with its audit entry, and applied by every server within "
    "`HATCHERY_ROUTES_REFRESH` seconds (at once on PostgreSQL), without a restart. A task "
    "already submitted keeps its quoted price; it is run by the route as it is when it runs.",
    "adminAdjustBalance": "A positive `amount_micros` credits, a negative one debits; the "
    "ledger entry carries the reason. A debit may not take what tasks in flight hold.",
    "adminListProviders": "Each configured provider across the live workers (from their "
    "heartbeats): breaker state per worker, attempts over the last 5 minutes by outcome, the "
    "error rate, latency.",
    "adminQueue": "Tasks waiting and running by status and model, the oldest pending task's "
    "age, and every worker with its last heartbeat and the tasks it holds.",
    "adminOutbox": "Webhook messages not yet delivered, the oldest due, and the registered "
    "endpoints failing or disabled.",
}


def _schemas() -> tuple[dict[tuple[type[BaseModel], JsonSchemaMode], Doc], Doc]:
    """Each model's schema reference, per mode, and the component schemas they refer to."""
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = []
    for op in OPS:
        if op.answer:
            wanted.append((op.answer, "serialization"))
        if op.body:
            wanted.append((op.body, "validation"))
    refs, top = models_json_schema(wanted, ref_template=_REF)
    components = {SCHEMA_PREFIX + name: schema for name, schema in top.get("$defs", {}).items()}
    return {key: ref for key, ref in refs.items()}, components  # type: ignore[misc]


def _envelope(data: Doc) -> Doc:
    return {
        "type": "object",
        "required": ["data", "error"],
        "properties": {"data": data, "error": {"type": "null"}},
    }


def _answer(op: Op, ref: Doc) -> Doc:
    data = (
        {
            "type": "object",
            "required": ["items", "next"],
            "properties": {
                "items": {"type": "array", "items": ref},
                "next": {
                    "type": ["string", "null"],
                    "description": "The next page's `after` (accounts) or `before`; null on the "
                    "last page.",
                },
            },
        }
        if op.listed
        else ref
    )
    return {
        "description": "The page." if op.listed else "Done.",
        "headers": _headers(),
        "content": {JSON: {"schema": _envelope(data)}},
    }


def _path_parameters(path: str) -> list[Doc]:
    described = {
        "account_id": ("An account's id (`acct_...`).", {"type": "string"}),
        "prefix": ("A key's prefix: `hk_` and 10 characters.", {"type": "string"}),
        "kind": ("model or tool", {"enum": ["model", "tool"]}),
        "name": ("The model's or tool's name.", {"type": "string"}),
    }
    return [
        {"name": name, "in": "path", "required": True, "schema": schema, "description": text}
        for name, (text, schema) in described.items()
        if "{" + name + "}" in path
    ]


def _body_errors(settings: Settings) -> dict[str, Doc]:
    """What reading a body can answer (``api.generate.read_body``)."""
    return {
        "408": error(
            {"BAD_REQUEST": f"the body did not arrive within {settings.body_timeout:g} s"}
        ),
        "413": error({"BAD_REQUEST": f"the body is over {settings.max_body_bytes} bytes"}),
    }


def _operation(
    op: Op, refs: dict[tuple[type[BaseModel], JsonSchemaMode], Doc], settings: Settings
) -> Doc:
    responses: Doc = {}
    if op.answer:
        responses[op.status] = _answer(op, refs[(op.answer, "serialization")])
    for status, causes in op.errors.items():
        responses[status] = error(causes)
    if op.body:
        responses |= _body_errors(settings)
    responses |= v1_errors(forbidden="the key's account is not an admin, or is suspended")
    operation: Doc = {
        "operationId": op.operation_id,
        "tags": [op.tag],
        "summary": op.summary,
        "description": DESCRIPTIONS.get(op.operation_id, op.summary + "."),
        "security": [{"bearerAuth": []}, {"dashboardSession": []}],
        "parameters": _path_parameters(op.path) + list(op.query),
        "responses": dict(sorted(responses.items())),
    }
    if op.body:
        schema = refs[(op.body, "validation")]
        operation["requestBody"] = {"required": True, "content": {JSON: {"schema": schema}}}
    return operation


def document(settings: Settings) -> Doc:
    """``paths`` and ``components.schemas`` of the admin API."""
    refs, components = _schemas()
    paths: dict[str, Doc] = {}
    for op in OPS:
        paths.setdefault(PREFIX + op.path, {})[op.method] = _operation(op, refs, settings)
    return {"paths": paths, "components": {"schemas": components}}
