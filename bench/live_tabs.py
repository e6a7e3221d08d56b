"""A live view that scales: training throughput and server CPU with no tab open, then with N Chromium tabs on Train.

One `streamlit run dashboard.py` on a fresh runs folder. Phase A (no tab): an MLP run on the 54,000 images,
started with `python -m mnist_core train --detach` and stopped with `python -m mnist_core stop`, trains through a
warm-up and then a fixed window. Batches/s come from its batches.jsonl (tailed every 20 ms, so every row gets the
wall time it appeared); CPU from /proc: the server process with every thread and any child of it, the training
worker excluded (a process of its own), the browser with its driver and this script, the worker, the machine.
Phase B: the same with N tabs open on /Train?run=RUN, each in its own browser context, background throttling off.
During the window every tab's progress caption ("epoch E/N · batch B/S · ...") is read from its DOM every 0.5 s;
its lag is the reading's time less the wall time the trainer wrote that (epoch, batch) to batches.jsonl.
"""

from __future__ import annotations

import atexit
import bisect
import contextlib
import json
import os
import threading
import time
from pathlib import Path

import benchlib
from benchlib import fmt, median, percentile

harness = benchlib.browser_harness()
HEADING = "Train"  # the Train page's title heading: the tab shows the page
TARGET_THROUGHPUT_RATIO = 0.90
TARGET_SERVER_CPU_PCT = 15.0
TARGET_LAG_P95_S = 3.0
TAIL_EVERY_S = 0.02  # how often batches.jsonl is read for new rows
CPU_EVERY_S = 1.0  # one CPU sample per second
READ_EVERY_S = 0.5  # how often every tab's caption is read
SLICE_S = 5.0  # throughput spread: the window cut into slices this long
STAGGER_S = 15.0  # the next tab opens when the last one shows its heading, or after this long
OPEN_TIMEOUT_S = 120.0  # tabs with no progress caption this long after the last tab opened are counted as such
FIRST_ROWS_TIMEOUT_S = 240.0  # TensorFlow start-up, data loading and the first batches
# Visible, unthrottled tabs: headless pages are "visible", and these keep Chromium from slowing timers anyway.
UNTHROTTLED = [
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
]
BROWSER_ARGS = [*harness.CHROMIUM_ARGS, *UNTHROTTLED]
# The progress caption, found in the progress bar's text (else anywhere in the main area): epoch and batch.
READ_JS = r"""() => {
  const main = document.querySelector('[data-testid="stMain"]') || document.body;
  const bar = main.querySelector('[data-testid="stProgress"]');
  const pattern = /epoch\s*(\d+)\s*\/\s*\d+\D{0,12}?batch\s*(\d+)/i;
  const hit = (bar && pattern.exec(bar.textContent || '')) || pattern.exec(main.textContent || '');
  return {t: Date.now() / 1000, epoch: hit ? Number(hit[1]) : null, batch: hit ? Number(hit[2]) : null,
          visibility: document.visibilityState};
}"""
START_READER_JS = (
    "(every) => { const read = " + READ_JS + "; window.__liveTabsLog = [read()];"
    " window.__liveTabsTimer = setInterval(() => window.__liveTabsLog.push(read()), every); }"
)
# Installed before the page's own scripts: when the heading and the first progress caption appeared.
FIRST_SEEN_JS = (
    "(() => { const read = " + READ_JS + "; const first = window.__liveTabsFirst = {show: null, caption: null};"
    " const timer = setInterval(() => { if (!first.show && [...document.querySelectorAll('h1')].some("
    "h => h.textContent.includes(" + json.dumps(HEADING) + "))) first.show = Date.now() / 1000;"
    " if (!first.caption) { const r = read(); if (r.epoch !== null) first.caption = r.t; }"
    " if (first.show && first.caption) clearInterval(timer); }, 50); })();"
)
# Also installed first: every websocket message the page receives, with its arrival time, size, and the caption's
# (epoch, batch) when the message carries one (the caption is plain UTF-8 inside Streamlit's protobuf). Its lag
# against the trainer is the server's side of the display lag; what the DOM adds on top is the browser's.
MESSAGES_JS = r"""(() => {
  const Native = window.WebSocket;
  const log = window.__liveTabsMessages = [];
  const pattern = /epoch\s*(\d+)\s*\/\s*\d+\D{0,12}?batch\s*(\d+)/i;
  const decoder = new TextDecoder('utf-8');
  const note = (t, data) => {
    const text = typeof data === 'string' ? data : decoder.decode(data);
    const hit = pattern.exec(text);
    log.push([t, data.byteLength ?? data.length ?? 0, hit ? Number(hit[1]) : null, hit ? Number(hit[2]) : null]);
  };
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (event) => {
        const t = Date.now() / 1000, data = event.data;
        if (data instanceof Blob) data.arrayBuffer().then((b) => note(t, new Uint8Array(b)));
        else if (data instanceof ArrayBuffer) note(t, new Uint8Array(data));
        else note(t, data);
      });
    }
  };
})();"""
# The text of an exception or error box the page shows (a broken page explains a missing caption), else null.
PAGE_ERROR_JS = """() => {
  const box = document.querySelector('[data-testid="stException"], [data-testid="stAlertContentError"]');
  return box ? box.innerText.slice(0, 300) : null;
}"""
SHOWN_JS = "() => Boolean(window.__liveTabsFirst && window.__liveTabsFirst.show)"
COLLECT_JS = (
    "() => { clearInterval(window.__liveTabsTimer);"
    " return [window.__liveTabsLog || [], window.__liveTabsMessages || []]; }"
)

_TRAININGS: list[Training] = []


class Training:
    """One MLP run started through the CLI, its batches.jsonl tailed by a thread (rows with the time they appeared)."""

    def __init__(self, runs_dir: Path, epochs: int, subset: int | None):
        subset_arguments = ["--subset", str(subset)] if subset else []
        self.path = benchlib.cli_train(
            runs_dir, "--arch", "mlp", "--epochs", str(epochs), "--detach", *subset_arguments
        )[0]
        self.run_id = self.path.name
        self.rows: list[tuple[float, dict]] = []  # (wall time first seen, row)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._tail, daemon=True)
        self._thread.start()
        self.stopped = False
        _TRAININGS.append(self)

    def _tail(self) -> None:
        """Append every new complete line of batches.jsonl to self.rows with the wall time it was first seen."""
        path, offset, pending, seen_keys = self.path / "batches.jsonl", 0, b"", set()
        while not self._done.is_set():
            try:
                size = path.stat().st_size
                if size < offset:  # rewritten shorter: read it again, known rows are skipped
                    offset, pending = 0, b""
                with open(path, "rb") as handle:
                    handle.seek(offset)
                    chunk = handle.read()
            except OSError:
                chunk = b""
            if chunk:
                seen = time.time()
                offset += len(chunk)
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    try:
                        row = json.loads(line)
                        key = (int(row["epoch"]), int(row["batch"]))
                    except (ValueError, KeyError, TypeError):
                        continue
                    if key not in seen_keys:
                        seen_keys.add(key)
                        self.rows.append((seen, row))
            self._done.wait(TAIL_EVERY_S)

    def status(self) -> dict:
        """Return the run's status.json ({} while unreadable)."""
        try:
            return json.loads((self.path / "status.json").read_text())
        except (OSError, ValueError):
            return {}

    def wait_first_rows(self) -> None:
        """Return once the trainer has written its first batches.jsonl rows; RuntimeError if the run ends first."""
        deadline = time.monotonic() + FIRST_ROWS_TIMEOUT_S
        while not self.rows:
            state = self.status().get("state")
            if state in ("finished", "stopped", "failed"):
                log_path = self.path / "log.txt"
                log = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
                raise RuntimeError(f"run {self.run_id} ended {state} before its first batches: {self.status()}\n{log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"run {self.run_id} wrote no batches.jsonl row within {FIRST_ROWS_TIMEOUT_S:.0f} s")
            time.sleep(0.1)

    def wait_row_seen_after(self, moment: float, timeout: float = 120.0) -> None:
        """Return once a row first seen after wall time `moment` is in (a later row is written within seconds)."""
        deadline = time.monotonic() + timeout
        while not (self.rows and self.rows[-1][0] > moment + TAIL_EVERY_S) and time.monotonic() < deadline:
            time.sleep(TAIL_EVERY_S)

    def stop(self) -> None:
        """Stop the run through the CLI and wait (up to 60 s) until it has ended; stop the tailing thread."""
        if self.stopped:
            return
        self.stopped = True
        try:
            if self.status().get("state") in ("queued", "running"):
                benchlib.mnist_cli(self.path.parent, "stop", self.run_id, timeout=120)
            deadline = time.monotonic() + 60
            while self.status().get("state") in ("queued", "running") and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            self._done.set()
            self._thread.join(timeout=5)

    def steps_per_epoch(self) -> int:
        """Return the batches per epoch, from a row's epoch_progress (else progress.json's steps_per_epoch)."""
        for _, row in self.rows:
            fraction = row.get("epoch_progress", 0) - (row["epoch"] - 1)
            if 0 < fraction < 1:
                return round(row["batch"] / fraction)
        try:
            return int(json.loads((self.path / "progress.json").read_text())["steps_per_epoch"])
        except (OSError, ValueError, KeyError):
            return max(row["batch"] for _, row in self.rows)

    def timeline(self) -> tuple[list[float], list[float], float, int]:
        """Return (global batch of each row, its training seconds, wall offset, steps per epoch), sorted by batch.

        The wall time of a row is elapsed + offset; offset is the smallest (seen - elapsed) over the rows, the row
        that was seen soonest after it was written (within TAIL_EVERY_S).
        """
        steps = self.steps_per_epoch()
        points = sorted(((row["epoch"] - 1) * steps + row["batch"], row["elapsed"]) for _, row in self.rows)
        offset = min(seen - row["elapsed"] for seen, row in self.rows)
        return [p[0] for p in points], [p[1] for p in points], offset, steps


@atexit.register
def _stop_trainings() -> None:
    """Stop every run we started (Ctrl-C, a failure): they train for many epochs. Runs before the folders go."""
    for training in _TRAININGS:
        try:
            training.stop()
        except Exception as error:  # noqa: BLE001 - stop the others anyway
            print(f"could not stop run {training.run_id}: {error}")


def position_at(batches: list[float], elapsed: list[float], seconds: float) -> float | None:
    """Return the global batch the trainer was at `seconds` of training (interpolated between rows), None outside."""
    if not elapsed or not elapsed[0] <= seconds <= elapsed[-1]:
        return None
    index = bisect.bisect_left(elapsed, seconds)
    if elapsed[index] == seconds:
        return batches[index]
    e0, e1, b0, b1 = elapsed[index - 1], elapsed[index], batches[index - 1], batches[index]
    return b0 + (b1 - b0) * (seconds - e0) / (e1 - e0)


def rate(batches: list[float], elapsed: list[float], offset: float, start: float, end: float) -> float | None:
    """Return batches per second between wall times `start` and `end` (positions interpolated between rows).

    Interpolating at both ends counts the gaps between rows (validation, checkpoints) in the slice they fall in,
    so the slices of a window average to the window's figure.
    """
    first = position_at(batches, elapsed, start - offset)
    last = position_at(batches, elapsed, end - offset)
    if first is None or last is None or end <= start:
        return None
    return (last - first) / (end - start)


def written_at(batches: list[float], elapsed: list[float], offset: float, position: float) -> float | None:
    """Return the wall time the trainer reached global batch `position` (interpolated between rows)."""
    if not batches or position < batches[0]:
        return None
    index = bisect.bisect_left(batches, position)
    if index >= len(batches):
        return None  # beyond every row seen: cannot happen for a position the page read from the trainer's files
    if batches[index] == position or index == 0:
        return elapsed[index] + offset
    b0, b1, e0, e1 = batches[index - 1], batches[index], elapsed[index - 1], elapsed[index]
    return e0 + (e1 - e0) * (position - b0) / (b1 - b0) + offset


# --- CPU ------------------------------------------------------------------------------------------------


def process_table() -> dict[int, dict]:
    """Return {pid: proc_stat} of every process."""
    stats = {int(entry): benchlib.proc_stat(int(entry)) for entry in os.listdir("/proc") if entry.isdigit()}
    return {pid: stat for pid, stat in stats.items() if stat}


def subtree(table: dict[int, dict], root: int) -> set[int]:
    """Return `root` and every descendant of it in `table`."""
    children: dict[int, list[int]] = {}
    for pid, stat in table.items():
        children.setdefault(stat["ppid"], []).append(pid)
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid in table and pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, []))
    return found


def training_processes(table: dict[int, dict], run_id: str) -> set[int]:
    """Return the processes that name the run on their command line (its worker, and a supervisor if any)."""
    found = set()
    for pid in table:
        try:
            if run_id in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                found.add(pid)
        except OSError:
            pass
    return found


def machine_busy_s() -> float:
    """Return the machine's busy CPU seconds (all cores, idle and iowait left out) from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def parse_cpus(text: str | None) -> set[int]:
    """Return the CPU numbers in a list like "1" or "2,3" (empty for None)."""
    return {int(part) for part in text.split(",") if part.strip()} if text else set()


class Placement:
    """Where the browser runs: its niceness and CPUs; the server, the trainer and this script keep the other CPUs.

    In a classroom the browsers run on the students' machines, not on the one that trains: with --browser-cpus
    the tabs get CPUs of their own, so what is measured on the rest is what the studio itself costs the trainer.
    """

    def __init__(self, niceness: int = 0, cpus: set[int] | None = None):
        self.niceness, self.cpus = niceness, cpus or set()
        if self.cpus:
            rest = set(range(os.cpu_count())) - self.cpus
            if not rest:
                raise SystemExit("--browser-cpus must leave at least one CPU for the server and the trainer")
            os.sched_setaffinity(0, rest)  # inherited by the server, the CLI, its supervisor and worker

    def describe(self) -> str:
        """Return a phrase saying where the browser ran."""
        where = f"on CPU {','.join(map(str, sorted(self.cpus)))}, the rest on the others" if self.cpus else "shared"
        return where + (f", niceness {self.niceness}" if self.niceness else "")

    def apply(self, pids) -> None:
        """Give our own processes `pids` (the browser and its driver) the niceness and the CPUs asked for."""
        for pid in pids:
            try:
                if self.niceness and os.getpriority(os.PRIO_PROCESS, pid) != self.niceness:
                    os.setpriority(os.PRIO_PROCESS, pid, self.niceness)
                if self.cpus and os.sched_getaffinity(pid) != self.cpus:
                    os.sched_setaffinity(pid, self.cpus)
            except OSError:
                pass  # gone already

    def apply_to_browser(self, server_pid: int) -> None:
        """Place every process of this script's tree that is neither the server's nor this script."""
        if self.niceness or self.cpus:
            table = process_table()
            self.apply(subtree(table, os.getpid()) - subtree(table, server_pid) - {os.getpid()})


class CpuSampler:
    """Samples the CPU of the server, the browser side, the worker and the machine every CPU_EVERY_S in a thread."""

    GROUPS = ("server", "browser", "worker", "machine")

    def __init__(self, server_pid: int, run_id: str, placement: Placement):
        self.server_pid, self.run_id, self.placement = server_pid, run_id, placement
        self.samples: list[dict] = []  # {"t": wall time, group: % of one core over the interval before}
        self._previous = self._read()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _read(self) -> dict:
        """Return the wall time, every process's CPU seconds, and which pids belong to which group."""
        table = process_table()
        training = training_processes(table, self.run_id)
        server = subtree(table, self.server_pid) - training
        # This script's own tree: Playwright's driver, Chromium, the CLI calls, and the script itself.
        browser = subtree(table, os.getpid()) - server - training
        groups = {"server": server, "browser": browser, "worker": training}
        self.placement.apply(browser - {os.getpid()})
        cpu = {pid: stat["cpu_s"] for pid, stat in table.items()}
        waited = table.get(self.server_pid, {}).get("children_cpu_s", 0.0)
        return {"t": time.time(), "cpu": cpu, "groups": groups, "server_waited": waited, "machine": machine_busy_s()}

    def _sample(self) -> None:
        now = self._read()
        before, seconds = self._previous, now["t"] - self._previous["t"]
        if seconds <= 0:
            return
        sample = {"t": now["t"], "seconds": seconds}
        for group in ("server", "browser", "worker"):
            used = sum(now["cpu"][pid] - before["cpu"].get(pid, 0.0) for pid in now["groups"][group])
            if group == "server":
                used += now["server_waited"] - before["server_waited"]
            sample[group] = 100 * used / seconds
        sample["machine"] = 100 * (now["machine"] - before["machine"]) / seconds / os.cpu_count()
        self.samples.append(sample)
        self._previous = now

    def _loop(self) -> None:
        while not self._done.wait(CPU_EVERY_S):
            self._sample()

    def start(self) -> None:
        self._previous = self._read()
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join(timeout=10)
        self._sample()  # the last partial interval, up to the window's end

    def window(self, group: str) -> float | None:
        """Return the group's CPU over the whole window (time-weighted mean of the samples), % of one core."""
        total = sum(s["seconds"] for s in self.samples)
        return sum(s[group] * s["seconds"] for s in self.samples) / total if total else None


# --- Tabs -----------------------------------------------------------------------------------------------


def open_tabs(browser, url: str, count: int, place=lambda: None) -> list[dict]:
    """Open `count` tabs on `url`, each in its own context; return them with the seconds to heading and caption.

    Each tab is opened once the one before shows its heading (or after STAGGER_S), so the tabs arrive one after
    another, and the whole opening is bounded: tabs still without a caption OPEN_TIMEOUT_S after the last one
    opened stay so. A script in each page notes when the heading and the first caption appeared.
    """
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    tabs = []
    for index in range(1, count + 1):
        context = browser.new_context(viewport=harness.VIEWPORT)
        context.add_init_script(FIRST_SEEN_JS)
        context.add_init_script(MESSAGES_JS)
        page = context.new_page()
        place()  # its renderer is new: nice it and move it to the browser's CPUs before it loads the page
        page.set_default_timeout(OPEN_TIMEOUT_S * 1000)
        tab = {"tab": index, "context": context, "page": page, "first_show_s": None, "first_caption_s": None}
        tabs.append(tab)
        tab["opened"] = time.time()
        try:
            page.goto(url, wait_until="commit")
        except PlaywrightError as error:
            tab["error"] = str(error).splitlines()[0]
            continue
        with contextlib.suppress(PlaywrightTimeoutError):  # not shown yet: open the next one anyway
            page.wait_for_function(SHOWN_JS, timeout=STAGGER_S * 1000)
    deadline = time.time() + OPEN_TIMEOUT_S
    pending = list(tabs)
    while pending:
        for tab in list(pending):
            try:
                first = tab["page"].evaluate("() => window.__liveTabsFirst || {}")
            except PlaywrightError as error:
                first, tab["error"] = {}, str(error).splitlines()[0]
            if first.get("show"):
                tab["first_show_s"] = first["show"] - tab["opened"]
            if first.get("caption"):
                tab["first_caption_s"] = first["caption"] - tab["opened"]
            if tab["first_caption_s"] is not None or "error" in tab:
                pending.remove(tab)
        if not pending or time.time() > deadline:
            break
        time.sleep(1.0)
    for tab in tabs:
        print(
            f"    tab {tab['tab']}/{count}: page shown {fmt(tab['first_show_s'])} s, "
            f"progress caption {fmt(tab['first_caption_s'])} s" + (f" ({tab['error']})" if "error" in tab else ""),
            flush=True,
        )
    return tabs


def pause(tabs: list[dict], seconds: float) -> None:
    """Wait `seconds`; with tabs open, in Playwright's own waits, so its event pipe keeps being read meanwhile."""
    end = time.time() + seconds
    while (left := end - time.time()) > 0:
        if tabs:
            tabs[0]["page"].wait_for_timeout(min(500.0, left * 1000))
        else:
            time.sleep(min(0.5, left))


def start_readers(tabs: list[dict]) -> None:
    """Start a reader in every tab: the caption, read every READ_EVERY_S by a timer in the page, into a log there.

    Reading inside the page timestamps each reading when it is taken and costs no round trip, so 20 tabs are read
    as often as 3 on a busy machine (a page.evaluate per tab and reading took 0.1 s each under load).
    """
    for tab in tabs:
        tab["page"].evaluate(START_READER_JS, READ_EVERY_S * 1000)


def collect_readings(tabs: list[dict], start: float, end: float) -> None:
    """Stop every tab's reader and keep its readings taken in [start, end] as tab['readings']."""
    from playwright.sync_api import Error as PlaywrightError

    for tab in tabs:
        try:
            readings, messages = tab["page"].evaluate(COLLECT_JS)
        except PlaywrightError as error:
            readings, messages, tab["error"] = [], [], str(error).splitlines()[0]
        tab["readings"] = [r for r in readings if start <= r["t"] <= end]
        tab["messages"] = [m for m in messages if start <= m[0] <= end]
        with contextlib.suppress(PlaywrightError):
            tab["page_error"] = tab["page"].evaluate(PAGE_ERROR_JS)
        tab["window_s"] = end - start


def tab_lags(tab: dict, timeline) -> dict:
    """Return one tab's lag figures from its readings and the run's timeline."""
    batches, elapsed, offset, steps = timeline
    lags = []
    for reading in tab["readings"]:
        if reading["epoch"] is None:
            continue
        written = written_at(batches, elapsed, offset, (reading["epoch"] - 1) * steps + reading["batch"])
        if written is not None:
            lags.append(reading["t"] - written)
    message_lags = []
    for t, _, epoch, batch in tab["messages"]:
        if epoch is not None:
            written = written_at(batches, elapsed, offset, (epoch - 1) * steps + batch)
            if written is not None:
                message_lags.append(t - written)
    visibility = sorted({r["visibility"] for r in tab["readings"]})
    return {
        "tab": tab["tab"],
        "first_show_s": tab["first_show_s"],
        "first_caption_s": tab["first_caption_s"],
        "error": tab.get("error"),
        "page_error": tab.get("page_error"),
        "readings": len(tab["readings"]),
        "with_caption": sum(r["epoch"] is not None for r in tab["readings"]),
        "visibility": visibility,
        "lags_s": lags,
        "lag_median_s": median(lags),
        "lag_p95_s": percentile(lags, 95),
        "lag_max_s": max(lags) if lags else None,
        "message_lag_median_s": median(message_lags),
        "message_lag_p95_s": percentile(message_lags, 95),
        "messages_per_s": len(tab["messages"]) / tab["window_s"],
        "kib_per_s": sum(m[1] for m in tab["messages"]) / 1024 / tab["window_s"],
        "readings_raw": [[round(r["t"], 3), r["epoch"], r["batch"]] for r in tab["readings"]],
        "message_lags_s": [round(v, 3) for v in message_lags],
    }


# --- Phases ---------------------------------------------------------------------------------------------


def phase(name: str, runs_dir: Path, server, args, browser=None) -> dict:
    """Train through a warm-up and a window (with `args.tabs` tabs open when `browser` is given); return figures."""
    tabs_wanted = args.tabs if browser is not None else 0
    print(f"  phase {name}: {tabs_wanted} tab(s); starting an MLP run", flush=True)
    training = Training(runs_dir, args.epochs, args.subset)
    tabs: list[dict] = []
    try:
        training.wait_first_rows()
        if browser is not None:
            url = f"{server.url}/Train?run={training.run_id}"
            tabs = open_tabs(browser, url, tabs_wanted, lambda: args.placement.apply_to_browser(server.pid))
        pause(tabs, args.warmup)
        start_readers(tabs)
        sampler = CpuSampler(server.pid, training.run_id, args.placement)
        sampler.start()
        start = time.time()
        age = {"run_elapsed_s": training.rows[-1][1]["elapsed"], "batches_rows": len(training.rows)}
        pause(tabs, args.seconds)
        sampler.stop()
        end = time.time()
        collect_readings(tabs, start, end)
        training.wait_row_seen_after(end)  # so the window's end lies between two rows
    finally:
        for tab in tabs:
            tab["context"].close()
        training.stop()

    timeline = training.timeline()
    batches, elapsed, offset, steps = timeline
    slices = []
    cut = start
    while cut + SLICE_S <= end + 1e-6:
        slices.append(rate(batches, elapsed, offset, cut, cut + SLICE_S))
        cut += SLICE_S
    per_tab = [tab_lags(tab, timeline) for tab in tabs]
    all_lags = [lag for tab in per_tab for lag in tab["lags_s"]]
    result = {
        "phase": name,
        "tabs": tabs_wanted,
        "run_id": training.run_id,
        "steps_per_epoch": steps,
        "window_s": end - start,
        # How far the run was at the window's start: today's Train page rereads all of batches.jsonl every second.
        "at_window_start": age,
        "batches_per_s": rate(batches, elapsed, offset, start, end),
        "batches_per_s_slices": [s for s in slices if s is not None],
        "cpu_pct": {group: sampler.window(group) for group in CpuSampler.GROUPS},
        "cpu_samples": sampler.samples,
        "tab_results": per_tab,
        "lag_median_s": median(all_lags),
        "lag_p95_s": percentile(all_lags, 95),
        "read_interval_median_s": median(
            b["t"] - a["t"] for t in tabs for a, b in zip(t["readings"], t["readings"][1:], strict=False)
        ),
        "tabs_without_caption": [t["tab"] for t in per_tab if not t["with_caption"]],
    }
    cpu = result["cpu_pct"]
    print(
        f"  phase {name}: {fmt(result['batches_per_s'], 0)} batches/s, server CPU {fmt(cpu['server'], 1)} %, "
        f"browser side {fmt(cpu['browser'], 1)} %, worker {fmt(cpu['worker'], 0)} %"
        + (f", lag median {fmt(result['lag_median_s'])} s, p95 {fmt(result['lag_p95_s'])} s" if tabs else "")
        + f"; window began {age['run_elapsed_s']:.0f} s into the run ({age['batches_rows']:,} batches.jsonl rows)",
        flush=True,
    )
    return result


def warm_server(browser, server) -> float:
    """Open the Train page once in a throwaway context (MNIST loaded, pages imported); return its seconds."""
    context, page = benchlib.new_page(browser, 180_000)
    try:
        started = time.perf_counter()
        page.goto(server.url + "/Train")
        benchlib.heading(page, HEADING).wait_for(state="visible")
        harness.settled_at(page)
        benchlib.fail_on_exception(page, "Train")
        return time.perf_counter() - started
    finally:
        context.close()


# --- Report ---------------------------------------------------------------------------------------------


def spread(values: list[float], digits: int) -> list[str]:
    """Return [median, min, max] table cells."""
    values = [v for v in values if v is not None]
    if not values:
        return ["–", "–", "–"]
    return [fmt(median(values), digits), fmt(min(values), digits), fmt(max(values), digits)]


def report(args, phases: list[dict]) -> tuple[dict, list[dict]]:
    """Print the tables and target lines; return (summary figures, checks)."""
    quiet = [p for p in phases if p["tabs"] == 0]
    loaded = [p for p in phases if p["tabs"] > 0]
    n = args.tabs

    # Over several rounds, each figure is the median of the rounds' window figures.
    figures = {
        label: {
            "batches_per_s": median(p["batches_per_s"] for p in group),
            **{f"{g}_cpu_pct": median(p["cpu_pct"][g] for p in group) for g in CpuSampler.GROUPS},
        }
        for label, group in (("no_tab", quiet), ("tabs", loaded))
    }
    rows = []
    for title, key, digits, samples in (
        ("training batches/s", "batches_per_s", 0, lambda p: p["batches_per_s_slices"]),
        ("server CPU, % of one core", "server_cpu_pct", 1, lambda p: [s["server"] for s in p["cpu_samples"]]),
        ("browser, driver, this script, %", "browser_cpu_pct", 1, lambda p: [s["browser"] for s in p["cpu_samples"]]),
        ("training worker CPU, %", "worker_cpu_pct", 0, lambda p: [s["worker"] for s in p["cpu_samples"]]),
        ("machine busy, % of all cores", "machine_cpu_pct", 0, lambda p: [s["machine"] for s in p["cpu_samples"]]),
    ):
        a, b = figures["no_tab"][key], figures["tabs"][key]
        rows.append(
            [
                title,
                fmt(a, digits),
                *spread([v for p in quiet for v in samples(p)], digits),
                fmt(b, digits),
                *spread([v for p in loaded for v in samples(p)], digits),
                fmt(benchlib.ratio(b, a), 2, "x"),
            ]
        )
    benchlib.print_table(
        ["figure", "no tab", "median", "min", "max", f"{n} tabs", "median", "min", "max", "tabs / no tab"],
        rows,
        title=f"\nLive view: an MLP run trained with no tab, then with {n} tabs on /Train?run=...; window"
        f" {args.seconds:g} s after {args.warmup:g} s warm-up, {args.rounds} round(s). 'window' = over the whole"
        f" window; median/min/max over {SLICE_S:g} s slices (batches/s) or {CPU_EVERY_S:g} s samples (CPU)."
        f" Browser: {args.placement.describe()}.",
    )

    ages = [
        f"{p['phase']} {p['at_window_start']['run_elapsed_s']:.0f} s ({p['at_window_start']['batches_rows']:,} rows)"
        for p in phases
    ]
    print(f"windows began this far into their runs (batches.jsonl rows): {', '.join(ages)}\n")

    per_tab = [tab for p in loaded for tab in p["tab_results"]]
    all_lags = [lag for tab in per_tab for lag in tab["lags_s"]]
    message_lags = [lag for tab in per_tab for lag in tab["message_lags_s"]]
    shows, captions = [t["first_show_s"] for t in per_tab], [t["first_caption_s"] for t in per_tab]
    rows = [
        tab | {"label": f"{p['phase']} tab {tab['tab']}", "read": f"{tab['with_caption']}/{tab['readings']}"}
        for p in loaded
        for tab in p["tab_results"]
    ]
    rows.append(
        {
            "label": f"all {len(per_tab)} tabs (median)",
            "first_show_s": median(shows),
            "first_caption_s": median(captions),
            "read": f"{sum(t['with_caption'] for t in per_tab)}/{sum(t['readings'] for t in per_tab)}",
            "lag_median_s": median(all_lags),
            "lag_p95_s": percentile(all_lags, 95),
            "lag_max_s": max(all_lags) if all_lags else None,
            "message_lag_median_s": median(message_lags),
            "message_lag_p95_s": percentile(message_lags, 95),
            "messages_per_s": median(t["messages_per_s"] for t in per_tab),
            "kib_per_s": median(t["kib_per_s"] for t in per_tab),
            "visibility": [],
        }
    )
    benchlib.table(
        "Tabs: seconds from navigation to the page's heading and to its first progress caption (opened one after"
        " another); caption lag = reading time - when the trainer wrote that (epoch, batch), seconds; message lag ="
        " when a websocket message carrying the caption reached the page - the same; messages and KiB per second",
        [row | {"visibility": ",".join(row["visibility"])} for row in rows],
        [
            ("tab", "label"),
            ("page shown", "first_show_s", 2),
            ("first caption", "first_caption_s", 2),
            ("readings", "read"),
            ("lag median", "lag_median_s", 2),
            ("lag p95", "lag_p95_s", 2),
            ("lag max", "lag_max_s", 2),
            ("msg lag median", "message_lag_median_s", 2),
            ("msg lag p95", "message_lag_p95_s", 2),
            ("msg/s", "messages_per_s", 1),
            ("KiB/s", "kib_per_s", 1),
            ("visibility", "visibility"),
        ],
    )
    intervals = [p["read_interval_median_s"] for p in loaded]
    print(f"(each tab read every {fmt(median(intervals))} s, median; asked for every {READ_EVERY_S:g} s)")
    missing = [f"{p['phase']} tab {t}" for p in loaded for t in p["tabs_without_caption"]]
    if missing:
        print(f"tabs that never showed a progress caption: {', '.join(missing)}")
    for p in loaded:
        for tab in p["tab_results"]:
            if tab["page_error"] or tab["error"]:
                problem = " ".join((tab["page_error"] or tab["error"]).split())
                what = "the page shows an error" if tab["page_error"] else "Playwright"
                print(f"{p['phase']} tab {tab['tab']}: {what}: {problem}")

    a, b = figures["no_tab"]["batches_per_s"], figures["tabs"]["batches_per_s"]
    throughput_ratio = benchlib.ratio(b, a)
    print(
        f"\nthroughput: {fmt(b, 0)} batches/s with {n} tabs / {fmt(a, 0)} without = {fmt(throughput_ratio, 2)}x;"
        f" server CPU {fmt(figures['tabs']['server_cpu_pct'], 1)} % of one core with {n} tabs"
        f" ({fmt(figures['no_tab']['server_cpu_pct'], 1)} % without)"
    )
    worst = max((t["lag_p95_s"] for t in per_tab if t["lag_p95_s"] is not None), default=None)
    server_cpu = figures["tabs"]["server_cpu_pct"]
    checks = [
        benchlib.check(
            f"throughput with {n} tabs / no tab",
            throughput_ratio,
            TARGET_THROUGHPUT_RATIO,
            higher_is_better=True,
            unit=" x",
        ),
        benchlib.check(
            f"server CPU with {n} tabs", server_cpu, TARGET_SERVER_CPU_PCT, higher_is_better=False, unit=" %"
        ),
        benchlib.check("worst tab's p95 caption lag", worst, TARGET_LAG_P95_S, higher_is_better=False, unit=" s"),
        benchlib.check("tabs that never showed a progress caption", len(missing), 0, higher_is_better=False),
    ]
    summary = {
        **figures,
        "throughput_ratio": throughput_ratio,
        "lag_median_s": median(all_lags),
        "lag_p95_s": percentile(all_lags, 95),
        "message_lag_median_s": median(message_lags),
        "message_lag_p95_s": percentile(message_lags, 95),
        "worst_tab_lag_p95_s": worst,
        "first_show_median_s": median(shows),
        "first_caption_median_s": median(captions),
        "tabs_without_caption": missing,
    }
    return summary, checks


def headline(results: dict) -> dict:
    """Return throughput with tabs / without, server CPU with tabs and the worst tab's p95 caption lag."""
    figures = ("throughput_ratio", "worst_tab_lag_p95_s", "tabs_without_caption")
    return {key: results[key] for key in figures} | {"server_cpu_pct": results["tabs"]["server_cpu_pct"]}


def main() -> None:
    """Run --rounds of phase A (no tab) and phase B (--tabs tabs), print the tables, write live_tabs.json."""
    parser = benchlib.parser(__doc__.split("\n\n")[0], tabs=3, seconds=15.0, warmup=5.0)
    parser.add_argument("--tabs", type=int, default=20, help="Chromium tabs in phase B (default 20)")
    parser.add_argument("--seconds", type=float, default=40.0, help="measurement window per phase (default 40)")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds of training before the window (10)")
    parser.add_argument("--rounds", type=int, default=1, help="phase A, phase B pairs (default 1)")
    parser.add_argument("--epochs", type=int, default=1000, help="epochs of each run; it is stopped after its window")
    parser.add_argument("--subset", type=int, default=None, help="train on the first N images (default all 54,000)")
    parser.add_argument(
        "--browser-nice",
        type=int,
        default=0,
        help="niceness of Chromium and its driver during the window (default 0; e.g. 19 so the browser on this machine"
        " takes less from training and the server: a lower-bound view of the browser's share)",
    )
    parser.add_argument(
        "--browser-cpus",
        help="CPUs for Chromium, e.g. 1: the server, the trainer and this script keep the others, in both phases"
        " (as in a classroom, where the browsers are the students' machines); default: all CPUs shared",
    )
    args = benchlib.parse(parser)
    args.placement = Placement(args.browser_nice, parse_cpus(args.browser_cpus))
    from playwright.sync_api import sync_playwright

    runs_dir = benchlib.temp_runs_dir("live-tabs")
    server = harness.start_server(runs_dir, benchlib.RESULTS_DIR / "live_tabs-server.log", timeout=120)
    phases = []
    try:
        with sync_playwright() as playwright:
            browser = harness.launch_chromium(playwright, *UNTHROTTLED)
            try:
                print(f"server on port {server.port}; warm-up visit of /Train: {warm_server(browser, server):.2f} s")
            finally:
                browser.close()
            for round_number in range(1, args.rounds + 1):
                print(f"round {round_number}/{args.rounds}", flush=True)
                phases.append(phase(f"A{round_number}", runs_dir, server, args))
                browser = harness.launch_chromium(playwright, *UNTHROTTLED)
                args.placement.apply_to_browser(server.pid)
                try:
                    phases.append(phase(f"B{round_number}", runs_dir, server, args, browser))
                finally:
                    browser.close()
    finally:
        server.stop()

    summary, checks = report(args, phases)
    for p in phases:
        for tab in p["tab_results"]:
            tab["lags_s"] = [round(v, 3) for v in tab["lags_s"]]
    benchlib.write_results(
        "live_tabs",
        {
            "settings": {
                "tabs": args.tabs,
                "seconds": args.seconds,
                "warmup_s": args.warmup,
                "rounds": args.rounds,
                "epochs": args.epochs,
                "subset": args.subset,
                "quick": args.quick,
                "read_every_s": READ_EVERY_S,
                "browser_nice": args.browser_nice,
                "browser_cpus": sorted(args.placement.cpus),
                "placement": args.placement.describe(),
                "slice_s": SLICE_S,
                "browser_args": BROWSER_ARGS,
            },
            "runs_dir": str(runs_dir),
            **summary,
            "phases": phases,
            "checks": checks,
        },
        args.out,
        headline,
    )


if __name__ == "__main__":
    main()
