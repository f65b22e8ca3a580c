"""Driving the dashboard over HTTP in tests: an account with a password, a signed-in client
that carries the session's cookie and puts the CSRF token into each form it posts."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from tests.helpers import ServerProcess

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
BODY_CSRF = re.compile(r'<body data-csrf="([^"]*)"')


def set_password(db_url: str, email: str, password: str = PASSWORD) -> None:
    """``hatchery users set-password``, in this process."""
    from hatchery import admin
    from hatchery.store.db import Database

    async def run() -> None:
        db = Database.connect(db_url, pool_size=1)
        try:
            await admin.set_password(db, email, password)
        finally:
            await db.dispose()

    asyncio.run(run())


def csrf_of(html: str) -> str:
    found = CSRF.search(html) or BODY_CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


@dataclass
class Dashboard:
    """A browser's session, over httpx: ``get`` a page, ``post`` a form (with the CSRF token of
    the last page seen, unless ``csrf`` says otherwise)."""

    http: httpx.Client
    csrf: str = ""

    def get(self, path: str, **params: str) -> httpx.Response:
        response = self.http.get(path, params=params) if params else self.http.get(path)
        if "text/html" in response.headers.get("content-type", ""):
            found = BODY_CSRF.search(response.text)
            if found and found.group(1):
                self.csrf = found.group(1)
        return response

    def post(self, path: str, data: dict[str, str], *, csrf: str | None = None) -> httpx.Response:
        fields = {"csrf_token": self.csrf if csrf is None else csrf, **data}
        if csrf == "":
            del fields["csrf_token"]
        return self.http.post(path, data=fields)

    def api(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        """A call to the API with the session, as the dashboard's scripts make it."""
        headers = {"X-CSRF-Token": self.csrf}
        return self.http.request(method, path, headers=headers, **kwargs)  # type: ignore[arg-type]

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Dashboard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def sign_in(server: ServerProcess, email: str, password: str = PASSWORD) -> Dashboard:
    """A client signed in as ``email`` (whose password must be set)."""
    http = httpx.Client(base_url=server.url, timeout=30)
    page = http.get("/dashboard/sign-in")
    response = http.post(
        "/dashboard/sign-in",
        data={"csrf_token": csrf_of(page.text), "email": email, "password": password},
    )
    assert response.status_code == 303, response.text
    dash = Dashboard(http)
    assert dash.get("/dashboard").status_code == 200
    return dash


def new_signed_in_account(
    server: ServerProcess, email: str, balance: str = "10.00", *, admin: bool = False
) -> Dashboard:
    """A new account with a password, signed in (``admin``: with the admin role, as
    ``hatchery users grant-admin`` gives it)."""
    server.new_account(email, balance, admin=admin)
    set_password(server.db_url, email)
    return sign_in(server, email)


SignIn = Callable[[str], Dashboard]  # the ``sign_in`` fixture (tests/conftest.py)
