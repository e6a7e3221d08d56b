"""Training throughput per architecture: the studio's engine (a real run in its worker process) vs the
walkthrough's own recipe (../shared/bench/seed_recipe.py beside the repo), on the full 54,000 / 6,000 split.

Both sides time an epoch from its start to Keras' on_epoch_end, so both include validation on the
6,000 images; images/s counts the 54,000 training images per epoch. With --epochs >= 2 the first
epoch (tracing, warm-up) is left out on both sides. Runs alternate engine, recipe, engine, recipe...
and the ratio is the median of the pairwise engine/recipe ratios. A second engine figure uses the
gaps between consecutive `elapsed` values of epochs.csv instead: those also hold the engine's work
between epochs (best.keras checkpoint, TensorBoard logs), which `seconds` leaves out.
"""

from __future__ import annotations

import itertools
import json
import subprocess
from statistics import geometric_mean

import benchlib
from benchlib import fmt, measured, median

ARCHITECTURES = ["mlp", "cnn", "deeper_cnn", "deeper_cnn_bn"]
TARGET_RATIO = 1.0


def engine_epochs(arch: str, epochs: int, root) -> dict:
    """Return one engine run's per-epoch seconds (epochs.csv), epoch-to-epoch gaps and total wall time."""
    from mnist_core import control, runs
    from mnist_core.config import TrainConfig

    with benchlib.Stopwatch() as wall:
        run = control.start_run(TrainConfig.for_architecture(arch, epochs=epochs), root)
        state = control.wait_for(run, timeout=300 + 900 * epochs)
    if state != runs.FINISHED:
        raise RuntimeError(f"engine run {run.run_id} ended {state}: {run.file('log.txt').read_text()[-3000:]}")
    run = runs.read_run(run.path)
    rows = list(run.epochs)
    elapsed = [row["elapsed"] for row in rows]
    # `seconds` stops at on_epoch_end, before the engine saves best.keras and TensorBoard logs; the gap
    # between consecutive `elapsed` values includes that saving, so it is the stricter measure.
    gaps = [elapsed[0]] + [b - a for a, b in itertools.pairwise(elapsed)]
    return {"run_id": run.run_id, "epoch_s": [row["seconds"] for row in rows], "gap_s": gaps, "wall_s": wall.seconds}


def recipe_epochs(arch: str, epochs: int, data: str, recipe: str) -> dict:
    """Return the seed recipe's per-epoch seconds for `arch` (its JSON line) and its total wall time."""
    with benchlib.Stopwatch() as wall:
        done = subprocess.run(
            [benchlib.PYTHON, recipe, data, str(epochs), arch],
            capture_output=True,
            text=True,
            check=False,
        )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        raise RuntimeError(f"seed recipe failed for {arch} (exit {done.returncode}):\n{done.stderr[-3000:]}")
    result = json.loads(lines[-1])
    return {"epoch_s": result["epoch_s"], "test_acc": result["test_acc"], "wall_s": wall.seconds}


def images_per_second(epoch_seconds: list[float], images: int) -> float:
    """Return training images per second from the per-epoch seconds that count."""
    values = measured(epoch_seconds)
    return images / (sum(values) / len(values))


def bench_architecture(arch: str, epochs: int, repeats: int, data: str, images: int, recipe_path: str) -> dict:
    """Return the paired engine / recipe measurements of one architecture and their medians."""
    root = benchlib.temp_runs_dir(f"throughput-{arch}")
    pairs = []
    for repeat in range(repeats):
        engine = engine_epochs(arch, epochs, root)
        recipe = recipe_epochs(arch, epochs, data, recipe_path)
        pair = {
            "repeat": repeat + 1,
            "engine": engine,
            "recipe": recipe,
            "engine_images_per_s": images_per_second(engine["epoch_s"], images),
            "engine_images_per_s_with_saving": images_per_second(engine["gap_s"], images),
            "recipe_images_per_s": images_per_second(recipe["epoch_s"], images),
        }
        pair["ratio"] = pair["engine_images_per_s"] / pair["recipe_images_per_s"]
        pair["ratio_with_saving"] = pair["engine_images_per_s_with_saving"] / pair["recipe_images_per_s"]
        pairs.append(pair)
        print(
            f"  {arch} repeat {repeat + 1}/{repeats}: engine {pair['engine_images_per_s']:,.0f} img/s "
            f"(epochs {engine['epoch_s']}), recipe {pair['recipe_images_per_s']:,.0f} img/s "
            f"(epochs {recipe['epoch_s']}), ratio {pair['ratio']:.2f}x",
            flush=True,
        )
    return {
        "architecture": arch,
        "runs_dir": str(root),
        "pairs": pairs,
        "engine_images_per_s": median(p["engine_images_per_s"] for p in pairs),
        "engine_images_per_s_with_saving": median(p["engine_images_per_s_with_saving"] for p in pairs),
        "recipe_images_per_s": median(p["recipe_images_per_s"] for p in pairs),
        "ratio": median(p["ratio"] for p in pairs),
        "ratio_with_saving": median(p["ratio_with_saving"] for p in pairs),
    }


def headline(results: dict) -> dict:
    """Return each architecture's engine/recipe ratio."""
    return {r["architecture"]: {"engine/recipe": r["ratio"]} for r in results["architectures"]}


def main() -> None:
    """Measure every architecture, print the table and ratio lines, write bench/results/throughput.json."""
    parser = benchlib.parser(__doc__.split("\n\n")[0], archs=["mlp"], epochs=1, repeats=1)
    parser.add_argument("--archs", nargs="+", default=ARCHITECTURES, choices=ARCHITECTURES)
    parser.add_argument("--epochs", type=int, default=2, help="epochs per run, same on both sides (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="engine/recipe pairs per architecture (default 3)")
    parser.add_argument("--recipe", default=str(benchlib.SEED_RECIPE), help="the seed recipe script")
    args = benchlib.parse(parser)
    from mnist_core.settings import TRAIN_SPLIT_SIZE

    skipped = "first epoch left out" if args.epochs >= 2 else "single epoch: includes warm-up"
    print(f"throughput: {args.epochs} epoch(s) per run ({skipped}), {args.repeats} pair(s) per architecture")
    results = [
        bench_architecture(a, args.epochs, args.repeats, args.data, TRAIN_SPLIT_SIZE, args.recipe) for a in args.archs
    ]

    benchlib.table(
        "\nTraining images / s (median; epoch time includes validation on 6,000 images)",
        results,
        [
            ("architecture", "architecture"),
            ("engine", "engine_images_per_s", 0),
            ("engine (elapsed gaps)", "engine_images_per_s_with_saving", 0),
            ("recipe", "recipe_images_per_s", 0),
            ("engine/recipe", "ratio", 2, "x"),
            ("by elapsed gaps", "ratio_with_saving", 2, "x"),
        ],
    )
    checks = [
        benchlib.check(f"{r['architecture']} engine/recipe", r["ratio"], TARGET_RATIO, higher_is_better=True, unit="x")
        for r in results
    ]
    for r in results:
        gaps = fmt(r["ratio_with_saving"])
        print(f"{r['architecture']} engine/recipe by elapsed gaps (incl. checkpoint + TensorBoard writes): {gaps}x")
    benchlib.write_results(
        "throughput",
        {
            "settings": {"epochs": args.epochs, "repeats": args.repeats, "images_per_epoch": TRAIN_SPLIT_SIZE},
            "architectures": results,
            "checks": checks,
            "geometric_mean_ratio": geometric_mean([r["ratio"] for r in results]),
        },
        args.out,
        headline,
    )


if __name__ == "__main__":
    main()
