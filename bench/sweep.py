"""What a sweep costs over training: Optuna's overhead per trial, and one worker against two on this machine.

1. Overhead. A sweep of --trials MLP trials (1 epoch each) runs in this process; then the same runs (the
   trials' own parameters, in the same order) are created and trained directly, without Optuna, by the same
   code path. Per trial, the sweep's overhead is its whole cycle (from one trial's start to the next's, so
   asking the sampler, the storage, pruning checks and the heartbeat all count) minus the run's own time
   (its folder's created -> ended): what training cannot explain. Reported against the median trial, and the
   direct runs' median beside the sweep's for comparison (their difference is mostly training noise).
2. Workers. --trials quick trials with one `sweep worker` process, then with two sharing the study (SQLite)
   on this machine: the wall time of each and their ratio. On two machines each worker would have the cores
   to itself: the estimate printed is the one-worker time halved plus one worker's start-up.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import subprocess
import time

import benchlib
from benchlib import fmt, median

from mnist_core.settings import TRAIN_SPLIT_SIZE

TARGET_OVERHEAD = 0.02  # of a 1-epoch MLP trial's time


def seconds_between(start: str, end: str) -> float:
    """Return the seconds between two ISO times of a run's status.json."""
    return (dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)).total_seconds()


def run_seconds(run) -> float:
    """Return a run's own time: created -> ended (data, model, training, saving)."""
    return seconds_between(run.status["created"], run.status["ended"])


def overhead(args) -> dict:
    """Return the sweep's per-trial cycles, the runs' own times, the overheads and the direct runs' times."""
    from mnist_core import control, runs, sweeps
    from mnist_core.worker import train_here

    root = benchlib.temp_runs_dir("sweep-overhead")
    config = sweeps.SweepConfig("mlp", trials=args.trials, epochs=1, train_subset=args.train_subset, pruning=False)
    sweeps.create("overhead", config, root=root)
    started = time.perf_counter()
    sweeps.work("overhead", root=root, report=lambda line: None)
    sweep_wall = time.perf_counter() - started
    study, _ = sweeps.load("overhead", root=root)
    trials = sorted(study.trials, key=lambda trial: trial.datetime_start)
    by_id = {run.run_id: run for run in runs.list_runs(root)}
    trial_runs = [by_id[trial.user_attrs["run_id"]] for trial in trials]
    # A cycle: this trial's start to the next one's (so the last trial has none).
    starts = [trial.datetime_start for trial in trials]
    cycles = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(starts)]
    own = [run_seconds(run) for run in trial_runs]
    overheads = [cycle - seconds for cycle, seconds in zip(cycles, own, strict=False)]

    direct = []
    for number, trial in enumerate(trials):
        train = config.train_config(dict(trial.params))
        began = time.perf_counter()
        run, lock_fd = control.create_trial_run(train, "direct", number, root)
        try:
            train_here(run.path)
        finally:
            os.close(lock_fd)
        direct.append(time.perf_counter() - began)
    return {
        "sweep_wall_s": sweep_wall,
        "cycles_s": cycles,
        "run_s": own,
        "overhead_s": overheads,
        "direct_s": direct,
        "trial_params": [dict(trial.params) for trial in trials],
    }


def workers(args, count: int) -> float:
    """Return the wall seconds `count` worker processes take for --trials quick trials of one sweep."""
    from mnist_core import sweeps

    root = benchlib.temp_runs_dir(f"sweep-{count}-workers")
    config = sweeps.SweepConfig("mlp", trials=args.trials, epochs=1, train_subset=args.train_subset, pruning=False)
    sweeps.create("workers", config, root=root)
    command = [benchlib.PYTHON, "-m", "mnist_core", "--runs-dir", str(root), "sweep", "worker", "workers"]
    started = time.perf_counter()
    processes = [subprocess.Popen(command, cwd=benchlib.ROOT, stdout=subprocess.DEVNULL) for _ in range(count)]
    codes = [process.wait(timeout=3600) for process in processes]
    wall = time.perf_counter() - started
    study, _ = sweeps.load("workers", root=root)
    done = sum(trial.state.name == "COMPLETE" for trial in study.trials)
    if codes != [0] * count or done < args.trials:
        raise RuntimeError(f"{count} worker(s) exited {codes} with {done} of {args.trials} trials complete")
    return wall


def start_up_seconds() -> float:
    """Return how long a sweep worker process takes to start and find nothing to do (Python, TensorFlow, Optuna)."""
    from mnist_core import sweeps

    root = benchlib.temp_runs_dir("sweep-start")
    sweeps.create("idle", sweeps.SweepConfig("mlp", trials=1, epochs=1, train_subset=600), root=root)
    sweeps.request_stop("idle", root=root)
    command = [benchlib.PYTHON, "-m", "mnist_core", "--runs-dir", str(root), "sweep", "worker", "idle"]
    with benchlib.Stopwatch() as watch:
        subprocess.run(command, cwd=benchlib.ROOT, stdout=subprocess.DEVNULL, check=True)
    return watch.seconds


def headline(results: dict) -> dict:
    """Return the overhead share and the two-worker ratio."""
    return {"overhead_share": results["overhead_share"], "two_workers_ratio": results["two_workers_ratio"]}


def main() -> None:
    """Measure the overhead and the workers, print both tables, write bench/results/sweep.json."""
    parser = benchlib.parser(__doc__.split("\n\n")[0], trials=4, train_subset=600)
    parser.add_argument("--trials", type=int, default=8, help="trials in each sweep (default 8)")
    parser.add_argument(
        "--train-subset", type=int, default=TRAIN_SPLIT_SIZE, help="training images per trial (default: all 54,000)"
    )
    args = benchlib.parse(parser)

    print(f"1. overhead: {args.trials} MLP trials of 1 epoch on {args.train_subset:,} images, then the same runs")
    measured = overhead(args)
    trial_median = median(measured["cycles_s"])
    overhead_median = median(measured["overhead_s"])
    share = overhead_median / trial_median if trial_median else None
    benchlib.print_table(
        ["per trial", "median s", "min s", "max s"],
        [
            [label, fmt(median(values), 3), fmt(min(values), 3), fmt(max(values), 3)]
            for label, values in (
                ("sweep cycle (trial to trial)", measured["cycles_s"]),
                ("its run's own time", measured["run_s"][: len(measured["cycles_s"])]),
                ("overhead (cycle - run)", measured["overhead_s"]),
                ("the same run, direct", measured["direct_s"]),
            )
        ],
        title="",
    )
    print(f"overhead: {fmt(overhead_median, 3)} s of a {fmt(trial_median, 2)} s trial = {fmt(100 * share, 2)} %")
    checks = [
        benchlib.check(
            "sweep overhead per trial", 100 * share, 100 * TARGET_OVERHEAD, higher_is_better=False, unit=" %"
        )
    ]

    print(f"\n2. workers: {args.trials} trials, one worker process, then two, on {benchlib.machine()['cpus']} cores")
    one = workers(args, 1)
    two = workers(args, 2)
    start_up = start_up_seconds()
    ratio = one / two
    benchlib.print_table(
        ["workers", "wall s", "trials / min"],
        [["1", fmt(one, 1), fmt(60 * args.trials / one, 1)], ["2", fmt(two, 1), fmt(60 * args.trials / two, 1)]],
        title="",
    )
    estimate = one / 2 + start_up
    print(
        f"two workers on this machine: {fmt(ratio, 2)}x the speed of one ({fmt(one, 1)} s -> {fmt(two, 1)} s); on two "
        f"machines about {fmt(one / estimate, 2)}x ({fmt(estimate, 1)} s: half of {fmt(one, 1)} s plus a worker's "
        f"{fmt(start_up, 1)} s start-up)"
    )
    benchlib.write_results(
        "sweep",
        {
            "settings": {"trials": args.trials, "train_subset": args.train_subset, "epochs": 1},
            "overhead": measured,
            "overhead_median_s": overhead_median,
            "trial_median_s": trial_median,
            "overhead_share": share,
            "one_worker_s": one,
            "two_workers_s": two,
            "two_workers_ratio": ratio,
            "worker_start_up_s": start_up,
            "two_machines_estimate_s": estimate,
            "checks": checks,
            "note": f"sweep overhead {100 * share:.2f} % of a trial; two workers here {ratio:.2f}x one",
        },
        args.out,
        headline,
    )


if __name__ == "__main__":
    main()
