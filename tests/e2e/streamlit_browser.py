"""The Streamlit server + Chromium harness of the browser tests and of bench/: the server under test, Chromium,
waiting for a page run (or for it to settle), full-page screenshots."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
SERVER_LOG = ARTIFACTS / "streamlit-server.log"
CHROMIUM = "/usr/bin/chromium"
STARTUP_TIMEOUT = 90.0  # seconds for the server to answer its health check
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1400, "height": 1000}  # wide enough that the sidebar navigation stays open
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
# Streamlit's script run is over (the benchmarks' "idle"; APP_DONE also waits for spinners, skeletons and images).
SCRIPT_IDLE = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    return app && app.dataset.testScriptState === "notRunning";
}"""
SETTLE_MS = 300  # a settled page stays done this long: a widget's first value can trigger one more rerun
# Resolves once DONE() has held for `settle` ms, polled every 10 ms; returns how long ago it began to hold.
SETTLED_JS = """([settle, timeout]) => new Promise((resolve, reject) => {
    const done = DONE;
    const started = performance.now();
    let since = null;
    const timer = setInterval(() => {
        const now = performance.now();
        if (now - started > timeout) { clearInterval(timer); reject(new Error("the app did not settle")); }
        if (!done()) { since = null; return; }
        if (since === null) since = now;
        if (now - since >= settle) { clearInterval(timer); resolve(now - since); }
    }, 10);
})"""


class ServerError(RuntimeError):
    """The server exited or did not answer its health check at start-up (the message holds its log)."""


@dataclass
class Server:
    """The `streamlit run dashboard.py` process under test."""

    process: subprocess.Popen
    url: str
    runs_dir: Path
    log_path: Path
    log_checked: bool = False

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

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


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(
    runs_dir: Path, log_path: Path, env: dict[str, str | None] | None = None, timeout: float = STARTUP_TIMEOUT
) -> Server:
    """Start `streamlit run dashboard.py` on a free 127.0.0.1 port with `runs_dir`, its output in `log_path`, the
    environment changed by `env` (None removes a variable); return it once it answers its health check (polled
    every 20 ms), else stop it and raise ServerError."""
    port = free_port()
    environment = dict(os.environ, MNIST_RUNS_DIR=str(runs_dir), PYTHONUNBUFFERED="1")
    environment["MNIST_DRAWINGS_DIR"] = str(runs_dir.parent / "drawings")  # beside the runs, as by default
    environment.pop("TF_CPP_MIN_LOG_LEVEL", None)  # as started from a shell: the app sets TensorFlow's log level itself
    for name, value in (env or {}).items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    command = [sys.executable, "-m", "streamlit", "run", "dashboard.py", "--server.port", str(port)]
    command += ["--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    instance = Server(process, f"http://127.0.0.1:{port}", runs_dir, log_path)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise ServerError(f"streamlit exited with code {process.returncode} at start-up:\n{instance.log()}")
        try:
            with urllib.request.urlopen(f"{instance.url}/_stcore/health", timeout=2) as response:
                if response.read().decode().strip() == "ok":
                    return instance
        except OSError:
            pass
        if time.monotonic() > deadline:
            instance.stop()
            raise ServerError(f"streamlit did not answer /_stcore/health within {timeout:.0f} s:\n{instance.log()}")
        time.sleep(0.02)


def launch_chromium(playwright, *extra_args: str):
    """Return Debian's Chromium, headless, launched by Playwright with CHROMIUM_ARGS and `extra_args`."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_ARGS, *extra_args])


def settled_at(page: Page, done: str = SCRIPT_IDLE, settle_ms: float = SETTLE_MS, timeout_ms: float = 120_000) -> float:
    """Return the perf_counter time at which the JavaScript predicate `done` became true and then held `settle_ms`."""
    held_ms = page.evaluate(SETTLED_JS.replace("DONE", done.strip()), [settle_ms, timeout_ms])
    return time.perf_counter() - held_ms / 1000


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
