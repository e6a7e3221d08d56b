"""Every benchmark in sequence, each in its own process, then one summary of every target check.

Full run (defaults of each script; about two hours on a 2-core CPU, mostly throughput, the
baseline of time_to_accuracy and the three preset draws of ensemble.py): `.venv/bin/python bench/run_all.py`.
A minutes-long smoke run of the same scripts at a tiny scale (each script's --quick), written to
bench/results/quick/: `--quick`.
Each script writes its own headline figures into its results; the summary lists them with the checks.
"""

from __future__ import annotations

import json
import subprocess
import time

import benchlib
from benchlib import fmt

# (results name, script, arguments)
BENCHMARKS = [
    ("throughput", "throughput.py", []),
    ("time_to_accuracy", "time_to_accuracy.py", []),
    ("time_to_accuracy_best", "time_to_accuracy.py", ["--preset", "best"]),
    ("augmented_epochs", "augmented_epochs.py", []),
    ("batch_norm", "batch_norm.py", []),
    ("predict_latency", "predict_latency.py", []),
    ("cold_start", "cold_start.py", []),
    ("memory", "memory.py", []),
    ("sweep", "sweep.py", []),
    ("inside", "inside.py", []),
    ("drawings", "drawings.py", ["--presets", "fast_cnn", "best_cnn"]),
    ("ensemble", "ensemble.py", []),
]


def run_one(name: str, script: str, arguments: list[str], out, shared: list[str]) -> dict:
    """Return how one benchmark script went: exit code, seconds, and its results JSON (None if it failed)."""
    command = [benchlib.PYTHON, str(benchlib.BENCH_DIR / script), *shared, "--out", str(out), *arguments]
    print(f"\n=== {name}: {' '.join(command[1:])}", flush=True)
    with benchlib.Stopwatch() as watch:
        child = subprocess.Popen(command, cwd=benchlib.ROOT)
        try:
            code = child.wait()
        except BaseException:
            # SIGTERM (not kill) lets the script stop its training workers and servers on the way out.
            child.terminate()
            child.wait()
            raise
    results = json.loads(out.read_text()) if code == 0 and out.exists() else None
    return {"name": name, "exit_code": code, "seconds": watch.seconds, "results": results}


def main() -> None:
    """Run the benchmarks, print every check, write bench/results/summary.json (quick/summary.json)."""
    parser = benchlib.parser(__doc__.split("\n\n")[0], "every script at its --quick scale, in bench/results/quick/")
    parser.add_argument("--only", nargs="+", choices=[b[0] for b in BENCHMARKS], help="run just these")
    args = benchlib.parse(parser)
    shared = ["--data", args.data] + (["--keep-runs"] if args.keep_runs else []) + (["--quick"] if args.quick else [])
    folder = benchlib.RESULTS_DIR / "quick" if args.quick else benchlib.RESULTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    outcomes = [
        run_one(name, script, arguments, folder / f"{name}.json", shared)
        for name, script, arguments in BENCHMARKS
        if not args.only or name in args.only
    ]

    rows = []
    for outcome in outcomes:
        if outcome["results"] is None:
            rows.append([outcome["name"], f"FAILED (exit {outcome['exit_code']})", "", "", ""])
        for check in (outcome["results"] or {}).get("checks", []):
            verdict = {None: "no value", True: "PASS", False: "FAIL"}[check["ok"]]
            value = fmt(check["value"]) + (" " + check["unit"] if check["value"] is not None else "")
            rows.append([outcome["name"], check["name"], value.replace(" x", "x"), check["target"], verdict])
    title = "\n=== summary" + (" (quick: smoke-test scale, not figures)" if args.quick else "")
    benchlib.print_table(["benchmark", "check", "value", "target", "verdict"], rows, left=2, title=title)
    for outcome in outcomes:
        if (outcome["results"] or {}).get("note"):
            print(f"{outcome['name']}: {outcome['results']['note']}")
    total = time.perf_counter() - started
    print(f"all benchmarks: {total / 60:.1f} min")
    summary = {
        "quick": args.quick,
        "total_s": total,
        "benchmarks": [
            {
                "name": o["name"],
                "exit_code": o["exit_code"],
                "seconds": o["seconds"],
                "headline": (o["results"] or {}).get("headline", {}),
                "checks": (o["results"] or {}).get("checks", []),
            }
            for o in outcomes
        ],
    }
    benchlib.write_results("summary", summary, args.out or str(folder / "summary.json"))
    if any(o["exit_code"] for o in outcomes):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
