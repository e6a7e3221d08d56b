"""Every benchmark in sequence, each in its own process, then one summary of every target check.

Full run (defaults of each script; about an hour or more on a 2-core CPU, mostly throughput and the
baseline of time_to_accuracy): `.venv/bin/python bench/run_all.py`. A minutes-long smoke run of the
same scripts at a tiny scale, written to bench/results/quick/: `--quick`.
"""

from __future__ import annotations

import json
import subprocess
import time

import benchlib
from benchlib import fmt

# (results name, script, full-run arguments, --quick arguments)
BENCHMARKS = [
    ("throughput", "throughput.py", [], ["--archs", "mlp", "--epochs", "1", "--repeats", "1"]),
    ("time_to_accuracy", "time_to_accuracy.py", [], ["--train-subset", "3000", "--epochs", "1", "--max-epochs", "2"]),
    (
        "time_to_accuracy_best",
        "time_to_accuracy.py",
        ["--preset", "best"],
        ["--preset", "best", "--train-subset", "1000", "--epochs", "1"],
    ),
    ("predict_latency", "predict_latency.py", [], ["--calls", "20", "--warmup", "3"]),
    ("evaluate_speed", "evaluate_speed.py", [], ["--archs", "mlp", "cnn", "--repeats", "1"]),
    ("cold_start", "cold_start.py", [], ["--repeats", "1"]),
    ("memory", "memory.py", [], []),
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


def headline(name: str, results: dict | None) -> dict:
    """Return the few figures of a benchmark that belong in the summary."""
    if results is None:
        return {}
    if name == "throughput":
        return {r["architecture"]: {"engine/recipe": r["ratio"]} for r in results["architectures"]}
    if name.startswith("time_to_accuracy"):
        engine, baseline = results["engine"], results.get("baseline")
        figures = {"engine_training_s": engine["training_s"], "engine_test_accuracy": engine["test_accuracy"]}
        if baseline:
            figures |= {
                "baseline_training_s": baseline["training_s"],
                "baseline_test_accuracy": baseline["test_accuracy"],
            }
        return figures
    if name == "predict_latency":
        return {
            r["architecture"]: {"p50_ms": r["ours_p50_ms"], "predict/ours": r["ratio"]}
            for r in results["architectures"]
        }
    if name == "evaluate_speed":
        return {r["architecture"]: {"s": r["ours_s"], "evaluate/ours": r["ratio"]} for r in results["architectures"]}
    if name == "cold_start":
        return {"home_s": results["home_s"], "pages_cached_s": {t: v["second"] for t, v in results["pages"].items()}}
    if name == "memory":
        return {"peak_mib": results["peak_mib"], "rss_mib": results["rss_mib"]}
    return {}


def main() -> None:
    """Run the benchmarks, print every check, write bench/results/summary.json (quick/summary.json)."""
    parser = benchlib.parser(__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke-test scale, results in bench/results/quick/")
    parser.add_argument("--only", nargs="+", choices=[b[0] for b in BENCHMARKS], help="run just these")
    args = parser.parse_args()
    shared = ["--data", str(benchlib.setup(args))] + (["--keep-runs"] if args.keep_runs else [])
    folder = benchlib.RESULTS_DIR / "quick" if args.quick else benchlib.RESULTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    outcomes = []
    for name, script, full, quick in BENCHMARKS:
        if args.only and name not in args.only:
            continue
        outcomes.append(run_one(name, script, quick if args.quick else full, folder / f"{name}.json", shared))

    print("\n=== summary" + (" (quick: smoke-test scale, not figures)" if args.quick else ""))
    rows = []
    for outcome in outcomes:
        if outcome["results"] is None:
            rows.append([outcome["name"], f"FAILED (exit {outcome['exit_code']})", "", "", ""])
            continue
        for check in outcome["results"].get("checks", []):
            verdict = {None: "no value", True: "PASS", False: "FAIL"}[check["ok"]]
            value = fmt(check["value"]) + (" " + check["unit"] if check["value"] is not None else "")
            rows.append([outcome["name"], check["name"], value.replace(" x", "x"), check["target"], verdict])
    benchlib.print_table(["benchmark", "check", "value", "target", "verdict"], rows, left=2)
    for outcome in outcomes:
        if outcome["name"] == "memory" and outcome["results"]:
            print(
                f"memory: peak RSS of the server with the dataset and 4 models {outcome['results']['peak_mib']:.0f} MiB"
            )
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
                "headline": headline(o["name"], o["results"]),
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
