"""Time to test accuracy: the studio's presets trained by the engine vs the walkthrough's BatchNorm recipe.

--preset fast (default): the "fast_cnn" preset with its registry defaults, run by the engine, its best
model scored on the 10,000 test images, vs deeper_cnn_bn trained in this process the seed's way
(float64 arrays, one-hot labels, categorical cross-entropy, Adam 1e-3, batch 64, validation on the
6,000 images each epoch) and scored on the test set after every epoch (one fit() call, a callback scores and stops it)
until it reaches 99.0 %.
Only training time counts on both sides (test scoring is left out).

--preset best: the "best_cnn" preset alone (all 60,000 digits, no validation: its last model is scored),
against the promise of 99.70 % within 15 minutes.
"""

from __future__ import annotations

import time

import benchlib
from benchlib import fmt

PRESETS = {"fast": ("fast_cnn", 0.990), "best": ("best_cnn", 0.997)}
BEST_TIME_LIMIT_S = 15 * 60
QUICK_TIME_LIMIT_S = 15.0  # the Quick preset's training time to 99.0 %
QUICK_SPEEDUP = 25.0  # ... and how many times faster than the walkthrough's BatchNorm recipe gets there
BASELINE_ARCH = "deeper_cnn_bn"


def engine_preset(arch: str, epochs: int | None, train_subset: int | None, seed: int) -> dict:
    """Return an engine run of the preset (registry defaults) with its training seconds and test score."""
    from mnist_core import control, runs
    from mnist_core.config import TrainConfig
    from mnist_core.evaluate import evaluate_run

    root = benchlib.temp_runs_dir(f"tta-{arch}")
    config = TrainConfig.for_architecture(arch, epochs=epochs, train_subset=train_subset, seed=seed)
    with benchlib.Stopwatch() as wall:
        run = control.start_run(config, root)
        state = control.wait_for(run, timeout=600 + 600 * config.epochs)
    if state != runs.FINISHED:
        raise RuntimeError(f"engine run {run.run_id} ended {state}: {run.file('log.txt').read_text()[-3000:]}")
    run = runs.read_run(run.path)
    rows = list(run.epochs)
    evaluation = evaluate_run(run)
    return {
        "architecture": arch,
        "config": config.to_dict(),
        "run_dir": str(run.path),
        "epochs": len(rows),
        # `elapsed` is the run's own training clock: every epoch, validation, checkpoints and logs.
        "training_s": rows[-1]["elapsed"],
        "sum_epoch_s": sum(row["seconds"] for row in rows),
        "wall_s": wall.seconds,  # from start_run to finished: process start, imports, data loading too
        "val_accuracy": [row["val_accuracy"] for row in rows],
        "test_accuracy": evaluation["accuracy"],
    }


def train_engine(arch: str, args, times: int) -> list[dict]:
    """Return `times` engine runs of the preset (engine_preset), each printed as it ends."""
    engine_runs = []
    for _ in range(times):
        engine_runs.append(engine_preset(arch, args.epochs, args.train_subset, args.seed))
        run = engine_runs[-1]
        print(f"  {run['epochs']} epochs, {run['training_s']:.1f} s, test {100 * run['test_accuracy']:.2f} %")
    return engine_runs


def median_run(engine_runs: list[dict]) -> dict:
    """Return the run of median training time, with every run's training seconds beside it (the spread)."""
    ordered = sorted(engine_runs, key=lambda run: run["training_s"])
    return ordered[(len(ordered) - 1) // 2] | {"training_s_all": [run["training_s"] for run in engine_runs]}


def seed_data(train_subset: int | None):
    """Return the seed's arrays: x float64 (N, 28, 28, 1) in [0, 1] and one-hot y, for train / val / test."""
    from mnist_core.data import load_mnist, split
    from mnist_core.settings import VALIDATION_SPLIT_SIZE
    from mnist_core.tfimport import import_keras

    keras = import_keras()
    mnist = load_mnist()
    parts = split(mnist)
    train = train_subset or len(parts.y_train)
    val = min(VALIDATION_SPLIT_SIZE, train // 9) if train_subset else len(parts.y_val)

    def prepared(x, y):
        return (x / 255.0)[..., None], keras.utils.to_categorical(y, 10)

    return (
        prepared(parts.x_train[:train], parts.y_train[:train]),
        prepared(parts.x_val[:val], parts.y_val[:val]),
        prepared(mnist.x_test, mnist.y_test),
    )


def seed_baseline(target: float, max_epochs: int, train_subset: int | None, seed: int) -> dict:
    """Return the seed recipe's deeper_cnn_bn trained epoch by epoch until the test target or max_epochs."""
    from mnist_core.architectures import build_model
    from mnist_core.tfimport import import_keras

    keras = import_keras()
    keras.utils.set_random_seed(seed)
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = seed_data(train_subset)
    model = build_model(BASELINE_ARCH)
    model.compile(loss="categorical_crossentropy", optimizer=keras.optimizers.Adam(1e-3), metrics=["accuracy"])
    epoch_s, scoring_s, test_accuracy = [], [], []

    class EpochTimer(keras.callbacks.Callback):
        """The seed's own per-epoch timer (validation included), then an untimed test score and the stop."""

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            epoch_s.append(time.perf_counter() - self.started)
            with benchlib.Stopwatch() as scoring:
                _, accuracy = self.model.evaluate(x_test, y_test, batch_size=64, verbose=0)
            scoring_s.append(scoring.seconds)
            test_accuracy.append(float(accuracy))
            print(
                f"  baseline epoch {epoch + 1}: {epoch_s[-1]:.1f} s, test accuracy {100 * accuracy:.2f} %, "
                f"epochs so far {sum(epoch_s):.1f} s",
                flush=True,
            )
            if accuracy >= target:
                self.model.stop_training = True

    # One fit() call, as the seed does: a fit() per epoch would copy the float64 arrays every epoch.
    with benchlib.Stopwatch() as fit:
        model.fit(
            x_train,
            y_train,
            batch_size=64,
            epochs=max_epochs,
            shuffle=True,
            verbose=0,
            validation_data=(x_val, y_val),
            callbacks=[EpochTimer()],
        )
    reached_at = next((i + 1 for i, accuracy in enumerate(test_accuracy) if accuracy >= target), None)
    return {
        "architecture": BASELINE_ARCH,
        "recipe": "Adam 1e-3, batch 64, float64 inputs, one-hot labels, categorical cross-entropy",
        "epochs": len(epoch_s),
        "reached_target_at_epoch": reached_at,
        # The whole fit() call less the test scoring: fit's set-up counts, as the engine's `elapsed` does.
        "training_s": fit.seconds - sum(scoring_s),
        "sum_epoch_s": sum(epoch_s),
        "scoring_s": scoring_s,
        "epoch_s": epoch_s,
        "test_accuracy_per_epoch": test_accuracy,
        "test_accuracy": test_accuracy[-1] if test_accuracy else None,
    }


def report(preset: str, engine: dict, baseline: dict | None, target: float) -> list[dict]:
    """Print the preset's time and accuracy (the fast one beside the baseline, when it ran); return the checks."""
    reached = engine["test_accuracy"] >= target

    def cells(side: dict, *keys: str) -> list:
        return [side["epochs"], *(fmt(side[key], 1) for key in keys), fmt(100 * side["test_accuracy"], 2, " %")]

    if preset == "best":
        benchlib.print_table(
            ["preset", "epochs", "training s", "sum of epoch s", "end to end s", "test accuracy"],
            [[engine["architecture"], *cells(engine, "training_s", "sum_epoch_s", "wall_s")]],
        )
    elif baseline is not None:
        baseline_reached = baseline["reached_target_at_epoch"] is not None
        sides = [(f"engine {engine['architecture']} preset", engine, reached)]
        sides.append((f"seed recipe {baseline['architecture']}", baseline, baseline_reached))
        benchlib.print_table(
            ["side", "epochs", "training s", "sum of epoch s", "test accuracy", f"reached {100 * target:.1f} %"],
            [[label, *cells(side, "training_s", "sum_epoch_s"), ok] for label, side, ok in sides],
        )
        if reached and not baseline_reached:
            print(
                f"the baseline did not reach {100 * target:.1f} % in {baseline['epochs']} epochs: the ratio is a floor"
            )
        by_epochs = benchlib.ratio(baseline["sum_epoch_s"], engine["sum_epoch_s"]) if reached else None
        print(f"time to target by the sum of epoch seconds, baseline/engine: {fmt(by_epochs)}x")
        print(f"engine end to end (process start, imports, data, training): {engine['wall_s']:.1f} s")
    accuracy, goal = 100 * engine["test_accuracy"], 100 * target
    checks = [benchlib.check(f"{preset} preset test accuracy", accuracy, goal, higher_is_better=True, unit=" %")]
    if preset == "best":
        seconds, limit = engine["training_s"], BEST_TIME_LIMIT_S
        checks.append(benchlib.check("best preset training time", seconds, limit, higher_is_better=False, unit=" s"))
    else:
        seconds = engine["training_s"] if reached else None
        checks.append(
            benchlib.check("quick preset training time", seconds, QUICK_TIME_LIMIT_S, higher_is_better=False, unit=" s")
        )
    if preset != "best" and baseline is not None:
        speedup = benchlib.ratio(baseline["training_s"], engine["training_s"]) if reached else None
        name = "time to target, baseline/engine"
        checks.append(benchlib.check(name, speedup, QUICK_SPEEDUP, higher_is_better=True, unit="x"))
    return checks


def headline(results: dict) -> dict:
    """Return the engine's training seconds and test accuracy, and the baseline's when it ran."""
    engine, baseline = results["engine"], results["baseline"]
    figures = {"engine_training_s": engine["training_s"], "engine_test_accuracy": engine["test_accuracy"]}
    if baseline:
        figures |= {"baseline_training_s": baseline["training_s"], "baseline_test_accuracy": baseline["test_accuracy"]}
    return figures


def main() -> None:
    """Train the preset (and for 'fast' the baseline), print the comparison, write the results JSON."""
    parser = benchlib.parser(
        __doc__.split("\n\n")[0],
        train_subset=lambda args: 1000 if args.preset == "best" else 3000,
        epochs=1,
        max_epochs=2,
        repeats=1,
    )
    parser.add_argument("--preset", choices=list(PRESETS), default="fast")
    parser.add_argument("--max-epochs", type=int, default=15, help="baseline's epoch limit (default 15)")
    parser.add_argument("--epochs", type=int, default=None, help="override the preset's epochs (smoke tests)")
    parser.add_argument("--train-subset", type=int, default=None, help="train on the first N images (smoke tests)")
    parser.add_argument("--target", type=float, default=None, help="override the target test accuracy (0-1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=None, help="engine runs, median taken (default: 3 fast, 1 best)")
    parser.add_argument("--no-baseline", action="store_true", help="fast preset only, skip the seed recipe")
    args = benchlib.parse(parser)
    args.repeats = args.repeats or (3 if args.preset == "fast" else 1)
    arch, target = PRESETS[args.preset]
    target = args.target if args.target is not None else target
    if args.train_subset:
        print(f"NOTE: --train-subset {args.train_subset}: a smoke test, the accuracy targets are out of reach")

    with_baseline = args.preset == "fast" and not args.no_baseline
    print(f"engine: {arch} preset (registry defaults{', epochs overridden' if args.epochs else ''})", flush=True)
    # The engine's runs straddle the baseline's minutes-long one, so a change in the host's load hits both sides.
    engine_runs = train_engine(arch, args, (args.repeats + 1) // 2 if with_baseline else args.repeats)
    baseline = None
    if with_baseline:
        print(f"baseline: seed recipe {BASELINE_ARCH}, up to {args.max_epochs} epochs", flush=True)
        baseline = seed_baseline(target, args.max_epochs, args.train_subset, args.seed)
        engine_runs += train_engine(arch, args, args.repeats // 2)
    engine = median_run(engine_runs)
    spread = ", ".join(f"{seconds:.1f}" for seconds in sorted(engine["training_s_all"]))
    print(f"\nengine training seconds, {len(engine_runs)} runs: {spread} (median {engine['training_s']:.1f} s)")
    checks = report(args.preset, engine, baseline, target)
    name = "time_to_accuracy" if args.preset == "fast" else "time_to_accuracy_best"
    benchlib.write_results(
        name,
        {
            "settings": vars(args) | {"target_accuracy": target},
            "engine": engine,
            "baseline": baseline,
            "checks": checks,
        },
        args.out,
        headline,
    )


if __name__ == "__main__":
    main()
