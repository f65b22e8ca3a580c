"""Chromium for the dashboard's browser tests, driven by Playwright: the machine's Chromium
(``CHROMIUM``, else ``chromium`` on PATH; ``scripts/ensure-chromium`` installs Debian's), never
a browser Playwright downloads. Pages only ever reach 127.0.0.1."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

from playwright.sync_api import Browser, Page, sync_playwright

PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 860}


def chromium_path() -> str:
    found = (
        os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    )
    if not found:
        raise RuntimeError("no Chromium: run scripts/ensure-chromium (or set CHROMIUM)")
    return found


@contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(),
            # as root (CI containers) Chromium's sandbox cannot start; the pages are our own
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        try:
            yield browser
        finally:
            browser.close()


def overflows(page: Page) -> bool:
    """Whether the page is wider than the window (it would scroll sideways)."""
    return bool(page.evaluate("document.documentElement.scrollWidth > window.innerWidth + 1"))


UNLABELLED = """
() => Array.from(document.querySelectorAll('input, select, textarea'))
  .filter(el => el.type !== 'hidden' && !el.hidden && el.offsetParent !== null)
  .filter(el => el.labels.length === 0 && !el.getAttribute('aria-label')
                && !el.getAttribute('aria-labelledby'))
  .map(el => el.outerHTML.slice(0, 120))
"""


def unlabelled_fields(page: Page) -> list[str]:
    """The visible form fields of the page that no label names."""
    found: list[str] = page.evaluate(UNLABELLED)
    return found
