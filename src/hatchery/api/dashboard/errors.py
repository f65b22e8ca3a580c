"""The dashboard's errors: every domain error on a ``/dashboard`` path becomes a page here, once.

::

    SignInRequired (a GET)   303 to the sign-in page, which comes back to the page after
    Unauthorized             401 page "Sign in again"
    Forbidden                403 page (a form without its CSRF token: reload and try again)
    NotFound                 404 page
    BadRequest, ValidationFailed
                             400 page saying what to fix
    RateLimited              429 page, with Retry-After
    anything else            the status ``api.app`` gives it, and its message
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from hatchery import errors
from hatchery.api.dashboard.pages import PREFIX, SignInRequired, render


def owns(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def error_page(request: Request, exc: errors.HatcheryError, status: int) -> Response:
    if isinstance(exc, SignInRequired) and request.method in ("GET", "HEAD"):
        return RedirectResponse(f"{PREFIX}/sign-in?next={quote(exc.next_path)}", status_code=303)
    response = render(request, "error.html", None, status, status=status, message=exc.message)
    if exc.retry_after is not None:
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def http_error_page(request: Request, status: int, message: str) -> Response:
    """A routing error (404, 405) on a dashboard path, as a page."""
    return render(request, "error.html", None, status, status=status, message=message)
