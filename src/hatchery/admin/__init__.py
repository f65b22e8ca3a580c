"""Operator actions, for the ``hatchery`` admin commands and the admin API alike: accounts, keys
and balances (``admin.accounts``), model routes (``admin.routes``), the read-only views of the
service's health (``admin.health``), each action recorded in the audit log (``admin.audit``)."""

from hatchery.admin.accounts import (
    INVITE_PATH,
    INVITE_VALID_FOR,
    LOCAL_EMAIL,
    STARTING_BALANCE,
    Bootstrap,
    add_balance,
    adjust_balance,
    bootstrap,
    check_flags,
    create_key,
    create_user,
    invite,
    parse_duration,
    revoke_key,
    rotate_webhook_secret,
    set_flag,
    set_flags,
    set_password,
    set_rate_limit,
    set_role,
    set_status,
)
from hatchery.admin.audit import Actor

__all__ = [
    "INVITE_PATH",
    "INVITE_VALID_FOR",
    "LOCAL_EMAIL",
    "STARTING_BALANCE",
    "Actor",
    "Bootstrap",
    "add_balance",
    "adjust_balance",
    "bootstrap",
    "check_flags",
    "create_key",
    "create_user",
    "invite",
    "parse_duration",
    "revoke_key",
    "rotate_webhook_secret",
    "set_flag",
    "set_flags",
    "set_password",
    "set_rate_limit",
    "set_role",
    "set_status",
]
