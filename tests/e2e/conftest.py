"""Browser tests: a real `streamlit run dashboard.py` server, Debian's Chromium driven by Playwright, screenshots.

The server runs for the whole session on a free 127.0.0.1 port with a fresh runs folder; its stdout and stderr go
to test-artifacts/streamlit-server.log, which must stay free of tracebacks, errors and warnings. Every test leaves a
full-page screenshot of what its browser tab saw in test-artifacts/screenshots/<test name>.png.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if not os.environ.get("MNIST_DATA_DIR", "").strip():
    os.environ["MNIST_DATA_DIR"] = str((REPO_ROOT / "../shared/data/mnist").resolve())

from playwright.sync_api import Page, sync_playwright  # noqa: E402

from mnist_core import control, runs  # noqa: E402

from . import streamlit_browser  # noqa: E402
from .streamlit_browser import SCREENSHOTS, SERVER_LOG, VIEWPORT, Server, screenshot, wait_for_app  # noqa: E402

SHARED_MODE_ENV = ("MNIST_STUDIO_PASSWORD_HASH", "MNIST_STUDIO_ADMIN_PASSWORD_HASH")


def start_server(runs_dir: Path, log_path: Path, env: dict[str, str | None] | None = None) -> Server:
    """Start `streamlit run dashboard.py` on a free 127.0.0.1 port with `runs_dir`, its output in `log_path`, the
    environment changed by `env` (None removes a variable); return it once it answers its health check, else fail."""
    try:
        return streamlit_browser.start_server(runs_dir, log_path, env)
    except streamlit_browser.ServerError as error:
        problem = str(error)
    pytest.fail(problem)


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Server:
    """Start `streamlit run dashboard.py` on a free local port with an empty runs folder; stop it at the end."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()
    runs_dir = tmp_path_factory.mktemp("e2e") / "runs"
    runs_dir.mkdir()
    # Local mode whatever the shell has set: the shared mode has its own server (test_shared_mode.py).
    instance = start_server(runs_dir, SERVER_LOG, {name: None for name in SHARED_MODE_ENV})
    yield instance
    instance.stop()
    for run in runs.list_runs(runs_dir):
        for pid in control.run_processes(run.path):  # a test that failed half-way leaves no training behind
            os.kill(pid, signal.SIGKILL)
    if not instance.log_checked:  # the log test did not run (deselected or failed before): check here
        problems = instance.log_problems()
        if problems:
            pytest.fail(f"{SERVER_LOG} reports problems:\n" + "\n".join(problems))


@pytest.fixture(scope="session")
def browser():
    """Return Debian's Chromium, headless, for the whole session."""
    with sync_playwright() as playwright:
        chromium = streamlit_browser.launch_chromium(playwright)
        yield chromium
        chromium.close()


def checked_context(browser):
    """Yield a fresh browser context (its own cookies, storage and tabs); uncaught JavaScript errors in any of
    its tabs fail the test. (Console 404s for <page>/_stcore/health and host-config are Streamlit probing for
    a base URL on every /Page load; they are not errors of the app.)"""
    ctx = browser.new_context(viewport=VIEWPORT)
    ctx.set_default_timeout(30_000)
    errors: list[str] = []
    ctx.on("page", lambda tab: tab.on("pageerror", lambda error: errors.append(f"{tab.url}: {error}")))
    yield ctx
    ctx.close()
    if errors:
        pytest.fail("uncaught JavaScript errors in the browser:\n" + "\n".join(errors))


@pytest.fixture
def context(browser, server):
    """Return a fresh browser context for one test, on the session's shared server."""
    yield from checked_context(browser)


def artifact_name(request, suffix: str = "") -> str:
    """Return a file-system friendly name for the current test, with an optional suffix."""
    name = request.node.name + (f"-{suffix}" if suffix else "")
    return re.sub(r"[^\w.-]+", "_", name).strip("_")


@pytest.fixture
def shoot(request):
    """Return shoot(page, suffix=''): save the page's full screenshot under the test's name (and the suffix)."""
    return lambda page, suffix="": screenshot(page, artifact_name(request, suffix))


@pytest.fixture
def page(context, request) -> Page:
    """Return a new tab; when the test ends its full page is saved to screenshots/<test name>.png."""
    tab = context.new_page()
    yield tab
    if tab.is_closed():
        return
    with contextlib.suppress(Exception):  # a failed test's tab is shot as it is
        wait_for_app(tab, timeout=10_000)
    screenshot(tab, artifact_name(request))
