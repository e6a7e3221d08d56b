"""My drawings at scale, and how models read drawn digits: scoring one model on 1,000 saved drawings, each
preset's accuracy on the procedural drawn-digit set beside its MNIST test accuracy, and the ensemble of presets.

1,000 procedural drawings (strokes rendered like the canvas: two or three ways of writing each digit, pens of 6 to
38 px, slants, turns, proportions, a wobbly hand, sizes, positions; mnist_core/synthetic.py) are saved through the
Draw page's own path; then, --repeats times, the saved set is read back from disk (PNG files and labels.csv) and
one model scores all of it. Each preset in --presets (KEY, or KEY@SEED for another seed than 0) is trained here
with its defaults (or taken, trained, from --reuse: a runs folder holding a finished run of it), then scored on
the MNIST test set and on the procedural set; then the ensemble of all of them (their averaged probabilities) is
scored the same way (its MNIST target is checked by ensemble.py).
"""

from __future__ import annotations

import benchlib
from benchlib import fmt, median

TARGET_SCORE_S = 1.0  # read and score 1,000 saved drawings
QUICK, ROBUST = "fast_cnn", "robust_cnn"


def main() -> None:
    """Save the drawings, time reading and scoring them, train and score the presets; write the results."""
    parser = benchlib.parser(__doc__.split("\n\n")[0], repeats=2, epochs=1, train_subset=5000)
    parser.add_argument("--drawings", type=int, default=1000, help="procedural drawings saved (default 1,000)")
    parser.add_argument("--repeats", type=int, default=5, help="timed read-and-score passes (default 5)")
    parser.add_argument("--presets", nargs="+", default=[QUICK, "best_cnn", ROBUST], help="KEY or KEY@SEED")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per preset (default: its own)")
    parser.add_argument("--train-subset", type=int, default=None, help="training images (default: all)")
    parser.add_argument("--reuse", default=None, help="a runs folder to take finished preset runs from")
    args = benchlib.parse(parser)

    from mnist_core import drawings, ensembles, evaluate, synthetic
    from mnist_core.models import run_predictor

    root = benchlib.temp_runs_dir("drawings")
    folder = root / "drawings"
    images, labels = synthetic.drawn_digits(args.drawings, seed=1)
    with benchlib.Stopwatch() as saving:
        for image, label in zip(images, labels, strict=True):
            drawings.save_drawing(image, int(label), root=folder)
    print(f"saved {args.drawings:,} drawings in {fmt(saving.seconds, 1)} s", flush=True)

    trained = [
        benchlib.finished_run(preset, args.reuse, root, args.epochs, args.train_subset) for preset in args.presets
    ]
    labels = dict(zip((run.run_id for run in trained), args.presets, strict=True))
    if len(trained) >= ensembles.MIN_MEMBERS:
        # The ensemble lives beside its members' copies, in this benchmark's own runs folder.
        members = [run.run_id for run in trained]
        ensemble = ensembles.make_ensemble(members, "ensemble of presets", root=root / "runs")
        trained.append(ensemble)
    results = []
    for run in trained:
        test = evaluate.evaluate_run(run)["accuracy"]
        run_predictor(run)  # loaded once, as the Evaluate page has it
        reads, scores = [], []
        for _ in range(args.repeats):
            with benchlib.Stopwatch() as reading:
                saved = drawings.load_drawings(folder)
            with benchlib.Stopwatch() as scoring:
                on_drawings = evaluate.score_images(run, saved.images, saved.labels)["accuracy"]
            reads.append(reading.seconds)
            scores.append(scoring.seconds)
        totals = [read + score for read, score in zip(reads, scores, strict=True)]
        results.append(
            {
                "preset": labels.get(run.run_id, "ensemble"),
                "run": run.run_id,
                "epochs": len(run.epochs) or None,
                "test_accuracy": test,
                "drawn_accuracy": on_drawings,
                "read_s": median(reads),
                "score_s": median(scores),
                "total_s": median(totals),
                "total_max_s": max(totals),
            }
        )
    benchlib.table(
        f"\n{args.drawings:,} saved drawings: read back and scored (median of {args.repeats}); accuracies",
        results,
        [
            ("preset", "preset"),
            ("epochs", "epochs"),
            ("MNIST test", "test_accuracy", 4),
            ("drawn digits", "drawn_accuracy", 4),
            ("read s", "read_s", 3),
            ("score s", "score_s", 3),
            ("total s", "total_s", 3),
            ("max s", "total_max_s", 3),
        ],
    )
    by_preset = {row["preset"]: row for row in results}
    if QUICK in by_preset and ROBUST in by_preset:
        gain = by_preset[ROBUST]["drawn_accuracy"] - by_preset[QUICK]["drawn_accuracy"]
        print(f"robust preset's gain over the Quick one on drawn digits: {100 * gain:+.1f} points")
    slowest = max(results, key=lambda row: row["total_s"])
    checks = [
        benchlib.check(
            f"read and score {args.drawings:,} drawings ({slowest['preset']})",
            slowest["total_s"],
            TARGET_SCORE_S,
            higher_is_better=False,
            unit=" s",
        )
    ]
    if QUICK in by_preset and ROBUST in by_preset:
        checks.append(
            benchlib.check(
                "robust gain over Quick on drawn digits", 100 * gain, 0.0, higher_is_better=True, unit=" points"
            )
        )
    benchlib.write_results(
        "drawings",
        {
            "settings": vars(args) | {"data": None},
            "saving_s": saving.seconds,
            "results": results,
            "checks": checks,
            "note": "; ".join(f"{r['preset']}: {100 * r['drawn_accuracy']:.1f} % on drawn digits" for r in results),
        },
        args.out,
        lambda payload: {row["preset"]: row["drawn_accuracy"] for row in payload["results"]},
    )


if __name__ == "__main__":
    main()
