"""Helpers of the browser tests: the Streamlit server under test, waiting for a page run, full-page screenshots."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
SERVER_LOG = ARTIFACTS / "streamlit-server.log"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1400, "height": 1000}
APP_TIMEOUT = 60_000  # ms for one page run: the first loads MNIST, some load TensorFlow
MAX_SCREENSHOT_HEIGHT = 12_000
# A server log line that reports a problem (case-insensitive).
LOG_PROBLEM = re.compile(r"traceback|error|exception|warning", re.IGNORECASE)
# The page is done when Streamlit's script run is over, no element waits for its lazily loaded code (a grey
# skeleton), nothing shows a spinner or the running man, and every image has loaded.
APP_DONE = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    return app && app.dataset.testScriptState === "notRunning"
        && !document.querySelector('[data-testid="stStatusWidget"], [data-testid="stSpinner"], '
            + '[data-testid="stSkeleton"], [data-testid="stSkeletonElement"], .stSkeleton')
        && [...document.querySelectorAll('[data-testid="stMain"] img')].every(image => image.complete);
}"""


@dataclass
class Server:
    """The `streamlit run dashboard.py` process under test."""

    process: subprocess.Popen
    url: str
    runs_dir: Path
    log_path: Path
    log_checked: bool = False

    def log(self) -> str:
        """Return everything the server has written to stdout and stderr so far."""
        return self.log_path.read_text(errors="replace")

    def log_problems(self) -> list[str]:
        """Return the log lines that look like a traceback, an error, an exception or a warning."""
        return [line for line in self.log().splitlines() if LOG_PROBLEM.search(line)]

    def stop(self) -> int:
        """Stop the server (SIGTERM, SIGKILL after 20 s) and return its exit code; a no-op once stopped."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode


def wait_for_app(page: Page, timeout: float = APP_TIMEOUT) -> None:
    """Wait until the page's title heading is shown and Streamlit has finished running and drawing the page."""
    expect(page.locator("h1").first).to_be_visible(timeout=timeout)
    page.wait_for_function(APP_DONE, timeout=timeout)


def open_page(page: Page, server: Server, path: str) -> None:
    """Open `path` of the app (such as '/Train?run=...') and wait until its script run is done."""
    page.goto(server.url + path)
    wait_for_app(page)


def no_exception(page: Page) -> None:
    """Fail if the page shows a Python exception."""
    exceptions = page.locator('[data-testid="stException"]')
    if exceptions.count():
        pytest.fail(f"{page.url} shows an exception:\n" + "\n".join(exceptions.all_inner_texts()))


def screenshot(page: Page, name: str) -> Path:
    """Save the whole page as SCREENSHOTS/<name>.png; Streamlit scrolls its main area, not the document."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size or VIEWPORT
    height = page.evaluate(
        """() => { const main = document.querySelector('[data-testid="stMain"]');
                   return main ? main.scrollHeight : document.documentElement.scrollHeight; }"""
    )
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], min(height, MAX_SCREENSHOT_HEIGHT))})
    page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)
    return path


def wait_until(page: Page, predicate, timeout: float = 30.0, what: str = "a condition"):
    """Return predicate()'s first truthy value, polled every 200 ms; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        page.wait_for_timeout(200)


def selectbox(page: Page, label: str) -> Locator:
    """Return the selectbox labelled `label`; its value is the text of the chosen option."""
    return page.get_by_role("combobox", name=label, exact=True)


def plotly_traces(chart: Locator) -> list[dict]:
    """Return the traces a Plotly chart draws in the browser: name, x, y and text (binary arrays decoded)."""
    return chart.locator(".js-plotly-plot").first.evaluate(
        """g => (g._fullData || []).map(t => ({
            name: t.name ?? null,
            x: Array.from(t.x ?? []),
            y: Array.from(t.y ?? []),
            text: typeof t.text === "string" ? [] : Array.from(t.text ?? []),
        }))"""
    )
