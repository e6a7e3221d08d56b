"""The ensemble of presets on MNIST's test set: every ensemble of two or more of some presets' draws, the median one.

Each of --members (KEY or KEY@SEED; default two draws of the Best preset and one of the Robust one) is a run of
that preset trained here with its defaults (or taken, trained, from --reuse: a runs folder holding finished runs
of it). Each is scored on the 10,000 test images; then every subset of two to --max-size of them is made into an
ensemble the studio's own way (`ensembles.make_ensemble`: their probabilities averaged) and scored the same way.
The check is on the median ensemble, not the luckiest one: the target is what averaging the presets' models gives,
not what one pick of them happened to give.
"""

from __future__ import annotations

import itertools

import benchlib
from benchlib import median

TARGET_ENSEMBLE = 0.9975  # MNIST test accuracy of the median ensemble of presets


def scored(kind: str, members: list, root) -> dict:
    """Return one table row (kind, members as preset@seed, test accuracy, mistakes) of one run, or of the ensemble
    of several that `ensembles.make_ensemble` makes in `root`."""
    from mnist_core import ensembles, evaluate

    run = members[0] if len(members) == 1 else ensembles.make_ensemble([m.run_id for m in members], root=root)
    result = evaluate.evaluate_run(run)
    names = " + ".join(f"{member.architecture}@{member.config.seed}" for member in members)
    print(f"{kind}: {names}: {100 * result['accuracy']:.2f} %", flush=True)
    return {
        "kind": kind,
        "models": names,
        "test_accuracy": result["accuracy"],
        "mistakes": len(result["misclassified"]),
    }


def main() -> None:
    """Train or reuse the members, score each and every ensemble of them; write the results."""
    parser = benchlib.parser(__doc__.split("\n\n")[0], epochs=1, train_subset=5000)
    parser.add_argument(
        "--members",
        nargs="+",
        default=["best_cnn@0", "best_cnn@1", "robust_cnn@0"],
        help="KEY or KEY@SEED each (default: best_cnn@0 best_cnn@1 robust_cnn@0)",
    )
    parser.add_argument("--max-size", type=int, default=4, help="largest ensemble scored (default 4)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per member (default: its preset's own)")
    parser.add_argument("--train-subset", type=int, default=None, help="training images (default: all)")
    parser.add_argument("--reuse", default=None, help="a runs folder to take finished preset runs from")
    args = benchlib.parse(parser)

    from mnist_core import ensembles

    root = benchlib.temp_runs_dir("ensemble")
    members = [
        benchlib.finished_run(preset, args.reuse, root, args.epochs, args.train_subset)
        for preset in dict.fromkeys(args.members)  # a member named twice is one draw
    ]
    largest = min(args.max_size, len(members), ensembles.MAX_MEMBERS)
    singles = [scored("one model", [run], root / "runs") for run in members]
    ensembled = [
        scored(f"{size} averaged", list(subset), root / "runs")
        for size in range(ensembles.MIN_MEMBERS, largest + 1)
        for subset in itertools.combinations(members, size)
    ]
    benchlib.table(
        "\nMNIST test accuracy: each member, then every ensemble of them",
        singles + ensembled,
        [("", "kind"), ("models", "models"), ("test accuracy", "test_accuracy", 4), ("mistakes", "mistakes")],
    )
    # Mistakes, not float accuracies, decide: 25 mistakes in 10,000 is 99.75 % exactly.
    allowed = round((1 - TARGET_ENSEMBLE) * 10_000)
    reaching = sum(row["mistakes"] <= allowed for row in ensembled)
    accuracies = [row["test_accuracy"] for row in ensembled]
    if accuracies:
        print(
            f"{len(ensembled)} ensembles: median {100 * median(accuracies):.2f} %, from {100 * min(accuracies):.2f} "
            f"to {100 * max(accuracies):.2f} %; {reaching} of them at {100 * TARGET_ENSEMBLE:.2f} % or more"
        )
    median_mistakes = median([row["mistakes"] for row in ensembled])
    checks = [
        benchlib.check(
            "ensemble of presets, median ensemble, MNIST test (mistakes of 10,000)",
            median_mistakes,
            allowed,
            higher_is_better=False,
        )
    ]
    benchlib.write_results(
        "ensemble",
        {"settings": vars(args) | {"data": None}, "results": singles + ensembled, "checks": checks},
        args.out,
        lambda payload: {
            "median_ensemble_accuracy": median(accuracies),
            "ensembles_reaching_target": f"{reaching}/{len(ensembled)}",
        },
    )


if __name__ == "__main__":
    main()
