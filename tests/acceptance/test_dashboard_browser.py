"""The dashboard in a real browser: Chromium (the machine's, ``scripts/ensure-chromium``) driven
by Playwright against one ``hatchery serve``. It signs in through the invite link the server
printed and by keyboard alone, makes an API key and uses it from the SDK until it revokes it,
runs the playground to an image shown on the page, sends a form without its CSRF token, asks
for another account's task, and looks at every page at phone width for sideways scrolling and
unlabelled fields."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, expect

from hatchery.client import Client, UnauthorizedError
from tests.browser import DESKTOP, PHONE, chromium, overflows, unlabelled_fields
from tests.dashboard_helpers import PASSWORD
from tests.helpers import ServerProcess, wait_for_task

pytestmark = pytest.mark.slow

EMAIL = "local@localhost"
PAGES = ("", "/playground", "/tasks", "/files", "/keys", "/webhooks", "/usage")
# the operator's pages: local@localhost, whom `serve` makes on a new embedded database, is an admin
ADMIN = ("", "/accounts", "/keys", "/routes", "/routes/model/nanobanana", "/providers", "/queue")
ADMIN_PAGES = tuple("/admin" + sub for sub in (*ADMIN, "/outbox", "/audit"))
expect.set_options(timeout=30_000)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server on the embedded database (the browser sees no difference between them)."""
    proc = ServerProcess(tmp_path_factory.mktemp("dashboard")).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as found:
        yield found


@pytest.fixture(scope="module")
def signed_in(server: ServerProcess, browser: Browser) -> Iterator[BrowserContext]:
    """A browser that has set its password through the invite link ``serve`` printed."""
    printed = "".join(server.output)
    link = re.search(r"(http://\S+/dashboard/invite/\S+)", printed)
    assert link, printed
    context = browser.new_context(viewport=DESKTOP, base_url=server.url)
    page = context.new_page()
    page.goto(link.group(1))
    page.get_by_label("New password").fill(PASSWORD)
    page.get_by_label("The same again").fill(PASSWORD)
    page.get_by_role("button", name="Set password and sign in").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    page.close()
    yield context
    context.close()


def test_signing_out_and_in_again_with_the_keyboard_alone(
    server: ServerProcess, browser: Browser, signed_in: BrowserContext
) -> None:
    context = browser.new_context(viewport=DESKTOP, base_url=server.url)
    page = context.new_page()
    page.goto("/dashboard/tasks")
    expect(page).to_have_url(re.compile(r"/dashboard/sign-in\?next="))
    page.keyboard.type(EMAIL)  # the email field has the focus
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/dashboard/tasks$"))
    page.get_by_role("button", name="Sign out").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_text("You have signed out.")).to_be_visible()
    page.goto("/dashboard")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    context.close()


def test_a_key_made_in_the_dashboard_works_from_the_sdk_until_revoked(
    server: ServerProcess, signed_in: BrowserContext
) -> None:
    page = signed_in.new_page()
    page.goto("/dashboard/keys")
    page.get_by_label("Name").fill("from the browser")
    page.get_by_role("button", name="Create key").click()
    key = page.locator("#new-key").input_value()
    assert key.startswith("hk_")
    with Client(key, base_url=server.url, max_retries=0) as sdk:
        assert sdk.account().email == EMAIL
        page.goto("/dashboard/keys")
        assert key not in page.content()  # shown once
        row = page.get_by_role("row").filter(has_text=key[:13])
        expect(row).to_contain_text("from the browser")
        page.once("dialog", lambda dialog: dialog.accept())
        row.get_by_role("button", name="Revoke").click()
        expect(page.get_by_role("row").filter(has_text=key[:13])).to_contain_text("revoked")
        with pytest.raises(UnauthorizedError):  # at once: the server forgot the key
            sdk.account()
    page.close()


def test_the_playground_runs_a_model_to_an_image(signed_in: BrowserContext) -> None:
    page = signed_in.new_page()
    page.goto("/dashboard/playground?model=nanobanana")
    page.get_by_label("Prompt", exact=True).fill("a lighthouse at dusk")
    page.get_by_role("button", name="Run").click()
    expect(page.locator("#playground-status")).to_contain_text("completed")
    image = page.locator("#playground-output img").first
    expect(image).to_be_visible()
    assert page.evaluate("(img) => img.complete && img.naturalWidth > 0", image.element_handle())
    page.close()


def test_files_dropped_or_chosen_are_uploaded_and_shown(signed_in: BrowserContext) -> None:
    """The file chooser (what a keyboard reaches) and a drop on the zone both go through the
    presigned upload; the list comes back with each file's preview."""
    page = signed_in.new_page()
    page.goto("/dashboard/files")
    page.get_by_label("Files to upload").set_input_files(
        [{"name": "chosen.png", "mimeType": "image/png", "buffer": _png((40, 30))}]
    )
    expect(page.get_by_role("status").filter(has_text="Uploaded 1 file")).to_be_visible()
    dropped = page.evaluate_handle(
        """(bytes) => { const data = new DataTransfer();
            data.items.add(new File([new Uint8Array(bytes)], 'dropped.png', {type: 'image/png'}));
            return data; }""",
        list(_png((30, 40))),
    )
    page.locator("#dropzone").dispatch_event("drop", {"dataTransfer": dropped})
    expect(page.get_by_role("status").filter(has_text="Uploaded 1 file")).to_be_visible()
    for name in ("chosen.png", "dropped.png"):
        card = page.get_by_role("link", name=name)
        expect(card).to_be_visible()
    images = page.locator("main img")
    expect(images.first).to_be_visible()
    assert page.evaluate(
        "() => Array.from(document.querySelectorAll('main img')).every("
        "img => img.complete && img.naturalWidth > 0)"
    )
    page.close()


def _png(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 60, 40)).save(buffer, "PNG")
    return buffer.getvalue()


def test_a_form_without_its_csrf_token_is_refused(signed_in: BrowserContext) -> None:
    page = signed_in.new_page()
    page.goto("/dashboard/keys")
    form = page.locator("form").filter(has=page.get_by_role("button", name="Create key"))
    form.locator("input[name=csrf_token]").evaluate("(input) => input.remove()")
    page.get_by_label("Name").fill("forged")
    with page.expect_response(re.compile(r"/dashboard/keys$")) as answer:
        page.get_by_role("button", name="Create key").click()
    assert answer.value.status == 403
    expect(page.get_by_role("alert")).to_contain_text("CSRF token")
    page.goto("/dashboard/keys")
    expect(page.get_by_role("row").filter(has_text="forged")).to_have_count(0)
    page.close()


def test_another_accounts_task_is_not_found(
    server: ServerProcess, signed_in: BrowserContext
) -> None:
    server.cli("users", "create", "other@example.com")  # a subprocess: the browser holds this
    other_key = server.cli("keys", "create", "other@example.com").stdout.strip()  # thread's loop
    with server.client(other_key) as other:
        theirs = other.post("/v1/generate", json={"model": "nanobanana", "prompt": "theirs"})
        their_id = theirs.json()["data"]["id"]
    with server.client() as mine:
        my_id = mine.post("/v1/generate", json={"model": "nanobanana", "prompt": "mine"}).json()
        wait_for_task(mine, my_id["data"]["id"])
    page = signed_in.new_page()
    own = page.goto(f"/dashboard/tasks/{my_id['data']['id']}")
    assert own is not None and own.status == 200
    answer = page.goto(f"/dashboard/tasks/{their_id}")
    assert answer is not None and answer.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    page.close()


@pytest.mark.parametrize("path", PAGES + ADMIN_PAGES)
def test_each_page_fits_a_phone_and_labels_its_fields(
    server: ServerProcess, browser: Browser, signed_in: BrowserContext, path: str
) -> None:
    context = browser.new_context(
        viewport=PHONE, base_url=server.url, storage_state=signed_in.storage_state()
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    answer = page.goto("/dashboard" + path)
    assert answer is not None and answer.status == 200
    page.wait_for_load_state("networkidle")
    assert not overflows(page), f"{path or '/'} scrolls sideways at {PHONE['width']} px"
    assert unlabelled_fields(page) == []
    assert errors == []  # no script error, no resource the page's policy refused
    context.close()


def test_the_dashboard_ships_its_own_assets(server: ServerProcess) -> None:
    """Nothing from a CDN: every script and stylesheet a page names is served by us."""
    for name in ("dashboard.css", "dashboard.js"):
        answer = httpx.get(f"{server.url}/dashboard/static/{name}")
        assert answer.status_code == 200 and answer.content
    root = Path(__file__).resolve().parents[2] / "src/hatchery/api/dashboard/templates"
    for template in root.glob("*.html"):
        text = template.read_text()
        assert not re.search(r"""(src|href)=["']https?://""", text), template.name
