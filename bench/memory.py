"""Peak memory of the Streamlit server with the dataset and four models loaded.

Four tiny finished runs (mlp, cnn, deeper_cnn, deeper_cnn_bn; 600 images, 1 epoch) are made first.
The server starts on them, Chromium opens the home page (MNIST loaded), then the Draw page, and
clicks "Test digit": the Draw page then predicts with every finished run, so all four models are
loaded. VmHWM (peak resident set) and VmRSS of the server process come from /proc/<pid>/status.
"""

from __future__ import annotations

import time
from pathlib import Path

import benchlib
from benchlib import fmt, median

harness = benchlib.browser_harness()
ARCHITECTURES = ["mlp", "cnn", "deeper_cnn", "deeper_cnn_bn"]
STAGES = {"started": "server started", "home": "home page (MNIST loaded)", "draw": "Draw + 4 models predicted"}


def proc_memory(pid: int) -> dict:
    """Return VmHWM (peak) and VmRSS of process `pid`, in MiB, from /proc/<pid>/status."""
    lines = (line.partition(":") for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return {key: int(rest.split()[0]) / 1024 for key, _, rest in lines if key in ("VmHWM", "VmRSS")}  # kB -> MiB


def one_server(browser, runs_dir, log_dir, repeat: int, models: int) -> dict:
    """Return the server's memory after start-up, after the home page and after every model predicted."""
    context, page = benchlib.new_page(browser, 180_000)
    server = harness.start_server(runs_dir, log_dir / f"memory-server-{repeat}.log", timeout=120)
    try:
        readings = {"started": proc_memory(server.pid)}
        page.goto(server.url + "/")
        page.locator('[data-testid="stMetricLabel"]', has_text="Training images").first.wait_for(state="visible")
        harness.settled_at(page)
        readings["home"] = proc_memory(server.pid)
        page.goto(server.url + "/Draw")
        benchlib.heading(page, "Draw").wait_for(state="visible")
        harness.settled_at(page)
        started = time.perf_counter()
        page.get_by_role("button", name="Test digit").click()
        page.get_by_role("heading", name="Every trained model").wait_for(state="visible")
        harness.settled_at(page)
        seconds = time.perf_counter() - started
        benchlib.fail_on_exception(page, "Draw")
        # One probability chart for the chosen model, one per model in "Every trained model".
        charts = page.locator('[data-testid="stPlotlyChart"]').count()
        if charts < models + 1:
            raise RuntimeError(f"the Draw page shows {charts} charts, expected {models + 1}: not every model predicted")
        readings["draw"] = proc_memory(server.pid)
        page.screenshot(path=str(log_dir / f"memory-draw-{repeat}.png"), full_page=True)
        return {"repeat": repeat, "readings": readings, "test_digit_s": seconds, "charts": charts}
    finally:
        context.close()
        server.stop()


def headline(results: dict) -> dict:
    """Return the server's peak and resident memory after the four models predicted."""
    return {"peak_mib": results["peak_mib"], "rss_mib": results["rss_mib"]}


def main() -> None:
    """Measure the server's memory --repeats times, print the table, write bench/results/memory.json."""
    parser = benchlib.parser(__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=1, help="fresh servers (default 1)")
    parser.add_argument("--train-subset", type=int, default=600, help="images the tiny runs train on (default 600)")
    args = benchlib.parse(parser)

    runs_dir = benchlib.temp_runs_dir("memory")
    print(f"tiny runs: {', '.join(ARCHITECTURES)} ({args.train_subset} images, 1 epoch)", flush=True)
    benchlib.tiny_runs(runs_dir, ARCHITECTURES, train_subset=args.train_subset)
    servers = []
    with benchlib.chromium() as browser:
        for repeat in range(1, args.repeats + 1):
            servers.append(one_server(browser, runs_dir, benchlib.RESULTS_DIR, repeat, len(ARCHITECTURES)))
            draw = servers[-1]["readings"]["draw"]
            print(f"  server {repeat}: VmHWM {draw['VmHWM']:.0f} MiB, VmRSS {draw['VmRSS']:.0f} MiB", flush=True)

    summary = {
        stage: {key: median(s["readings"][stage][key] for s in servers) for key in ("VmHWM", "VmRSS")}
        for stage in STAGES
    }
    benchlib.print_table(
        ["after", "VmHWM (peak)", "VmRSS"],
        [[label, fmt(summary[stage]["VmHWM"], 0), fmt(summary[stage]["VmRSS"], 0)] for stage, label in STAGES.items()],
        title=f"\nStreamlit server memory, MiB (median of {args.repeats})",
    )
    peak = f"the dataset and {len(ARCHITECTURES)} models"
    print(f"peak RSS with {peak}: {summary['draw']['VmHWM']:.0f} MiB")
    benchlib.write_results(
        "memory",
        {
            "settings": {"repeats": args.repeats, "runs": ARCHITECTURES, "train_subset": args.train_subset},
            "peak_mib": summary["draw"]["VmHWM"],
            "rss_mib": summary["draw"]["VmRSS"],
            "stages": summary,
            "servers": servers,
            "checks": [],
            "note": f"peak RSS of the server with {peak} {summary['draw']['VmHWM']:.0f} MiB",  # run_all's summary
        },
        args.out,
        headline,
    )


if __name__ == "__main__":
    main()
