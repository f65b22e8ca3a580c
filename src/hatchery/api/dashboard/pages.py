"""What every dashboard page shares: the templates (Jinja2, autoescaped), the signed-in
account a page is for, forms and their CSRF check, and the headers each page goes out with.

A page is a function of the request: it takes :func:`account_page` (the session, or the
redirect to the sign-in page that ``api.dashboard.errors`` makes of ``SignInRequired``), reads
through the store or a service, and returns :func:`render`. A change is a ``POST`` of a form
(``application/x-www-form-urlencoded``) read by :func:`change_form`, which refuses it without the
session's CSRF token, and answers with a redirect (post/redirect/get).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse

from hatchery.api import session
from hatchery.api.context import services_of
from hatchery.api.generate import read_body
from hatchery.api.session import SignedIn
from hatchery.domain import keys, passwords
from hatchery.domain.money import format_balance, format_cost
from hatchery.domain.tasks import Task, TaskType
from hatchery.errors import BadRequest, Unauthorized
from hatchery.services import Services

PREFIX = "/dashboard"
HERE = Path(__file__).parent
STATIC = HERE / "static"
MAX_FORM_BYTES = 64 * 1024
MAX_MODEL = 64  # the longest model or tool name (tasks.model, usage_records.model)

# What a page may load and from where: its own scripts and styles only (no inline script); media
# and uploads may be on the object store's origin (presigned URLs), so those are open.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src * data: blob:; "
    "media-src * data: blob:; connect-src *; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'; object-src 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

# The pages the navigation lists: (path under PREFIX, label).
NAVIGATION = (
    ("", "Overview"),
    ("/playground", "Playground"),
    ("/tasks", "Tasks"),
    ("/files", "Files"),
    ("/keys", "API keys"),
    ("/webhooks", "Webhooks"),
    ("/usage", "Usage"),
)
ADMIN_NAVIGATION = (("/admin", "Admin"),)  # the operator's pages: admins only


def navigation_of(signed: SignedIn | None) -> tuple[tuple[str, str], ...]:
    """The pages the navigation lists for the session: the admin section for admins only."""
    return NAVIGATION + ADMIN_NAVIGATION if signed and signed.account.is_admin else NAVIGATION


class SignInRequired(Unauthorized):
    """A page asked for without a live session: the sign-in page, then back to ``next``."""

    def __init__(self, next_path: str) -> None:
        super().__init__("Sign in to see this page")
        self.next_path = next_path


def when(value: datetime | None) -> str:
    """A time as the pages show it: ``2026-12-04 21:07 UTC`` (empty for none)."""
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else ""


def kind_label(task: Task) -> str:
    """What the pages call a task: a generation (the Egg API's) or a tool execution."""
    return "Tool execution" if task.type is TaskType.TOOL else "Generation"


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    env.filters["dollars"] = format_balance
    env.filters["cost"] = format_cost
    env.filters["kind"] = kind_label
    env.globals["prefix"] = PREFIX
    env.globals["navigation"] = NAVIGATION
    env.globals["password_min"] = passwords.MIN_LENGTH
    env.globals["key_prefix_length"] = keys.PREFIX_LENGTH
    return env


TEMPLATES = _environment()


def render(
    request: Request,
    template: str,
    signed: SignedIn | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """The page ``template`` with ``context``, for the session ``signed`` (its account and CSRF
    token are in every page: the navigation and each form use them)."""
    page = TEMPLATES.get_template(template).render(
        request=request,
        path=request.url.path,
        notice=notice_of(request),
        account=signed.account if signed else None,
        navigation=navigation_of(signed),
        csrf_token=signed.csrf_token if signed else context.pop("form_token", ""),
        **context,
    )
    return HTMLResponse(page, status_code=status_code, headers=PAGE_HEADERS)


def notice_of(request: Request) -> str | None:
    """The ``?notice=`` a change's redirect carries, to show on the page: only when the browser
    came from one of our own pages (``Sec-Fetch-Site: same-origin``, or a client that does not
    say), so that a link from elsewhere cannot put its words in the dashboard's mouth."""
    if request.headers.get("sec-fetch-site", "same-origin") != "same-origin":
        return None
    return request.query_params.get("notice") or None


async def account_page(request: Request) -> tuple[Services, SignedIn]:
    """The services and the session of a page; SignInRequired without one."""
    services = services_of(request)
    signed = await session.signed_in(services, request)
    if signed is None:
        raise SignInRequired(
            request.url.path + (f"?{request.url.query}" if request.url.query else "")
        )
    return services, signed


async def read_form(request: Request) -> dict[str, str]:
    """A urlencoded form's fields (the last of a repeated one); BadRequest for anything else,
    PayloadTooLarge past MAX_FORM_BYTES (refused as it arrives, as the API's bodies are)."""
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    body = await read_body(request, MAX_FORM_BYTES)
    if not kind and not body:
        return {}  # a form with no fields at all
    if kind != "application/x-www-form-urlencoded":
        raise BadRequest("Send the form as application/x-www-form-urlencoded")
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        raise BadRequest("The form is not UTF-8") from None


async def change_form(request: Request) -> tuple[Services, SignedIn, dict[str, str]]:
    """The services, the session and the fields of a form that changes something, once its CSRF
    token is the session's (Forbidden otherwise)."""
    services, signed = await account_page(request)
    fields = await read_form(request)
    session.check_csrf(signed.csrf_token, fields.get(session.CSRF_FIELD))
    return services, signed, fields


def link(path: str, **query: str) -> str:
    """The dashboard page ``path`` (under PREFIX) with the non-empty fields of ``query``: the
    link of a list's filters and page."""
    tail = urlencode({name: value for name, value in query.items() if value})
    return PREFIX + path + (f"?{tail}" if tail else "")


def redirect(path: str, **query: str) -> RedirectResponse:
    """303 to the dashboard page ``path`` (under PREFIX), with ``query`` (a notice to show)."""
    tail = "&".join(f"{k}={quote(v)}" for k, v in query.items())
    return RedirectResponse(PREFIX + path + (f"?{tail}" if tail else ""), status_code=303)


def choice(fields: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    """A field that must be one of ``allowed`` (``default`` when empty); BadRequest otherwise."""
    value = fields.get(name) or default
    if value not in allowed:
        raise BadRequest(f"{name} must be one of {', '.join(allowed)}")
    return value
