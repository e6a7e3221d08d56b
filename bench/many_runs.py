"""As runs pile up: how long Home, Train and Compare take to render in Chromium with N finished runs on disk.

One real tiny run is trained first through the CLI (`python -m mnist_core train --arch mlp --epochs 1 --subset
600`) and kept, model and all. The other N - 1 runs are synthetic finished runs written in its shape (its own
config.json, status.json, progress.json, epochs.csv and batches.jsonl, with 3 epochs of plausible numbers over the
54,000 images, no model), so the files are always today's format. A fresh `streamlit run dashboard.py` serves the
folder. Chromium opens Home by URL (the first visit: the server loads MNIST), then Train and Compare by a click in
the sidebar (their first visits), then --repeats rounds of clicks Home, Train, Compare (warm), then --repeats rounds
of loading each page's URL afresh (a new session each time, warm server). A visit ends when the page's heading is
shown and its script run is done (the browser tests' APP_DONE: no script running, no spinner or skeleton, images
loaded) and has stayed done for 300 ms. The server's CPU seconds over each visit (from /proc) stand for the
server-side time.
"""

from __future__ import annotations

import csv
import io
import json
import math
import random
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import benchlib
from benchlib import fmt, median

from tests.e2e.streamlit_browser import APP_DONE

# (sidebar link text, URL path, heading text)
PAGES = [("Home", "/", "MNIST studio"), ("Train", "/Train", "Train"), ("Compare", "/Compare", "Compare")]
TARGET_WARM_S = 1.0
SYNTHETIC_EPOCHS = 3
TRAIN_IMAGES = 54_000  # a synthetic run trained on all of them
RUN_SPACING_S = 7 * 60  # synthetic runs are this far apart, the oldest first
VISIT_TIMEOUT_MS = 300_000
SETTLE_MS = benchlib.SETTLE_MS
# Resolves once APP_DONE has held for `settle` ms; returns how long ago it began to hold.
SETTLED_DONE_JS = """([settle, timeout]) => new Promise((resolve, reject) => {
  const done = APP_DONE_FUNCTION;
  const started = performance.now();
  let since = null;
  const timer = setInterval(() => {
    const now = performance.now();
    if (now - started > timeout) { clearInterval(timer); reject(new Error('the page never finished its run')); }
    if (!done()) { since = null; return; }
    if (since === null) since = now;
    if (now - since >= settle) { clearInterval(timer); resolve(now - since); }
  }, 10);
})""".replace("APP_DONE_FUNCTION", APP_DONE.strip())


def real_run(runs_dir: Path) -> Path:
    """Train the one real tiny run through the CLI; return its folder."""
    output = benchlib.mnist_cli(runs_dir, "train", "--arch", "mlp", "--epochs", "1", "--subset", "600")
    match = re.search(r"^run (\S+?):", output, re.MULTILINE)
    path = runs_dir / match.group(1) if match else max(p for p in runs_dir.iterdir() if p.is_dir())
    state = json.loads((path / "status.json").read_text()).get("state")
    if state != "finished":
        raise RuntimeError(f"the tiny run {path.name} ended {state}:\n{output[-2000:]}")
    return path


def read_shape(path: Path) -> dict:
    """Return the real run's files as templates: config, status, progress, the epochs.csv header, a batch row."""
    with open(path / "epochs.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        epoch_rows = list(reader)
        header = list(reader.fieldnames or [])
    batch_lines = [line for line in (path / "batches.jsonl").read_text().splitlines() if line.strip()]
    progress = path / "progress.json"
    return {
        "config": json.loads((path / "config.json").read_text()),
        "status": json.loads((path / "status.json").read_text()),
        "progress": json.loads(progress.read_text()) if progress.exists() else None,
        "epochs_header": header,
        "epoch_row": epoch_rows[-1] if epoch_rows else {},
        "batch_row": json.loads(batch_lines[-1]) if batch_lines else None,
    }


def architectures(runs_dir: Path) -> list[str]:
    """Return the architecture keys the CLI lists (`python -m mnist_core architectures`, first column)."""
    output = benchlib.mnist_cli(runs_dir, "architectures")
    return [line.split()[0] for line in output.splitlines() if line.strip()]


def iso(moment: datetime) -> str:
    """Return a UTC time the way status.json writes it (ISO 8601, milliseconds)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def synthetic_run(root: Path, shape: dict, index: int, created: datetime, architecture: str, rng) -> None:
    """Write one synthetic finished run of SYNTHETIC_EPOCHS epochs in the real run's shape."""
    config = dict(shape["config"])
    updates = {"architecture": architecture, "epochs": SYNTHETIC_EPOCHS, "seed": index % 1000, "train_subset": None}
    config.update({key: value for key, value in updates.items() if key in config})
    batch_size = int(config.get("batch_size") or 64)
    steps = math.ceil(TRAIN_IMAGES / batch_size)
    learning_rate = config.get("learning_rate", 1e-3)
    epoch_seconds = rng.uniform(4, 60)

    epochs, elapsed, accuracy = [], 0.0, rng.uniform(0.80, 0.95)
    for epoch in range(1, SYNTHETIC_EPOCHS + 1):
        accuracy = min(0.995, accuracy + rng.uniform(0.005, 0.03))
        seconds = epoch_seconds * rng.uniform(0.9, 1.1)
        elapsed += seconds + rng.uniform(0.02, 0.2)
        values = {
            "epoch": epoch,
            "loss": round(-math.log(accuracy) * rng.uniform(1.5, 2.5), 6),
            "accuracy": round(accuracy, 6),
            "val_loss": round(-math.log(accuracy) * rng.uniform(1.2, 2.2), 6),
            "val_accuracy": round(min(0.997, accuracy + rng.uniform(-0.01, 0.01)), 6),
            "seconds": round(seconds, 3),
            "elapsed": round(elapsed, 3),
            "learning_rate": learning_rate,
        }
        epochs.append(
            {column: values.get(column, shape["epoch_row"].get(column, "")) for column in shape["epochs_header"]}
        )
    best = max(row["val_accuracy"] for row in epochs) if "val_accuracy" in shape["epochs_header"] else None

    started = created + timedelta(milliseconds=rng.randint(3, 30))
    status = dict(shape["status"])
    status.update(
        state="finished",
        error=None,
        pid=None,
        created=iso(created),
        started=iso(started),
        ended=iso(started + timedelta(seconds=elapsed + rng.uniform(2, 6))),
        epochs_done=SYNTHETIC_EPOCHS,
        best_val_accuracy=best,
    )

    path = root / f"{created.strftime('%Y%m%d-%H%M%S')}-{architecture}-{rng.getrandbits(16):04x}"
    path.mkdir()
    (path / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    (path / "status.json").write_text(json.dumps(status, indent=2, sort_keys=True) + "\n")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=shape["epochs_header"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(epochs)
    (path / "epochs.csv").write_text(buffer.getvalue())

    # The running curve: a row every 25 batches and at each epoch's end, as the trainer writes it.
    if shape["batch_row"] is not None:
        lines, previous = [], 0.0
        for row in epochs:
            epoch, per_batch = row["epoch"], row["seconds"] / steps
            for batch in [*range(25, steps, 25), steps]:
                values = {
                    "epoch": epoch,
                    "batch": batch,
                    "epoch_progress": round(epoch - 1 + batch / steps, 5),
                    "loss": round(row["loss"] * (1.3 - 0.3 * batch / steps), 6),  # falling through the epoch
                    "accuracy": round(row["accuracy"] * (0.98 + 0.02 * batch / steps), 6),
                    "elapsed": round(previous + batch * per_batch, 3),
                }
                lines.append(json.dumps({key: values.get(key, shape["batch_row"][key]) for key in shape["batch_row"]}))
            previous = row["elapsed"]
        (path / "batches.jsonl").write_text("\n".join(lines) + "\n")
    if shape["progress"] is not None:
        progress = dict(shape["progress"])
        last = epochs[-1]
        updates = {
            "epoch": SYNTHETIC_EPOCHS,
            "batch": steps,
            "epoch_progress": float(SYNTHETIC_EPOCHS),
            "steps_per_epoch": steps,
            "epochs": SYNTHETIC_EPOCHS,
            "loss": last.get("loss"),
            "accuracy": last.get("accuracy"),
            "elapsed": last.get("elapsed"),
            "epoch_elapsed": last.get("seconds"),
        }
        progress.update({key: value for key, value in updates.items() if key in progress})
        (path / "progress.json").write_text(json.dumps(progress, indent=2, sort_keys=True) + "\n")


def make_runs(count: int, seed: int = 0) -> tuple[Path, str]:
    """Return (runs folder, the real run's id): one real tiny run and count - 1 synthetic ones, all finished."""
    root = benchlib.temp_runs_dir("many-runs")
    real = real_run(root)
    shape = read_shape(real)
    arches = architectures(root)
    rng = random.Random(seed)
    newest = datetime.strptime("-".join(real.name.split("-")[:2]), "%Y%m%d-%H%M%S").astimezone()
    for index in range(count - 1):
        created = newest - timedelta(seconds=RUN_SPACING_S * (count - 1 - index))  # distinct, oldest first
        synthetic_run(root, shape, index, created, arches[index % len(arches)], rng)
    return root, real.name


def settled_done_at(page) -> float:
    """Return the perf_counter time the page's run was done (and then stayed done SETTLE_MS)."""
    done_for_ms = page.evaluate(SETTLED_DONE_JS, [SETTLE_MS, VISIT_TIMEOUT_MS])
    return time.perf_counter() - done_for_ms / 1000


def visit(page, server_pid: int, how: str, title: str, url: str, heading_text: str) -> dict:
    """Return the seconds and server CPU seconds of one visit: a sidebar click ('click') or a URL load ('load')."""
    before = benchlib.proc_stat(server_pid)["cpu_s"]
    started = time.perf_counter()
    if how == "click":
        benchlib.sidebar_link(page, title).click()
    else:
        page.goto(url)
    benchlib.heading(page, heading_text).wait_for(state="visible")
    done = settled_done_at(page)
    cpu = benchlib.proc_stat(server_pid)["cpu_s"] - before
    benchlib.fail_on_exception(page, title)
    return {"s": done - started, "server_cpu_s": cpu}


def finished_shown(page) -> str | None:
    """Return the value of Home's 'finished' runs metric, if the page shows one (a check that all runs are seen)."""
    metrics = page.locator('[data-testid="stMetric"]', has_text="finished")
    if not metrics.count():
        return None
    return metrics.first.locator('[data-testid="stMetricValue"]').inner_text().strip()


def measure(browser, runs_dir: Path, repeats: int, log_dir: Path) -> dict:
    """Return the first, warm-click and URL-load visits of every page on a fresh server."""
    port = benchlib.free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = log_dir / "many_runs-server.log"
    server = benchlib.start_server(runs_dir, port, log_path)
    context = browser.new_context(viewport=benchlib.VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(VISIT_TIMEOUT_MS)
    visits = {title: {"first": None, "click": [], "load": []} for title, _, _ in PAGES}
    try:
        benchlib.wait_healthy(port, server)
        for index, (title, path, heading_text) in enumerate(PAGES):
            how = "load" if index == 0 else "click"
            visits[title]["first"] = visit(page, server.pid, how, title, base + path, heading_text)
            print(f"  first visit of {title}: {visits[title]['first']['s']:.2f} s", flush=True)
            if index == 0:
                visits[title]["finished_metric"] = finished_shown(page)
        for how in ("click", "load"):
            for repeat in range(1, repeats + 1):
                line = []
                for title, path, heading_text in PAGES:
                    result = visit(page, server.pid, how, title, base + path, heading_text)
                    visits[title][how].append(result)
                    line.append(f"{title} {result['s']:.2f}")
                print(f"  {how} {repeat}/{repeats}: " + ", ".join(line) + " s", flush=True)
        page.screenshot(path=str(log_dir / "many_runs-last.png"), full_page=True)
        return visits
    except Exception:
        page.screenshot(path=str(log_dir / "many_runs-failure.png"), full_page=True)
        print(f"server log: {log_path}; screenshot: {log_dir / 'many_runs-failure.png'}")
        raise
    finally:
        context.close()
        benchlib.stop_server(server)


def main() -> None:
    """Make the runs, time the pages, print the table and target lines, write bench/results/many_runs.json."""
    parser = benchlib.parser(__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, help="finished runs on disk, the real one included (default 1000)")
    parser.add_argument("--repeats", type=int, help="warm visits of each page, per kind (default 5)")
    parser.add_argument("--quick", action="store_true", help="smoke-test scale: 200 runs, 3 repeats (unless given)")
    args = parser.parse_args()
    # --quick changes the defaults; a flag given explicitly wins.
    if args.runs is None:
        args.runs = 200 if args.quick else 1000
    if args.repeats is None:
        args.repeats = 3 if args.quick else 5
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    benchlib.setup(args)
    sync_playwright = benchlib.require_browser()
    log_dir = benchlib.RESULTS_DIR
    log_dir.mkdir(parents=True, exist_ok=True)

    with benchlib.Stopwatch() as making:
        runs_dir, real_id = make_runs(args.runs)
    print(f"{args.runs} finished runs in {runs_dir} ({making.seconds:.1f} s; real run {real_id})", flush=True)
    with sync_playwright() as playwright:
        browser = benchlib.launch_browser(playwright)
        try:
            visits = measure(browser, runs_dir, args.repeats, log_dir)
        finally:
            browser.close()

    rows, pages = [], {}
    for title, _, _ in PAGES:
        v = visits[title]
        clicks, loads = [x["s"] for x in v["click"]], [x["s"] for x in v["load"]]
        pages[title] = {
            "first_s": v["first"]["s"],
            "first_server_cpu_s": v["first"]["server_cpu_s"],
            "click_median_s": median(clicks),
            "click_min_s": min(clicks),
            "click_max_s": max(clicks),
            "click_server_cpu_s": median(x["server_cpu_s"] for x in v["click"]),
            "load_median_s": median(loads),
            "load_min_s": min(loads),
            "load_max_s": max(loads),
            "load_server_cpu_s": median(x["server_cpu_s"] for x in v["load"]),
        }
        p = pages[title]
        rows.append(
            [
                title,
                fmt(p["first_s"]),
                fmt(p["click_median_s"]),
                fmt(p["click_min_s"]),
                fmt(p["click_max_s"]),
                fmt(p["click_server_cpu_s"]),
                fmt(p["load_median_s"]),
                fmt(p["load_min_s"]),
                fmt(p["load_max_s"]),
                fmt(p["load_server_cpu_s"]),
            ]
        )
    print(
        f"\nPages with {args.runs:,} finished runs on disk, seconds to heading shown and script run done"
        f" (warm: median, min, max of {args.repeats}); server CPU = the server's CPU seconds over the visit"
    )
    benchlib.print_table(
        [
            "page",
            "first visit",
            "warm click",
            "min",
            "max",
            "server CPU",
            "URL load",
            "min",
            "max",
            "server CPU",
        ],
        rows,
    )
    print("(first visits: Home by URL on a fresh server, MNIST loading included; Train and Compare by a click)")
    shown = visits["Home"].get("finished_metric")
    if shown is not None and shown.replace(",", "") != str(args.runs):
        print(f"note: Home's 'finished' metric shows {shown}, not {args.runs}")
    checks = [
        benchlib.check(
            f"{title} warm click, {args.runs:,} runs",
            pages[title]["click_median_s"],
            TARGET_WARM_S,
            higher_is_better=False,
            unit=" s",
        )
        for title, _, _ in PAGES
    ]
    benchlib.write_results(
        "many_runs",
        {
            "settings": {"runs": args.runs, "repeats": args.repeats, "quick": args.quick, "settle_ms": SETTLE_MS},
            "runs_dir": str(runs_dir),
            "real_run": real_id,
            "make_runs_s": making.seconds,
            "finished_metric_shown": shown,
            "pages": pages,
            "visits": visits,
            "checks": checks,
        },
        args.out,
    )


if __name__ == "__main__":
    main()
