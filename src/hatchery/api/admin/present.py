"""The admin API's answers, made through its schemas (``api.admin.schemas``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hatchery.api.admin import schemas as s
from hatchery.domain.catalog import Catalog
from hatchery.store import accounts
from hatchery.store.audit import Entry
from hatchery.store.db import utcnow
from hatchery.store.operator import AccountRow, KeyRow, LedgerEntry
from hatchery.store.routes import StoredRoute


def dump(model: Any) -> Any:
    """A schema's JSON (datetimes as ISO 8601 text)."""
    return model.model_dump(mode="json")


def account(
    found: accounts.Account, created_at: datetime | None = None, keys: int | None = None
) -> s.AccountOut:
    return s.AccountOut(
        id=found.id,
        email=found.email,
        status=found.status,  # type: ignore[arg-type]
        role=found.role,  # type: ignore[arg-type]
        balance_micros=found.balance_micros,
        reserved_micros=found.reserved_micros,
        available_micros=found.available_micros,
        rate_limit=found.rate_limit,
        flags=sorted(found.flags),
        created_at=created_at,
        active_keys=keys,
    )


def account_row(row: AccountRow) -> s.AccountOut:
    return account(row.account, row.created_at, row.keys)


def ledger_entry(entry: LedgerEntry) -> s.LedgerEntryOut:
    return s.LedgerEntryOut(
        seq=entry.seq,
        kind=entry.kind,  # type: ignore[arg-type]
        amount_micros=entry.amount_micros,
        task_id=entry.task_id,
        note=entry.note,
        created_at=entry.created_at,
    )


def key(row: KeyRow) -> s.KeyOut:
    if row.revoked_at is not None:
        status = "revoked"
    elif row.expires_at is not None and row.expires_at <= utcnow():
        status = "expired"
    else:
        status = "active"
    return s.KeyOut(status=status, **row.__dict__)  # type: ignore[arg-type]


def route(stored: StoredRoute, catalog: Catalog) -> s.RouteOut:
    r = stored.route
    running = (catalog.tools if r.kind == "tool" else catalog.models).get(r.name)
    return s.RouteOut(
        kind=r.kind,
        name=r.name,
        type=r.to_json()["type"],
        unit=r.unit,
        unit_price_micros=r.unit_price_micros,
        providers=[
            s.ProviderRouteIO(name=p.name, enabled=p.enabled, upstream=p.upstream)
            for p in r.providers
        ],
        price_rules=[
            s.PriceRuleIO(when=dict(rule.when), unit_price_micros=rule.unit_price_micros)
            for rule in r.price_rules
        ],
        synchronous=r.synchronous,
        source=stored.source,  # type: ignore[arg-type]
        revision=stored.revision,
        updated_at=stored.updated_at,
        updated_by=stored.updated_by,
        running=list(running.providers) if running else [],
    )


def audit_entry(entry: Entry) -> s.AuditEntryOut:
    return s.AuditEntryOut(**entry.__dict__)
