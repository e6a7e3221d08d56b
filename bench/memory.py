"""Peak memory of the Streamlit server with the dataset and four models loaded.

Four tiny finished runs (mlp, cnn, deeper_cnn, deeper_cnn_bn; 600 images, 1 epoch) are made first.
The server starts on them, Chromium opens the home page (MNIST loaded), then the Draw page, and
clicks "Test digit": the Draw page then predicts with every finished run, so all four models are
loaded. VmHWM (peak resident set) and VmRSS of the server process come from /proc/<pid>/status.
"""

from __future__ import annotations

import time

import benchlib
from benchlib import fmt, median

ARCHITECTURES = ["mlp", "cnn", "deeper_cnn", "deeper_cnn_bn"]


def one_server(browser, runs_dir, log_dir, repeat: int, models: int) -> dict:
    """Return the server's memory after start-up, after the home page and after every model predicted."""
    port = benchlib.free_port()
    context = browser.new_context(viewport=benchlib.VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(180_000)
    server = benchlib.start_server(runs_dir, port, log_dir / f"memory-server-{repeat}.log")
    try:
        benchlib.wait_healthy(port, server)
        readings = {"started": benchlib.proc_memory(server.pid)}
        page.goto(f"http://127.0.0.1:{port}/")
        page.locator('[data-testid="stMetricLabel"]', has_text="Training images").first.wait_for(state="visible")
        benchlib.idle_at(page)
        readings["home"] = benchlib.proc_memory(server.pid)
        page.goto(f"http://127.0.0.1:{port}/Draw")
        benchlib.heading(page, "Draw").wait_for(state="visible")
        benchlib.idle_at(page)
        started = time.perf_counter()
        page.get_by_role("button", name="Test digit").click()
        page.get_by_role("heading", name="Every trained model").wait_for(state="visible")
        benchlib.idle_at(page)
        seconds = time.perf_counter() - started
        benchlib.fail_on_exception(page, "Draw")
        # One probability chart for the chosen model, one per model in "Every trained model".
        charts = page.locator('[data-testid="stPlotlyChart"]').count()
        if charts < models + 1:
            raise RuntimeError(f"the Draw page shows {charts} charts, expected {models + 1}: not every model predicted")
        readings["draw"] = benchlib.proc_memory(server.pid)
        page.screenshot(path=str(log_dir / f"memory-draw-{repeat}.png"), full_page=True)
        return {"repeat": repeat, "readings": readings, "test_digit_s": seconds, "charts": charts}
    finally:
        context.close()
        benchlib.stop_server(server)


def main() -> None:
    """Measure the server's memory --repeats times, print the table, write bench/results/memory.json."""
    parser = benchlib.parser(__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=1, help="fresh servers (default 1)")
    parser.add_argument("--train-subset", type=int, default=600, help="images the tiny runs train on (default 600)")
    args = parser.parse_args()
    benchlib.setup(args)
    sync_playwright = benchlib.require_browser()

    runs_dir = benchlib.temp_runs_dir("memory")
    print(f"tiny runs: {', '.join(ARCHITECTURES)} ({args.train_subset} images, 1 epoch)", flush=True)
    benchlib.tiny_runs(runs_dir, ARCHITECTURES, train_subset=args.train_subset)
    log_dir = benchlib.RESULTS_DIR
    log_dir.mkdir(parents=True, exist_ok=True)
    servers = []
    with sync_playwright() as playwright:
        browser = benchlib.launch_browser(playwright)
        try:
            for repeat in range(1, args.repeats + 1):
                servers.append(one_server(browser, runs_dir, log_dir, repeat, len(ARCHITECTURES)))
                draw = servers[-1]["readings"]["draw"]
                print(f"  server {repeat}: VmHWM {draw['VmHWM']:.0f} MiB, VmRSS {draw['VmRSS']:.0f} MiB", flush=True)
        finally:
            browser.close()

    stages = {"started": "server started", "home": "home page (MNIST loaded)", "draw": "Draw + 4 models predicted"}
    print(f"\nStreamlit server memory, MiB (median of {args.repeats})")
    summary = {
        stage: {key: median(s["readings"][stage][key] for s in servers) for key in ("VmHWM", "VmRSS")}
        for stage in stages
    }
    benchlib.print_table(
        ["after", "VmHWM (peak)", "VmRSS"],
        [[label, fmt(summary[stage]["VmHWM"], 0), fmt(summary[stage]["VmRSS"], 0)] for stage, label in stages.items()],
    )
    print(f"peak RSS with the dataset and {len(ARCHITECTURES)} models: {summary['draw']['VmHWM']:.0f} MiB")
    benchlib.write_results(
        "memory",
        {
            "settings": {"repeats": args.repeats, "runs": ARCHITECTURES, "train_subset": args.train_subset},
            "peak_mib": summary["draw"]["VmHWM"],
            "rss_mib": summary["draw"]["VmRSS"],
            "stages": summary,
            "servers": servers,
            "checks": [],
        },
        args.out,
    )


if __name__ == "__main__":
    main()
