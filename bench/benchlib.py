"""Shared helpers of the benchmark scripts: paths, the data folder, timing statistics, tables, results."""

from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / "bench"
RESULTS_DIR = BENCH_DIR / "results"
DEFAULT_DATA_DIR = ROOT.parent / "shared" / "data" / "mnist"
SEED_RECIPE = ROOT.parent / "shared" / "bench" / "seed_recipe.py"
PYTHON = sys.executable

# The scripts run as `python bench/<name>.py`: the package beside bench/ must be importable.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # no C++ start-up lines in the tables
# A terminated benchmark exits through atexit too, so its training workers and temp folders go with it.
signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def parser(description: str) -> argparse.ArgumentParser:
    """Return an argument parser with the options every script shares (--data, --out)."""
    result = argparse.ArgumentParser(description=description)
    result.add_argument(
        "--data",
        default=os.environ.get("MNIST_DATA_DIR") or str(DEFAULT_DATA_DIR),
        help="MNIST folder (default: $MNIST_DATA_DIR, else ../shared/data/mnist beside the repo)",
    )
    result.add_argument("--out", default=None, help="results JSON path (default: bench/results/<name>.json)")
    result.add_argument("--keep-runs", action="store_true", help="keep the temporary runs folders (default: deleted)")
    return result


def setup(args: argparse.Namespace) -> Path:
    """Apply the shared options; return the MNIST folder, exported as MNIST_DATA_DIR for us and our children."""
    global _KEEP_RUNS
    _KEEP_RUNS = getattr(args, "keep_runs", False)
    folder = Path(args.data).expanduser().resolve()
    if not folder.exists():
        sys.exit(f"MNIST folder {folder} does not exist: pass --data or set MNIST_DATA_DIR")
    os.environ["MNIST_DATA_DIR"] = str(folder)
    return folder


_TEMP_RUNS: list[Path] = []
_KEEP_RUNS = False


def temp_runs_dir(prefix: str) -> Path:
    """Return a new empty runs folder in the temp directory (benchmarks never touch ./runs), deleted at exit."""
    path = Path(tempfile.mkdtemp(prefix=f"mnist-bench-{prefix}-"))
    _TEMP_RUNS.append(path)
    return path


@atexit.register
def _remove_temp_runs() -> None:
    """Stop workers still training in our runs folders (Ctrl-C, a failure), then delete the folders."""
    for path in _TEMP_RUNS:
        _stop_workers(path)
        if _KEEP_RUNS:
            print(f"kept runs folder {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def _stop_workers(root: Path) -> None:
    """SIGTERM the worker and supervisor of every run in `root` that still has them (processes we started)."""
    if "mnist_core.runs" not in sys.modules:
        return
    from mnist_core import control, runs

    for run in runs.list_runs(root):
        for pid in control.run_processes(run.path):
            os.kill(pid, signal.SIGTERM)
            print(f"stopped a training process of {run.run_id} (pid {pid})")


def median(values) -> float | None:
    """Return the median of the non-None values, or None when there are none."""
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def percentile(values, q: float) -> float | None:
    """Return the q-th percentile (0-100, linear interpolation) of the values, None when empty."""
    values = sorted(values)
    if not values:
        return None
    position = (len(values) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


def fmt(value, digits: int = 2, suffix: str = "") -> str:
    """Return a number formatted for a table cell, '–' for None."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}{suffix}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}{suffix}"
    return f"{value}{suffix}"


def print_table(headers: list[str], rows: list[list], left: int = 1) -> None:
    """Print rows as an aligned plain-text table (the first `left` columns left-aligned, the others right)."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row):
        pairs = enumerate(zip(row, widths, strict=True))
        return "  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in pairs).rstrip()

    print(line(cells[0]))
    print("  ".join("-" * w for w in widths))
    for row in cells[1:]:
        print(line(row))
    print()


def check(name: str, value, target: float, *, higher_is_better: bool, unit: str = "") -> dict:
    """Return a target check {name, value, target, ok} (ok None when there is no value) and print its line."""
    ok = None if value is None else (value >= target if higher_is_better else value <= target)
    sign = ">=" if higher_is_better else "<="
    verdict = {None: "NO VALUE", True: "PASS", False: "FAIL"}[ok]
    print(f"{name}: {fmt(value)}{unit}  (target {sign} {target:g}{unit}: {verdict})")
    return {"name": name, "value": value, "unit": unit.strip(), "target": f"{sign} {target:g}{unit}", "ok": ok}


def ratio(numerator, denominator) -> float | None:
    """Return numerator / denominator, None when either is missing or the denominator is 0."""
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def machine() -> dict:
    """Return what the results depend on: host, CPUs, load, Python, git commit, time."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=False,
            ).stdout.strip()
        )
    except OSError:
        commit, dirty = "", False
    return {
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "commit": commit + ("-dirty" if dirty else ""),
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "nice": os.nice(0),
    }


def write_results(name: str, payload: dict, out: str | None = None) -> Path:
    """Write the results (with machine info, start and end load) as JSON; return the file's path."""
    path = Path(out) if out else RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": name, "machine": machine(), **payload}
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"results: {path}")
    return path


class Stopwatch:
    """A perf_counter timer: `with Stopwatch() as w: ...` then w.seconds."""

    def __enter__(self) -> Stopwatch:
        self.started = time.perf_counter()
        self.seconds = None
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.started


def tiny_runs(root: Path, architectures: list[str], train_subset: int = 600, epochs: int = 1) -> list:
    """Return finished tiny runs of `architectures` trained one after another by the engine into `root`."""
    from mnist_core import control, runs
    from mnist_core.config import TrainConfig

    made = []
    for arch in architectures:
        run = control.start_run(TrainConfig.for_architecture(arch, epochs=epochs, train_subset=train_subset), root)
        state = control.wait_for(run, timeout=600)
        if state != runs.FINISHED:
            log = run.file("log.txt").read_text()[-2000:]
            raise RuntimeError(f"tiny {arch} run ended {state}\n{log}")
        made.append(runs.read_run(run.path))
    return made


# --- The dashboard in a real server and a real browser (cold_start.py, memory.py) ---------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1400, "height": 1000}  # wide enough that the sidebar navigation stays open
SETTLE_MS = 300  # the app must stay idle this long: a widget's first value can trigger one more rerun

# Resolves once the app's script state has stayed 'notRunning' for `settle` ms; returns how long ago
# the idle spell began, so the caller can date the moment the page was done.
_IDLE_JS = """
([settle, timeout]) => new Promise((resolve, reject) => {
  let since = null;
  const started = performance.now();
  const timer = setInterval(() => {
    const app = document.querySelector('[data-testid="stApp"]');
    const idle = app && app.getAttribute('data-test-script-state') === 'notRunning';
    const now = performance.now();
    if (now - started > timeout) { clearInterval(timer); reject(new Error('the app never went idle')); }
    if (!idle) { since = null; return; }
    if (since === null) since = now;
    if (now - since >= settle) { clearInterval(timer); resolve(now - since); }
  }, 10);
})
"""


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(runs_dir: Path, port: int, log_path: Path):
    """Return the Popen of `streamlit run dashboard.py` on `port` with MNIST_RUNS_DIR=`runs_dir`."""
    env = dict(os.environ, MNIST_RUNS_DIR=str(runs_dir), PYTHONUNBUFFERED="1")
    command = [
        PYTHON,
        "-m",
        "streamlit",
        "run",
        "dashboard.py",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
    ]
    log = open(log_path, "w")  # noqa: SIM115 - the server writes into it until stop_server
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def stop_server(server) -> None:
    """Stop the server we started (SIGTERM, then SIGKILL after 10 s)."""
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def wait_healthy(port: int, server, timeout: float = 120.0) -> None:
    """Return once the server answers /_stcore/health; RuntimeError if it exits or times out first."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the streamlit server exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.02)
    raise RuntimeError(f"the streamlit server did not answer on port {port} within {timeout:.0f} s")


def require_browser():
    """Return playwright.sync_api.sync_playwright, or exit saying how to install Playwright and Chromium."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sys.exit("Playwright is missing: it is a dev requirement, run `make install-dev` (and `make chromium`)")
    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} is missing: run `make chromium` (Debian's chromium package)")
    return sync_playwright


def launch_browser(playwright):
    """Return headless Debian Chromium launched by Playwright."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


def idle_at(page, timeout_ms: float = 120_000) -> float:
    """Return the perf_counter time at which the app went idle (and then stayed idle SETTLE_MS)."""
    idle_for_ms = page.evaluate(_IDLE_JS, [SETTLE_MS, timeout_ms])
    return time.perf_counter() - idle_for_ms / 1000


def sidebar_link(page, title: str):
    """Return the locator of the sidebar navigation link to the page titled `title`."""
    return page.locator('[data-testid="stSidebarNav"] a', has_text=title).first


def heading(page, text: str):
    """Return the locator of the page's title heading (h1) containing `text`."""
    return page.locator("h1", has_text=text).first


def fail_on_exception(page, where: str) -> None:
    """Raise RuntimeError when the page shows a Python exception or an error box (a broken page is no timing)."""
    for selector in ('[data-testid="stException"]', '[data-testid="stAlertContentError"]'):
        boxes = page.locator(selector)
        if boxes.count():
            raise RuntimeError(f"{where}: the page shows an error: {boxes.first.inner_text()[:500]}")


def proc_memory(pid: int) -> dict:
    """Return VmHWM (peak) and VmRSS of process `pid`, in MiB, from /proc/<pid>/status."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            values[key] = int(rest.split()[0]) / 1024  # kB -> MiB
    return values


# --- The command line and process CPU (live_tabs.py, many_runs.py) -------------------------------------


def mnist_cli(runs_dir: Path, *arguments: str, timeout: float = 900.0) -> str:
    """Return the stdout of `python -m mnist_core ARGUMENTS` with MNIST_RUNS_DIR=`runs_dir`; RuntimeError on failure."""
    env = dict(os.environ, MNIST_RUNS_DIR=str(runs_dir))
    command = [PYTHON, "-m", "mnist_core", *arguments]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        output = (done.stdout + done.stderr)[-2000:]
        raise RuntimeError(f"`{' '.join(command[1:])}` exited {done.returncode}:\n{output}")
    return done.stdout


def proc_stat(pid: int) -> dict | None:
    """Return ppid and CPU seconds (user + system, every thread) of process `pid` from /proc/<pid>/stat, None if gone.

    `children_cpu_s` is the CPU of its children that have exited and been waited for.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    return {
        "ppid": int(fields[1]),
        "cpu_s": (int(fields[11]) + int(fields[12])) / tick,
        "children_cpu_s": (int(fields[13]) + int(fields[14])) / tick,
    }
