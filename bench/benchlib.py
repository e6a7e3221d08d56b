"""Shared helpers of the benchmark scripts: options, runs folders, statistics, tables, results, the browser."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import platform
import re
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

# The scripts run as `python bench/<name>.py`: the package beside bench/ (and tests/e2e's harness) must import.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # no C++ start-up lines in the tables
# A terminated benchmark exits through atexit too, so its training workers and temp folders go with it.
signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def parser(description: str, quick_help: str | None = None, **quick) -> argparse.ArgumentParser:
    """Return an argument parser with the shared options (--data, --out, --keep-runs) and --quick, which sets the
    `quick` defaults (a value may be a function of the parsed arguments); a flag given explicitly wins."""
    result = argparse.ArgumentParser(description=description)
    result.add_argument(
        "--data",
        default=os.environ.get("MNIST_DATA_DIR") or str(DEFAULT_DATA_DIR),
        help="MNIST folder (default: $MNIST_DATA_DIR, else ../shared/data/mnist beside the repo)",
    )
    result.add_argument("--out", default=None, help="results JSON path (default: bench/results/<name>.json)")
    result.add_argument("--keep-runs", action="store_true", help="keep the temporary runs folders (default: deleted)")
    scale = ", ".join(f"--{k.replace('_', '-')} {'…' if callable(v) else v}" for k, v in quick.items())
    quick_help = quick_help or ("smoke-test scale" + (f": {scale} unless given" if scale else " (the default)"))
    result.add_argument("--quick", action="store_true", help=quick_help)
    result.set_defaults(quick_defaults=quick)
    return result


def parse(arguments: argparse.ArgumentParser) -> argparse.Namespace:
    """Parse the command line (--quick applied), export the MNIST folder as MNIST_DATA_DIR; return the arguments."""
    global _KEEP_RUNS
    known, _ = arguments.parse_known_args()
    if known.quick:
        arguments.set_defaults(**{k: v(known) if callable(v) else v for k, v in known.quick_defaults.items()})
    args = arguments.parse_args()
    del args.quick_defaults
    _KEEP_RUNS = args.keep_runs
    folder = Path(args.data).expanduser().resolve()
    if not folder.exists():
        sys.exit(f"MNIST folder {folder} does not exist: pass --data or set MNIST_DATA_DIR")
    os.environ["MNIST_DATA_DIR"] = args.data = str(folder)
    return args


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
        if "mnist_core.runs" in sys.modules:
            from mnist_core import control, runs

            for run in runs.list_runs(path):
                for pid in control.run_processes(run.path):
                    os.kill(pid, signal.SIGTERM)
                    print(f"stopped a training process of {run.run_id} (pid {pid})")
        if _KEEP_RUNS:
            print(f"kept runs folder {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def median(values) -> float | None:
    """Return the median of the non-None values, or None when there are none."""
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def measured(values: list[float]) -> list[float]:
    """Return the per-epoch values that count: all but the first (tracing) when there are two or more."""
    return values[1:] if len(values) >= 2 else values


def percentile(values, q: float) -> float | None:
    """Return the q-th percentile (0-100, linear interpolation) of the values, None when empty."""
    values = sorted(values)
    if not values:
        return None
    position = (len(values) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


def ratio(numerator, denominator) -> float | None:
    """Return numerator / denominator, None when either is missing or the denominator is 0."""
    if numerator is None or not denominator:
        return None
    return numerator / denominator


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


def print_table(headers: list[str], rows: list[list], left: int = 1, title: str | None = None) -> None:
    """Print `title` (if any), then rows as an aligned plain-text table (the first `left` columns left-aligned)."""
    if title is not None:
        print(title)
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


def table(title: str | None, records: list[dict], columns: list[tuple], left: int = 1) -> None:
    """Print records as a table; a column is (header, key[, digits[, suffix]]), a str key's value fmt-ed."""
    rows = [[fmt(r[c[1]], *c[2:]) if len(c) > 2 else r[c[1]] for c in columns] for r in records]
    print_table([c[0] for c in columns], rows, left, title)


def check(name: str, value, target: float, *, higher_is_better: bool, unit: str = "") -> dict:
    """Return a target check {name, value, target, ok} (ok None when there is no value) and print its line."""
    ok = None if value is None else (value >= target if higher_is_better else value <= target)
    sign = ">=" if higher_is_better else "<="
    verdict = {None: "NO VALUE", True: "PASS", False: "FAIL"}[ok]
    print(f"{name}: {fmt(value)}{unit}  (target {sign} {target:g}{unit}: {verdict})")
    return {"name": name, "value": value, "unit": unit.strip(), "target": f"{sign} {target:g}{unit}", "ok": ok}


def machine() -> dict:
    """Return what the results depend on: host, CPUs, load, Python, git commit, time."""

    def git(*arguments: str) -> str:
        try:
            done = subprocess.run(["git", *arguments], cwd=ROOT, capture_output=True, text=True, check=False)
        except OSError:
            return ""
        return done.stdout.strip()

    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    return {
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "commit": git("rev-parse", "--short", "HEAD") + ("-dirty" if dirty else ""),
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "nice": os.nice(0),
    }


def write_results(name: str, payload: dict, out: str | None, headline=None) -> Path:
    """Write the results as JSON, with machine info and `headline(payload)` (the figures run_all.py's summary
    shows); return the file's path."""
    path = Path(out) if out else RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": name, "machine": machine(), **payload} | (
        {"headline": headline(payload)} if headline else {}
    )
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


# --- Runs: the engine and the command line --------------------------------------------------------------


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


def finished_run(preset: str, reuse, root: Path, epochs: int | None, train_subset: int | None):
    """Return a finished run of `preset` (KEY or KEY@SEED) with its defaults (or these epochs and training images):
    the newest such run in `reuse` when it has one, copied into `root`/runs, else one trained there now."""
    from mnist_core import control, runs
    from mnist_core.config import TrainConfig

    key, _, seed = preset.partition("@")
    config = TrainConfig.for_architecture(key, epochs=epochs, train_subset=train_subset, seed=int(seed or 0))
    # The whole recipe must match, not only the architecture: a run of the same network trained another way
    # (other augmentation, smoothing, drawings mixed in) is not a draw of this preset.
    done = (
        [run for run in runs.list_runs(reuse) if run.state == runs.FINISHED and run.config == config] if reuse else []
    )
    (root / "runs").mkdir(parents=True, exist_ok=True)  # all beside each other: an ensemble finds its members
    if done:
        print(f"{preset}: reusing {done[0].run_id} ({len(done[0].epochs)} epochs) from {reuse}", flush=True)
        return runs.read_run(shutil.copytree(done[0].path, root / "runs" / done[0].run_id))
    print(f"training {preset}: {config.epochs} epoch(s) on {config.train_size:,} images", flush=True)
    run = control.start_run(config, root / "runs")
    if control.wait_for(run, timeout=3600) != runs.FINISHED:
        raise RuntimeError(f"{preset} did not finish: {runs.read_run(run.path).status}")
    return runs.read_run(run.path)


def mnist_cli(runs_dir: Path, *arguments: str, timeout: float = 900.0) -> str:
    """Return the stdout of `python -m mnist_core ARGUMENTS` with MNIST_RUNS_DIR=`runs_dir`; RuntimeError on failure."""
    env = dict(os.environ, MNIST_RUNS_DIR=str(runs_dir))
    command = [PYTHON, "-m", "mnist_core", *arguments]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        output = (done.stdout + done.stderr)[-2000:]
        raise RuntimeError(f"`{' '.join(command[1:])}` exited {done.returncode}:\n{output}")
    return done.stdout


def cli_train(runs_dir: Path, *arguments: str) -> tuple[Path, str]:
    """Return (the run's folder, the CLI's output) of `python -m mnist_core train ARGUMENTS` in `runs_dir`."""
    before = {p.name for p in runs_dir.iterdir()}
    output = mnist_cli(runs_dir, "train", *arguments)
    match = re.search(r"^run (\S+?):", output, re.MULTILINE)
    return runs_dir / (match.group(1) if match else sorted({p.name for p in runs_dir.iterdir()} - before)[-1]), output


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


# --- The dashboard in a real server and Chromium: tests/e2e's harness -------------------------------------


def browser_harness():
    """Return tests/e2e/streamlit_browser (the server and Chromium harness), or exit saying how to install it."""
    try:
        from tests.e2e import streamlit_browser
    except ImportError as error:
        sys.exit(f"{error}: Playwright and pytest are dev requirements, run `make install-dev` (and `make chromium`)")
    if not Path(streamlit_browser.CHROMIUM).exists():
        sys.exit(f"{streamlit_browser.CHROMIUM} is missing: run `make chromium` (Debian's chromium package)")
    return streamlit_browser


@contextlib.contextmanager
def chromium(*extra_args: str):
    """Yield headless Chromium (the harness's arguments and `extra_args`), closed at the end."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = browser_harness().launch_chromium(playwright, *extra_args)
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser, timeout_ms: float):
    """Return (a fresh browser context at the harness's viewport, a page in it with `timeout_ms` as default)."""
    context = browser.new_context(viewport=browser_harness().VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(timeout_ms)
    return context, page


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
