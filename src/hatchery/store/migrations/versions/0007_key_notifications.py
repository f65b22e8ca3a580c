"""PostgreSQL: announce changes to API keys and to accounts' access with NOTIFY

Every process keeps the API keys it has seen in memory (``hatchery.store.keycache``). These
triggers tell them when to forget one: a key updated or deleted (revoked, expired) announces
``key:<prefix>`` on ``hatchery_keys``; an account whose status or rate limit changes announces
``account:<id>``. Balances change on every submit and completion and announce nothing (the cache
never holds money). The channel name is ``hatchery.store.notify.PG_CHANNELS``'s, written out here.
SQLite has no NOTIFY: there a key lives in memory for ``HATCHERY_KEY_CACHE_SECONDS`` at most, and
this revision changes nothing.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE FUNCTION hatchery_notify_key() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN PERFORM pg_notify('hatchery_keys', 'key:' || OLD.prefix); RETURN NULL; END $$"
    )
    op.execute(
        "CREATE FUNCTION hatchery_notify_account() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN PERFORM pg_notify('hatchery_keys', 'account:' || NEW.id); RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER api_keys_notify AFTER UPDATE OR DELETE ON api_keys "
        "FOR EACH ROW EXECUTE FUNCTION hatchery_notify_key()"
    )
    op.execute(
        "CREATE TRIGGER accounts_notify_access AFTER UPDATE OF status, rate_limit ON accounts "
        "FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status "
        "OR OLD.rate_limit IS DISTINCT FROM NEW.rate_limit) "
        "EXECUTE FUNCTION hatchery_notify_account()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS accounts_notify_access ON accounts")
    op.execute("DROP TRIGGER IF EXISTS api_keys_notify ON api_keys")
    op.execute("DROP FUNCTION IF EXISTS hatchery_notify_account()")
    op.execute("DROP FUNCTION IF EXISTS hatchery_notify_key()")
