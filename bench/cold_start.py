"""Dashboard cold start and page switches, in a real `streamlit run dashboard.py` and headless Chromium.

Home: seconds from starting the server process to the "Training images" metric visible in the browser
(server start-up, imports, MNIST loading, first render). Pages: seconds from a click on the page's link
in the sidebar navigation to its title heading visible and the app idle (no script running, for
300 ms), on a first visit (cold: the page's imports and data) and a second visit (cached). The runs
folder holds tiny finished runs made first, so every page has content. Each repeat starts a fresh
server and a fresh browser context; medians over repeats are reported.
"""

from __future__ import annotations

import time

import benchlib
from benchlib import fmt, median

harness = benchlib.browser_harness()
# Sidebar order; Home last, so its visits are link clicks back from another page (it is already loaded).
PAGES = ["Dataset", "Train", "Compare", "Evaluate", "Draw"]  # link text = heading text
HEADINGS = {"Home": "MNIST studio"}  # where the heading differs from the link text
TARGET_HOME_S = 3.0
TARGET_PAGE_S = 1.0
TINY_RUNS = ["fast_cnn", "cnn"]


def prepare_runs(train_subset: int) -> tuple:
    """Return (runs folder, runs): tiny finished runs, each evaluated on the test set."""
    root = benchlib.temp_runs_dir("cold-start")
    made = benchlib.tiny_runs(root, TINY_RUNS, train_subset=train_subset)
    # The Evaluate page shows its full content (confusion matrix, mistakes) only for an evaluated run.
    for run in made:
        benchlib.mnist_cli(root, "evaluate", run.run_id)
    return root, made


def visit(page, link_title: str, heading_text: str, screenshot=None) -> float:
    """Return seconds from a click on the sidebar link to the page's heading shown and the app idle."""
    link = benchlib.sidebar_link(page, link_title)
    link.wait_for(state="visible")
    started = time.perf_counter()
    link.click()
    benchlib.heading(page, heading_text).wait_for(state="visible")
    seconds = harness.settled_at(page) - started
    benchlib.fail_on_exception(page, link_title)
    if screenshot:
        page.screenshot(path=str(screenshot), full_page=True)
    return seconds


def one_start(browser, runs_dir, log_dir, repeat: int, screenshots: bool = False) -> dict:
    """Return the home and per-page timings of one fresh server and browser context."""
    context, page = benchlib.new_page(browser, 120_000)
    started = time.perf_counter()
    server = harness.start_server(runs_dir, log_dir / f"cold_start-server-{repeat}.log", timeout=120)
    try:
        healthy = time.perf_counter() - started
        page.goto(server.url + "/")
        page.locator('[data-testid="stMetricLabel"]', has_text="Training images").first.wait_for(state="visible")
        home = time.perf_counter() - started
        home_idle = harness.settled_at(page) - started
        benchlib.fail_on_exception(page, "Home")
        visits = {}
        for round_name in ("first", "second"):
            for title in [*PAGES, "Home"]:
                shot = log_dir / f"cold_start-{repeat}-{round_name}-{title}.png" if screenshots else None
                visits.setdefault(title, {})[round_name] = visit(page, title, HEADINGS.get(title, title), shot)
        return {
            "repeat": repeat,
            "server_healthy_s": healthy,
            "home_s": home,
            "home_idle_s": home_idle,
            "pages": visits,
        }
    except Exception:
        page.screenshot(path=str(log_dir / f"cold_start-failure-{repeat}.png"), full_page=True)
        raise
    finally:
        context.close()
        server.stop()


def headline(results: dict) -> dict:
    """Return the home page's cold start and each page's cached visit."""
    return {"home_s": results["home_s"], "pages_cached_s": {t: v["second"] for t, v in results["pages"].items()}}


def main() -> None:
    """Start the dashboard --repeats times, print the table and target lines, write cold_start.json."""
    parser = benchlib.parser(__doc__.split("\n\n")[0], repeats=1)
    parser.add_argument("--repeats", type=int, default=3, help="fresh servers (default 3)")
    parser.add_argument("--train-subset", type=int, default=600, help="images the tiny runs train on (default 600)")
    parser.add_argument("--screenshots", action="store_true", help="save a screenshot of every visit in bench/results/")
    args = benchlib.parse(parser)

    print(
        f"making {len(TINY_RUNS)} tiny runs ({', '.join(TINY_RUNS)}; {args.train_subset} images, 1 epoch)", flush=True
    )
    runs_dir, _ = prepare_runs(args.train_subset)
    starts = []
    with benchlib.chromium() as browser:
        for repeat in range(1, args.repeats + 1):
            starts.append(one_start(browser, runs_dir, benchlib.RESULTS_DIR, repeat, args.screenshots))
            pages = ", ".join(f"{t} {v['first']:.2f}/{v['second']:.2f}" for t, v in starts[-1]["pages"].items())
            print(f"  start {repeat}/{args.repeats}: home {starts[-1]['home_s']:.2f} s; pages {pages}", flush=True)

    home = median(s["home_s"] for s in starts)
    titles = [*PAGES, "Home"]
    per_page = {
        title: {which: median(s["pages"][title][which] for s in starts) for which in ("first", "second")}
        for title in titles
    }
    benchlib.print_table(
        ["step", "median s", "min s", "max s"],
        [
            [name, fmt(median(values), 2), fmt(min(values), 2), fmt(max(values), 2)]
            for name, values in (
                ("server answers /_stcore/health", [s["server_healthy_s"] for s in starts]),
                ("home: 'Training images' visible", [s["home_s"] for s in starts]),
                ("home: app idle", [s["home_idle_s"] for s in starts]),
            )
        ],
        title=f"\nDashboard start (median of {args.repeats} fresh servers), seconds",
    )
    benchlib.print_table(
        ["page", "first visit", "second visit"],
        [[title, fmt(per_page[title]["first"]), fmt(per_page[title]["second"])] for title in titles],
        title="Page switch: click in the sidebar to heading visible and app idle, seconds (median)",
    )
    print("(Home's 'first visit' is a click back to an already loaded page.)")
    checks = [benchlib.check("home cold start", home, TARGET_HOME_S, higher_is_better=False, unit=" s")]
    checks += [
        benchlib.check(f"{title} (cached)", per_page[title]["second"], TARGET_PAGE_S, higher_is_better=False, unit=" s")
        for title in titles
    ]
    benchlib.write_results(
        "cold_start",
        {
            "settings": {"repeats": args.repeats, "tiny_runs": TINY_RUNS, "train_subset": args.train_subset},
            "runs_dir": str(runs_dir),
            "home_s": home,
            "pages": per_page,
            "starts": starts,
            "checks": checks,
        },
        args.out,
        headline,
    )


if __name__ == "__main__":
    main()
