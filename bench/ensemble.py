"""The ensemble of presets on MNIST's test set: the Best and Strided presets, two networks that err on different digits.

Each seed in --best-seeds and --strided-seeds is a run of that preset trained here with its defaults (or taken,
trained, from --reuse: a runs folder holding finished runs of it). Every model is scored on the 10,000 test
images; then every pair of one Best and one Strided model is made into an ensemble the studio's own way
(`ensembles.make_ensemble`: their probabilities averaged) and scored the same way, and so is the ensemble of all
of them. The check is on the median pair, not the luckiest one: a preset is what any pair of its draws gives.
"""

from __future__ import annotations

import itertools

import benchlib
from benchlib import median

TARGET_ENSEMBLE = 0.9975  # Best + Strided, median pair, MNIST test accuracy
BEST, STRIDED = "best_cnn", "strided_cnn"


def scored(kind: str, members: list, root) -> dict:
    """Return one table row (kind, models as preset@seed, test accuracy, mistakes) of one run, or of the ensemble
    of several that `ensembles.make_ensemble` makes in `root`."""
    from mnist_core import ensembles, evaluate

    run = members[0] if len(members) == 1 else ensembles.make_ensemble([m.run_id for m in members], root=root)
    accuracy = evaluate.evaluate_run(run)["accuracy"]
    names = " + ".join(f"{member.architecture}@{member.config.seed}" for member in members)
    print(f"{kind}: {names}: {100 * accuracy:.2f} %", flush=True)
    return {"kind": kind, "models": names, "test_accuracy": accuracy, "mistakes": round((1 - accuracy) * 10_000)}


def main() -> None:
    """Train or reuse the draws, score them, their pairs and all of them together; write the results."""
    parser = benchlib.parser(__doc__.split("\n\n")[0], epochs=1, train_subset=5000, best_seeds=[0], strided_seeds=[0])
    parser.add_argument("--best-seeds", type=int, nargs="+", default=[0, 1], help="Best preset draws (default 0 1)")
    parser.add_argument(
        "--strided-seeds", type=int, nargs="+", default=[0, 1], help="Strided preset draws (default 0 1)"
    )
    parser.add_argument("--epochs", type=int, default=None, help="epochs per draw (default: the preset's own)")
    parser.add_argument("--train-subset", type=int, default=None, help="training images (default: all)")
    parser.add_argument("--reuse", default=None, help="a runs folder to take finished runs (all digits) from")
    args = benchlib.parse(parser)

    from mnist_core import ensembles

    root = benchlib.temp_runs_dir("ensemble")
    draws = {
        preset: [
            benchlib.finished_run(f"{preset}@{seed}", args.reuse, root, args.epochs, args.train_subset)
            for seed in dict.fromkeys(seeds)  # a seed given twice is one draw
        ]
        for preset, seeds in ((BEST, args.best_seeds), (STRIDED, args.strided_seeds))
    }
    everyone = draws[BEST] + draws[STRIDED]
    singles = [scored("one model", [run], root / "runs") for run in everyone]
    pairs = [scored("pair", list(pair), root / "runs") for pair in itertools.product(draws[BEST], draws[STRIDED])]
    together = [scored("all", everyone, root / "runs")] if 2 < len(everyone) <= ensembles.MAX_MEMBERS else []
    benchlib.table(
        "\nMNIST test accuracy: each draw, each Best + Strided pair, all of them",
        singles + pairs + together,
        [("", "kind"), ("models", "models"), ("test accuracy", "test_accuracy", 4), ("mistakes", "mistakes")],
    )
    # Rounded: 9,975 right of 10,000 must count as 99.75 % whatever the float division left.
    pair_accuracies = [round(row["test_accuracy"], 6) for row in pairs]
    reaching = sum(accuracy >= TARGET_ENSEMBLE for accuracy in pair_accuracies)
    print(
        f"{len(pairs)} pairs: median {100 * median(pair_accuracies):.2f} %, from {100 * min(pair_accuracies):.2f} "
        f"to {100 * max(pair_accuracies):.2f} %; {reaching} of {len(pairs)} at {100 * TARGET_ENSEMBLE:.2f} % or more"
    )
    checks = [
        benchlib.check(
            "Best + Strided ensemble, median pair, MNIST test",
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
        lambda payload: {"median_pair": median(pair_accuracies), "pairs_reaching_target": f"{reaching}/{len(pairs)}"},
    )


if __name__ == "__main__":
    main()
