"""Full test-set evaluation time per architecture: the studio's path (mnist_core.evaluate.probabilities +
score on the 10,000 uint8 test images, what evaluate_run does once the model is loaded) vs the
walkthrough's `model.evaluate(x_test, y_onehot, batch_size=64)` on float64 arrays prepared beforehand.

Models are freshly built (weights do not change the speed). The first call of each path (tracing) is
reported on its own as "cold"; then the paths alternate for --repeats timed calls and medians count.
"""

from __future__ import annotations

import benchlib
from benchlib import fmt, median

ARCHITECTURES = ["mlp", "cnn", "deeper_cnn", "deeper_cnn_bn", "fast_cnn", "strong_cnn"]


def seed_arrays(mnist):
    """Return the seed's test arrays: float64 (10000, 28, 28, 1) in [0, 1] and one-hot labels."""
    from mnist_core.tfimport import import_keras

    keras = import_keras()
    return (mnist.x_test / 255.0)[..., None], keras.utils.to_categorical(mnist.y_test, 10)


def ours(model, mnist) -> float:
    """Return the test accuracy the studio's evaluation computes (probabilities, then the full score)."""
    from mnist_core.evaluate import probabilities, score

    return score(probabilities(model, mnist.x_test), mnist.y_test)["accuracy"]


def seeds(model, x_test, y_test) -> float:
    """Return the test accuracy the walkthrough's model.evaluate computes."""
    return float(model.evaluate(x_test, y_test, batch_size=64, verbose=0)[1])


def bench_architecture(arch: str, mnist, x_test, y_test, repeats: int) -> dict:
    """Return cold and median warm seconds of both paths for one freshly built model."""
    from mnist_core.architectures import build_model
    from mnist_core.tfimport import import_keras

    keras = import_keras()
    model = build_model(arch)
    model.compile(loss="categorical_crossentropy", optimizer=keras.optimizers.Adam(1e-3), metrics=["accuracy"])
    with benchlib.Stopwatch() as cold_ours:
        accuracy_ours = ours(model, mnist)
    with benchlib.Stopwatch() as cold_seed:
        accuracy_seed = seeds(model, x_test, y_test)
    if abs(accuracy_ours - accuracy_seed) > 1e-3:
        raise RuntimeError(f"{arch}: the two paths disagree ({accuracy_ours} vs {accuracy_seed})")
    warm_ours, warm_seed = [], []
    for _ in range(repeats):
        with benchlib.Stopwatch() as watch:
            ours(model, mnist)
        warm_ours.append(watch.seconds)
        with benchlib.Stopwatch() as watch:
            seeds(model, x_test, y_test)
        warm_seed.append(watch.seconds)
    result = {
        "architecture": arch,
        "ours_cold_s": cold_ours.seconds,
        "seed_cold_s": cold_seed.seconds,
        "ours_s": median(warm_ours),
        "seed_s": median(warm_seed),
        "ours_runs_s": warm_ours,
        "seed_runs_s": warm_seed,
    }
    result["ratio"] = result["seed_s"] / result["ours_s"]
    result["cold_ratio"] = result["seed_cold_s"] / result["ours_cold_s"]
    return result


def main() -> None:
    """Time every architecture, print the table and ratio lines, write bench/results/evaluate_speed.json."""
    parser = benchlib.parser(__doc__.split("\n\n")[0])
    parser.add_argument("--archs", nargs="+", default=ARCHITECTURES, choices=ARCHITECTURES)
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per path after the cold one (default 5)")
    args = parser.parse_args()
    benchlib.setup(args)
    from mnist_core.data import load_mnist

    mnist = load_mnist()
    x_test, y_test = seed_arrays(mnist)
    results = []
    for arch in args.archs:
        results.append(bench_architecture(arch, mnist, x_test, y_test, args.repeats))
        print(f"  {arch}: ours {results[-1]['ours_s']:.2f} s, model.evaluate {results[-1]['seed_s']:.2f} s", flush=True)

    print(f"\nScoring the 10,000 test images, seconds (median of {args.repeats}; cold = first call, with tracing)")
    benchlib.print_table(
        ["architecture", "ours", "model.evaluate", "evaluate/ours", "ours cold", "evaluate cold", "cold ratio"],
        [
            [
                r["architecture"],
                fmt(r["ours_s"], 3),
                fmt(r["seed_s"], 3),
                fmt(r["ratio"], 2, "x"),
                fmt(r["ours_cold_s"], 3),
                fmt(r["seed_cold_s"], 3),
                fmt(r["cold_ratio"], 2, "x"),
            ]
            for r in results
        ],
    )
    checks = [
        benchlib.check(f"{r['architecture']} model.evaluate/ours", r["ratio"], 1.0, higher_is_better=True, unit="x")
        for r in results
    ]
    benchlib.write_results(
        "evaluate_speed",
        {"settings": {"repeats": args.repeats}, "architectures": results, "checks": checks},
        args.out,
    )


if __name__ == "__main__":
    main()
