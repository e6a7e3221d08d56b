"""The ensemble of presets on MNIST's test set: the Best and Deep presets, two networks that err on different digits.

Each seed in --best-seeds and --deep-seeds is a run of that preset trained here with its defaults (or taken,
trained, from --reuse: a runs folder holding finished runs of it). Every model is scored on the 10,000 test
images; then every pair of one Best and one Deep model is made into an ensemble the studio's own way
(`ensembles.make_ensemble`: their probabilities averaged) and scored the same way, and so is the ensemble of all
of them. The check is on the median pair, not the luckiest one: a preset is what any pair of its draws gives.
"""

from __future__ import annotations

import itertools

import benchlib
from benchlib import median

TARGET_ENSEMBLE = 0.9975  # Best + Deep, median pair, MNIST test accuracy
BEST, DEEP = "best_cnn", "deep_cnn"


def main() -> None:
    """Train or reuse the draws, score them, their pairs and all of them together; write the results."""
    parser = benchlib.parser(__doc__.split("\n\n")[0], epochs=1, train_subset=5000, best_seeds=[0], deep_seeds=[0])
    parser.add_argument("--best-seeds", type=int, nargs="+", default=[0, 1], help="Best preset draws (default 0 1)")
    parser.add_argument("--deep-seeds", type=int, nargs="+", default=[0, 1], help="Deep preset draws (default 0 1)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per draw (default: the preset's own)")
    parser.add_argument("--train-subset", type=int, default=None, help="training images (default: all)")
    parser.add_argument("--reuse", default=None, help="a runs folder to take finished preset runs from")
    args = benchlib.parse(parser)

    from mnist_core import ensembles, evaluate

    root = benchlib.temp_runs_dir("ensemble")
    draws = {
        preset: [
            benchlib.finished_run(f"{preset}@{seed}", args.reuse, root, args.epochs, args.train_subset)
            for seed in seeds
        ]
        for preset, seeds in ((BEST, args.best_seeds), (DEEP, args.deep_seeds))
    }

    def scored(kind: str, members: list) -> dict:
        """Return one table row: the models (preset@seed each) and their test accuracy, as one or as an ensemble."""
        if len(members) == 1:
            run = members[0]
        else:
            run = ensembles.make_ensemble([member.run_id for member in members], root=root / "runs")
        accuracy = evaluate.evaluate_run(run)["accuracy"]
        names = " + ".join(f"{member.architecture}@{member.config.seed}" for member in members)
        print(f"{kind}: {names}: {100 * accuracy:.2f} %", flush=True)
        return {"kind": kind, "models": names, "test_accuracy": accuracy, "errors": round((1 - accuracy) * 10_000)}

    singles = [scored("one model", [run]) for run in draws[BEST] + draws[DEEP]]
    pairs = [scored("pair", [best, deep]) for best, deep in itertools.product(draws[BEST], draws[DEEP])]
    everyone = draws[BEST] + draws[DEEP]
    together = [scored("all", everyone)] if 2 < len(everyone) <= ensembles.MAX_MEMBERS else []
    benchlib.table(
        "\nMNIST test accuracy: each draw, each Best + Deep pair, all of them",
        singles + pairs + together,
        [("", "kind"), ("models", "models"), ("test accuracy", "test_accuracy", 4), ("mistakes", "errors")],
    )
    pair_accuracies = [row["test_accuracy"] for row in pairs]
    print(
        f"{len(pairs)} pairs: median {100 * median(pair_accuracies):.2f} %, "
        f"from {100 * min(pair_accuracies):.2f} to {100 * max(pair_accuracies):.2f} %"
    )
    checks = [
        benchlib.check(
            "Best + Deep ensemble, median pair, MNIST test",
            100 * median(pair_accuracies),
            100 * TARGET_ENSEMBLE,
            higher_is_better=True,
            unit=" %",
        )
    ]
    benchlib.write_results(
        "ensemble",
        {"settings": vars(args) | {"data": None}, "results": singles + pairs + together, "checks": checks},
        args.out,
        lambda payload: {"median_pair": median(r["test_accuracy"] for r in payload["results"] if r["kind"] == "pair")},
    )


if __name__ == "__main__":
    main()
