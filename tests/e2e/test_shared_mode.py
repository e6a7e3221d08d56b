"""Shared (classroom) mode in Chromium: a second server with a user and an admin password hash in its environment.

Without the password only the login shows, on / and on a deep link, the server's very first page run included. With
it the studio opens, a reload and a server restart keep the login (a cookie), a run belongs to the browser session
that started it: another student's Stop is refused, the admin's is not. Log out ends the login for good.
"""

from __future__ import annotations

import os
import signal

import pytest
from playwright.sync_api import BrowserContext, Page, expect
from playwright.sync_api import Error as PlaywrightError

from mnist_core import access, control, runs
from mnist_core.config import TrainConfig

from .conftest import start_server
from .streamlit_browser import ARTIFACTS, SCREENSHOTS, VIEWPORT, no_exception, open_page, wait_for_app, wait_until

STUDENT, TEACHER = "student e2e password", "teacher e2e password"
SHARED_LOG = ARTIFACTS / "streamlit-shared-server.log"
# A run that is only queued (never started here): nothing trains, and Stop acts on it at once.
QUEUED_CONFIG = TrainConfig.for_architecture("mlp", epochs=20, train_subset=600)


@pytest.fixture(scope="module")
def shared_env() -> dict[str, str]:
    return {
        access.PASSWORD_ENV: access.hash_password(STUDENT),
        access.ADMIN_PASSWORD_ENV: access.hash_password(TEACHER),
    }


@pytest.fixture(scope="module")
def shared_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e-shared") / "runs"
    root.mkdir()
    yield root
    for run in runs.list_runs(root):
        for pid in control.run_processes(run.path):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def shared_server(shared_runs, shared_env):
    """A fresh server in shared mode; its log must stay free of errors and warnings."""
    instance = start_server(shared_runs, SHARED_LOG, shared_env)
    yield instance
    instance.stop()
    problems = instance.log_problems()
    if problems:
        pytest.fail(f"{SHARED_LOG} reports problems:\n" + "\n".join(problems))


@pytest.fixture
def new_context(browser):
    """Return new_context(): a fresh browser (own cookies) per call; uncaught JavaScript errors fail the test."""
    contexts: list[BrowserContext] = []
    errors: list[str] = []

    def make() -> BrowserContext:
        ctx = browser.new_context(viewport=VIEWPORT)
        ctx.set_default_timeout(30_000)
        ctx.on("page", lambda tab: tab.on("pageerror", lambda error: errors.append(f"{tab.url}: {error}")))
        contexts.append(ctx)
        return ctx

    yield make
    for ctx in contexts:
        ctx.close()
    if errors:
        pytest.fail("uncaught JavaScript errors in the browser:\n" + "\n".join(errors))


def shows_only_the_login(page: Page) -> None:
    """Assert the page is the login form and nothing of the studio: no navigation, no page, no sidebar."""
    expect(page.locator("h1").first).to_contain_text("MNIST studio")
    expect(page.get_by_text("enter the class password")).to_be_visible()
    expect(page.get_by_label("Password", exact=True)).to_have_attribute("type", "password")
    expect(page.locator('[data-testid="stSidebarNav"] a, [data-testid="stSidebarNavLink"]')).to_have_count(0)
    expect(page.locator('[data-testid="stSidebar"]')).to_have_count(0)
    expect(page.get_by_role("button", name="Start training")).to_have_count(0)
    expect(page.get_by_role("button", name="Log out")).to_have_count(0)
    for text in ("Training images", "Runs", "Pages", "Train", "Dataset"):
        expect(page.get_by_text(text, exact=True)).to_have_count(0)
    expect(
        page.locator('[data-testid="stMetric"], [data-testid="stDataFrame"], [data-testid="stPlotlyChart"]')
    ).to_have_count(0)
    no_exception(page)


def log_in(page: Page, password: str, right: bool = True) -> None:
    """Type `password` into the login form, submit it with Enter, and wait for the studio (or the error)."""
    field = page.get_by_label("Password", exact=True)
    field.fill(password)
    field.press("Enter")
    if right:
        expect(field).to_have_count(0, timeout=30_000)
    else:
        expect(page.get_by_text("Wrong password.")).to_be_visible()
    wait_for_app(page)


def reloaded(page: Page, marker: str) -> bool:
    """Return True once the page no longer has the window property `marker` (it was reloaded)."""
    try:
        return not page.evaluate(f"() => window.{marker}")
    except PlaywrightError:
        return False  # the page is being replaced right now


def click_until(page: Page, button, done, what: str, tries: int = 3) -> None:
    """Click `button` until done() is true (a click can land while a fragment redraws the button)."""
    for attempt in range(tries):
        button.click()
        try:
            wait_until(page, done, 10, what)
            return
        except pytest.fail.Exception:
            if attempt == tries - 1:
                raise


def session_token(ctx: BrowserContext) -> str | None:
    """Return the studio's login cookie in this browser, None when it has none."""
    return next((c["value"] for c in ctx.cookies() if c["name"] == "mnist_studio_session"), None)


def test_without_the_password_only_the_login_shows(shared_server, new_context, shoot):
    """The very first page run of the fresh server is a deep link to /Train: it too shows only the login."""
    page = new_context().new_page()
    open_page(page, shared_server, "/Train")
    shows_only_the_login(page)
    shoot(page, "deep-link")
    open_page(page, shared_server, "/")
    shows_only_the_login(page)
    log_in(page, "not the password", right=False)
    shows_only_the_login(page)
    shoot(page, "wrong-password")
    assert session_token(page.context) is None


def test_login_reload_restart_and_who_may_stop_a_run(
    shared_server, shared_runs, shared_env, new_context, shoot, request
):
    owner = new_context().new_page()
    open_page(owner, shared_server, "/Train")
    log_in(owner, STUDENT)
    expect(owner.get_by_role("button", name="Start training")).to_be_visible()  # the deep link opens after it
    open_page(owner, shared_server, "/")
    expect(owner.get_by_text("Training images")).to_be_visible()
    expect(owner.locator('[data-testid="stSidebarNav"]')).to_contain_text("Train")
    token = wait_until(owner, lambda: session_token(owner.context), 10, "the login cookie")
    session = access.SessionStore(shared_runs).lookup(token)
    assert session is not None and session.role == access.USER
    owner_id = session.actor.id
    expect(owner.get_by_text(f"Logged in · session {owner_id[2:8]}")).to_be_visible()
    shoot(owner, "logged-in")

    owner.reload()
    wait_for_app(owner)
    expect(owner.get_by_text("Training images")).to_be_visible()  # still logged in after a reload
    expect(owner.get_by_role("button", name="Log out")).to_be_visible()
    assert owner.get_by_label("Password", exact=True).count() == 0

    run = control.create_run(QUEUED_CONFIG, shared_runs, access.Actor(owner_id))
    assert runs.read_run(run.path).status["owner"] == owner_id

    other = new_context().new_page()
    open_page(other, shared_server, f"/Train?run={run.run_id}")
    shows_only_the_login(other)
    log_in(other, STUDENT)
    expect(other.locator(".st-key-train_stop button")).to_be_visible()
    refusal = f"Only the browser session that started run {run.run_id} (or an admin) may stop it"
    shown = other.locator('[data-testid="stToast"]').filter(has_text=refusal)
    click_until(other, other.locator(".st-key-train_stop button"), lambda: shown.count() > 0, refusal)
    other.wait_for_timeout(2500)  # the status fragment has redrawn twice since: the refusal is still there to read
    expect(shown).to_be_visible()
    other.screenshot(path=str(SCREENSHOTS / f"{request.node.name}-other-student-refused.png"))
    assert runs.read_run(run.path).state == runs.QUEUED

    teacher = new_context().new_page()
    open_page(teacher, shared_server, f"/Train?run={run.run_id}")
    log_in(teacher, TEACHER)
    expect(teacher.get_by_text("Admin · session")).to_be_visible()
    stopped = lambda: runs.read_run(run.path).state == runs.STOPPED  # noqa: E731
    click_until(teacher, teacher.locator(".st-key-train_stop button"), stopped, "the admin's stop")
    expect(teacher.locator("h3").filter(has_text="stopped")).to_be_visible()
    shoot(teacher, "admin-stopped")
    no_exception(teacher)

    # A restarted server (a new port on the same host: the same cookie) still knows the owner's login.
    shared_server.stop()
    restarted = start_server(shared_runs, SHARED_LOG.with_name("streamlit-shared-server-restarted.log"), shared_env)
    try:
        open_page(owner, restarted, "/")
        expect(owner.get_by_text("Training images")).to_be_visible()
        expect(owner.get_by_text(f"Logged in · session {owner_id[2:8]}")).to_be_visible()

        owner.evaluate("() => { window.e2eBeforeLogout = true; }")
        owner.get_by_role("button", name="Log out").click()
        wait_until(owner, lambda: reloaded(owner, "e2eBeforeLogout"), 15, "the page to reload")
        wait_for_app(owner)
        shows_only_the_login(owner)
        assert access.SessionStore(shared_runs).lookup(token) is None  # void on the server
        wait_until(owner, lambda: session_token(owner.context) is None, 10, "the cookie to be cleared")
        owner.reload()
        wait_for_app(owner)
        shows_only_the_login(owner)
        shoot(owner, "logged-out")
    finally:
        restarted.stop()
    problems = restarted.log_problems()
    assert not problems, "\n".join(problems)
