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
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import benchlib
from benchlib import median

harness = benchlib.browser_harness()
# (sidebar link text, URL path, heading text)
PAGES = [("Home", "/", "MNIST studio"), ("Train", "/Train", "Train"), ("Compare", "/Compare", "Compare")]
TARGET_WARM_S = 1.0
SYNTHETIC_EPOCHS = 3
TRAIN_IMAGES = 54_000  # a synthetic run trained on all of them
RUN_SPACING_S = 7 * 60  # synthetic runs are this far apart, the oldest first
VISIT_TIMEOUT_MS = 300_000


def real_run(runs_dir: Path) -> Path:
    """Train the one real tiny run through the CLI; return its folder."""
    path, output = benchlib.cli_train(runs_dir, "--arch", "mlp", "--epochs", "1", "--subset", "600")
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


def visit(page, server_pid: int, how: str, title: str, url: str, heading_text: str) -> dict:
    """Return the seconds and server CPU seconds of one visit: a sidebar click ('click') or a URL load ('load')."""
    before = benchlib.proc_stat(server_pid)["cpu_s"]
    started = time.perf_counter()
    if how == "click":
        benchlib.sidebar_link(page, title).click()
    else:
        page.goto(url)
    benchlib.heading(page, heading_text).wait_for(state="visible")
    done = harness.settled_at(page, harness.APP_DONE, timeout_ms=VISIT_TIMEOUT_MS)
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
    log_path = log_dir / "many_runs-server.log"
    server = harness.start_server(runs_dir, log_path, timeout=120)
    base = server.url
    context, page = benchlib.new_page(browser, VISIT_TIMEOUT_MS)
    visits = {title: {"first": None, "click": [], "load": []} for title, _, _ in PAGES}
    try:
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
        server.stop()


def headline(results: dict) -> dict:
    """Return each page's first visit and median warm click and URL load, with the runs on disk."""
    figures = ("first_s", "click_median_s", "load_median_s")
    return {"runs": results["settings"]["runs"]} | {
        title: {key: page[key] for key in figures} for title, page in results["pages"].items()
    }


def main() -> None:
    """Make the runs, time the pages, print the table and target lines, write bench/results/many_runs.json."""
    parser = benchlib.parser(__doc__.split("\n\n")[0], runs=200, repeats=3)
    parser.add_argument("--runs", type=int, default=1000, help="finished runs on disk, the real one included (1000)")
    parser.add_argument("--repeats", type=int, default=5, help="warm visits of each page, per kind (default 5)")
    args = benchlib.parse(parser)
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    with benchlib.Stopwatch() as making:
        runs_dir, real_id = make_runs(args.runs)
    print(f"{args.runs} finished runs in {runs_dir} ({making.seconds:.1f} s; real run {real_id})", flush=True)
    with benchlib.chromium() as browser:
        visits = measure(browser, runs_dir, args.repeats, benchlib.RESULTS_DIR)

    pages, columns = {}, [("page", "page"), ("first visit", "first_s", 2)]
    for title, _, _ in PAGES:
        v = visits[title]
        pages[title] = {"first_s": v["first"]["s"], "first_server_cpu_s": v["first"]["server_cpu_s"]}
        for how in ("click", "load"):
            seconds, figures = [x["s"] for x in v[how]], pages[title]
            figures |= {f"{how}_median_s": median(seconds), f"{how}_min_s": min(seconds), f"{how}_max_s": max(seconds)}
            figures[f"{how}_server_cpu_s"] = median(x["server_cpu_s"] for x in v[how])
    for how, label in (("click", "warm click"), ("load", "URL load")):
        columns += [(label, f"{how}_median_s", 2), ("min", f"{how}_min_s", 2), ("max", f"{how}_max_s", 2)]
        columns.append(("server CPU", f"{how}_server_cpu_s", 2))
    benchlib.table(
        f"\nPages with {args.runs:,} finished runs on disk, seconds to heading shown and script run done"
        f" (warm: median, min, max of {args.repeats}); server CPU = the server's CPU seconds over the visit",
        [{"page": title, **figures} for title, figures in pages.items()],
        columns,
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
            "settings": {
                "runs": args.runs,
                "repeats": args.repeats,
                "quick": args.quick,
                "settle_ms": harness.SETTLE_MS,
            },
            "runs_dir": str(runs_dir),
            "real_run": real_id,
            "make_runs_s": making.seconds,
            "finished_metric_shown": shown,
            "pages": pages,
            "visits": visits,
            "checks": checks,
        },
        args.out,
        headline,
    )


if __name__ == "__main__":
    main()
