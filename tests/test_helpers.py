"""Fast unit tests of the pure helpers: dataset views, labels, chart helpers, the comparison table, run snapshots
read from hand-written run folders, and the evaluation galleries. No model, no MNIST, no Streamlit, no browser."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from mnist_core import charts, compare, labels, runfiles, runs, storage
from mnist_core.config import TrainConfig
from mnist_core.evaluate import filter_misclassified, gallery, stored_evaluation
from mnist_core.explore import (
    SPLITS,
    DatasetView,
    class_counts,
    filtered_positions,
    mean_images,
    page_count,
    page_of,
    pixel_histogram,
)
from mnist_core.settings import PUBLISHED_CURVES_CSV

# ----- dataset views --------------------------------------------------------------------------------------------

SPLIT_SIZES = {"train": 40, "validation": 25, "test": 31}


def synthetic_view(seed: int = 0) -> DatasetView:
    """Return a small view of random uint8 digits, every digit 0-9 at least once in every split."""
    rng = np.random.default_rng(seed)
    images, digits, source_index = {}, {}, {}
    for split, size in SPLIT_SIZES.items():
        split_labels = np.concatenate([np.arange(10), rng.integers(0, 10, size - 10)]).astype(np.uint8)
        rng.shuffle(split_labels)
        images[split] = rng.integers(0, 256, (size, 28, 28), dtype=np.uint8)
        digits[split] = split_labels
        source_index[split] = np.arange(size)
    return DatasetView(images=images, labels=digits, source_index=source_index, source="synthetic")


def view_of(split_images: np.ndarray, split_labels: list[int]) -> DatasetView:
    """Return a view holding the same images and labels in every split."""
    split_labels = np.asarray(split_labels, dtype=np.uint8)
    index = np.arange(len(split_labels))
    return DatasetView(
        images=dict.fromkeys(SPLITS, split_images),
        labels=dict.fromkeys(SPLITS, split_labels),
        source_index=dict.fromkeys(SPLITS, index),
        source="hand-made",
    )


def test_filtered_positions_are_exactly_the_positions_with_that_label():
    view = synthetic_view()
    for split in SPLITS:
        split_labels = view.labels[split]
        assert filtered_positions(view, split, None).tolist() == list(range(len(split_labels)))
        found = []
        for digit in range(10):
            positions = filtered_positions(view, split, digit)
            assert positions.tolist() == [i for i, label in enumerate(split_labels) if label == digit]
            found += positions.tolist()
        assert sorted(found) == list(range(len(split_labels)))  # the ten digits partition the split


def test_filtered_positions_of_a_digit_not_in_the_split_are_empty():
    view = view_of(np.zeros((4, 28, 28), np.uint8), [1, 1, 2, 1])
    assert filtered_positions(view, "train", 1).tolist() == [0, 1, 3]
    assert filtered_positions(view, "train", 7).tolist() == []


@pytest.mark.parametrize(
    ("total", "per_page", "expected"),
    [(0, 10, 1), (1, 10, 1), (10, 10, 1), (11, 10, 2), (95, 12, 8), (96, 12, 8), (97, 12, 9)],
)
def test_page_count_rounds_up_and_is_at_least_one(total, per_page, expected):
    assert page_count(total, per_page) == expected


def test_pages_cover_the_positions_in_order_and_are_empty_past_the_end():
    view = synthetic_view()
    positions = filtered_positions(view, "train", None)  # 40 positions
    per_page = 7
    pages = [page_of(positions, page, per_page) for page in range(1, page_count(len(positions), per_page) + 1)]
    assert [len(page) for page in pages] == [7, 7, 7, 7, 7, 5]
    assert np.concatenate(pages).tolist() == positions.tolist()
    assert page_of(positions, 3, per_page).tolist() == list(range(14, 21))
    assert page_of(positions, 7, per_page).tolist() == []
    digit_positions = filtered_positions(view, "test", 4)
    assert page_of(digit_positions, 1, 2).tolist() == digit_positions[:2].tolist()


def test_class_counts_match_a_count_of_each_digit():
    view = synthetic_view()
    counts = class_counts(view)
    assert list(counts) == list(SPLITS)
    for split in SPLITS:
        expected = [int(np.sum(view.labels[split] == digit)) for digit in range(10)]
        assert counts[split] == expected
        assert sum(counts[split]) == SPLIT_SIZES[split]


def test_mean_images_are_the_per_digit_pixel_means():
    view = synthetic_view()
    for split in SPLITS:
        means = mean_images(view, split)
        assert means.shape == (10, 28, 28) and means.dtype == np.float32
        for digit in range(10):
            members = [
                image.astype(np.float64)
                for image, label in zip(view.images[split], view.labels[split], strict=True)
                if label == digit
            ]
            expected = sum(members) / len(members)
            np.testing.assert_allclose(means[digit], expected, rtol=1e-6)


def test_mean_image_of_constant_digits_by_hand():
    # Digit d is an image filled with 10 * d; a second 3 is all 255: the mean 3 is (30 + 255) / 2 = 142.5.
    images = np.stack([np.full((28, 28), 10 * d, np.uint8) for d in range(10)] + [np.full((28, 28), 255, np.uint8)])
    means = mean_images(view_of(images, [*range(10), 3]), "test")
    assert np.all(means[3] == 142.5)
    assert [float(means[d, 0, 0]) for d in range(10) if d != 3] == [10.0 * d for d in range(10) if d != 3]


def test_pixel_histogram_matches_numpy_and_counts_every_pixel():
    view = synthetic_view()
    for split in SPLITS:
        counts, edges = pixel_histogram(view, split)
        assert edges.tolist() == [8.0 * k for k in range(33)]
        expected, _ = np.histogram(view.images[split], bins=edges)
        assert counts.tolist() == expected.tolist()
        assert counts.sum() == SPLIT_SIZES[split] * 28 * 28
    counts, edges = pixel_histogram(view, "train", bins=256)
    assert counts.tolist() == [int(np.sum(view.images["train"] == value)) for value in range(256)]
    assert len(edges) == 257


def test_pixel_histogram_of_a_hand_made_image():
    image = np.zeros((1, 28, 28), np.uint8)
    image[0, 0, 0], image[0, 0, 1], image[0, 0, 2], image[0, 5, 5] = 7, 8, 255, 248
    counts, _ = pixel_histogram(view_of(image, [0]), "train", bins=32)
    expected = [0] * 32
    expected[0] = 28 * 28 - 3  # the zeros and the 7
    expected[1] = 1  # 8 starts the second bin of eight values
    expected[31] = 2  # 248 and 255
    assert counts.tolist() == expected
    counts, _ = pixel_histogram(view_of(image, [0]), "train", bins=2)
    assert counts.tolist() == [28 * 28 - 2, 2]  # below 128, from 128


# ----- labels ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.98765, "98.77 %"),
        (1, "100.00 %"),
        (0, "0.00 %"),
        (0.5, "50.00 %"),
        (0.00004, "0.00 %"),
        (0.123456, "12.35 %"),
    ],
)
def test_percent_writes_a_fraction_with_two_decimals(value, expected):
    assert labels.percent(value) == expected


@pytest.mark.parametrize("value", [None, True, False, "0.5", [0.5]])
def test_percent_and_seconds_show_a_dash_for_anything_but_a_number(value):
    assert labels.percent(value) == labels.MISSING == "–"
    assert labels.seconds(value) == "–"


@pytest.mark.parametrize(
    ("value", "expected"), [(12.34, "12.3"), (5, "5.0"), (0, "0.0"), (59.96, "60.0"), (3725.27, "3725.3")]
)
def test_seconds_have_one_decimal(value, expected):
    assert labels.seconds(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "–"),
        (0, "0 s"),
        (42.4, "42 s"),
        (59.4, "59 s"),
        (59.6, "1m 00s"),  # rounds to 60: minutes, never '60 s'
        (60, "1m 00s"),
        (185, "3m 05s"),
        (3599.4, "59m 59s"),
        (3599.6, "1h 00m"),  # rounds to 3600: hours, never '60m 00s'
        (3725, "1h 02m"),
        (25 * 3600 + 61, "25h 01m"),
    ],
)
def test_duration_picks_seconds_minutes_or_hours_after_rounding(value, expected):
    assert labels.duration(value) == expected


def test_counts_digits_and_times_read_as_words():
    assert [labels.counted(n, "epoch") for n in (0, 1, 2, 1200)] == ["0 epochs", "1 epoch", "2 epochs", "1,200 epochs"]
    assert [labels.digit_with_article(d) for d in range(10)] == [f"a {d}" for d in range(8)] + ["an 8", "a 9"]
    # evaluation.json's stamp (milliseconds, UTC), another zone turned to UTC, a naive time as it is, and junk.
    assert labels.moment("2026-12-02T01:57:22.800+00:00") == "2026-12-02 01:57 UTC"
    assert labels.moment("2026-12-02T03:57:22+02:00") == "2026-12-02 01:57 UTC"
    assert labels.moment("2026-12-02T01:57:22") == "2026-12-02 01:57"
    assert labels.moment("yesterday") == "yesterday"


@pytest.mark.parametrize(
    ("run_id", "architecture", "expected"),
    [
        ("20261201-093015-cnn-1a2b", "cnn", "cnn 09:30 1a2b"),
        ("20261201-235959-deeper_cnn_bn-ffff", "deeper_cnn_bn", "deeper_cnn_bn 23:59 ffff"),
        ("20261201-093015-cnn-1a2b", None, "? 09:30 1a2b"),
        ("scratch", "mlp", "mlp scratch atch"),  # not a run id: the whole id stands in for the time
    ],
)
def test_short_name_is_architecture_time_and_id_suffix(run_id, architecture, expected):
    assert labels.short_name(run_id, architecture) == expected


# ----- chart helpers --------------------------------------------------------------------------------------------


def test_smooth_by_hand():
    assert charts.smooth([], 0.5) == []
    assert charts.smooth([1.0, 2.0, 3.0], 0.5) == [1.0, 1.5, 2.25]
    assert charts.smooth([10.0, 0.0, 0.0], 0.9) == pytest.approx([10.0, 9.0, 8.1])
    values = [0.3, 0.9, 0.1, 0.7]
    assert charts.smooth(values, 0.0) == values


def test_smooth_matches_the_closed_form_of_the_moving_average():
    values, weight = [0.2, 0.8, 0.5, 0.9, 0.1, 0.6], 0.7
    # out[n] = w^n v[0] + sum over k = 1..n of (1 - w) w^(n - k) v[k]
    expected = [
        weight**n * values[0] + sum((1 - weight) * weight ** (n - k) * values[k] for k in range(1, n + 1))
        for n in range(len(values))
    ]
    assert charts.smooth(values, weight) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0.0, 0.2], ".0%"),  # a span of exactly 0.2: whole percents
        ([0.0, 0.19], ".1%"),
        ([0.0, 0.02], ".1%"),
        ([0.0, 0.019], ".2%"),
        ([0.0, 0.002], ".2%"),
        ([0.0, 0.0019], ".3%"),
        ([0.99, 0.99], ".3%"),  # no span at all
        ([0.5], ".0%"),  # one value: no neighbours to tell apart
        ([], ".0%"),
        ([None, math.nan, 0.9, 0.95, math.inf], ".1%"),  # only the finite numbers count
        ([None, 0.9], ".0%"),
    ],
)
def test_percent_tick_format_decimals_follow_the_span(values, expected):
    assert charts.percent_tick_format(values) == expected


# ----- comparison table and series --------------------------------------------------------------------------------


def snapshot_run(
    run_id: str,
    architecture: str | None = "cnn",
    vals=(),
    seconds=None,
    test: float | None = None,
    problem: str | None = None,
    **status,
) -> runs.Run:
    """Return a run snapshot with one epoch per entry of `vals` (validation accuracies), `seconds` per epoch."""
    seconds = seconds or [10.0] * len(vals)
    epochs = tuple(
        {"epoch": i + 1, "val_accuracy": v, "accuracy": v, "loss": 1.0, "val_loss": 1.0, "seconds": s}
        for i, (v, s) in enumerate(zip(vals, seconds, strict=True))
    )
    config = TrainConfig.for_architecture(architecture, epochs=5) if architecture else None
    return runs.Run(
        path=Path("/runs") / run_id,
        config=config,
        status={"state": runs.FINISHED, **status},
        progress={},
        epochs=epochs,
        evaluation=None if test is None else {"accuracy": test, "epochs_done": len(epochs)},
        model_files=frozenset(),
        problem=problem,
    )


def published_rows(architecture: str) -> list[dict]:
    """Return the shipped published curve of `architecture`, read here with csv (not through mnist_core)."""
    with open(PUBLISHED_CURVES_CSV, newline="") as handle:
        return [row for row in csv.DictReader(handle) if row["architecture"] == architecture]


def test_best_run_ids_rank_by_best_validation_accuracy_and_keep_ties_in_order():
    candidates = [
        snapshot_run("a", vals=(0.90,)),
        snapshot_run("b", vals=(0.95, 0.97, 0.96)),  # its best epoch counts, not its last
        snapshot_run("c"),  # no epoch yet: ranked as 0
        snapshot_run("d", vals=(0.99,)),
        snapshot_run("e", vals=(0.93,)),
        snapshot_run("f", vals=(0.97,)),  # ties with b, listed after it
    ]
    best = {run.run_id: max((row["val_accuracy"] for row in run.epochs), default=0.0) for run in candidates}
    assert best == {"a": 0.90, "b": 0.97, "c": 0.0, "d": 0.99, "e": 0.93, "f": 0.97}
    assert compare.best_run_ids(candidates) == ["d", "b", "f"]
    assert compare.best_run_ids(candidates, count=10) == ["d", "b", "f", "e", "a", "c"]
    assert compare.best_run_ids(candidates, count=10) == sorted(best, key=lambda run_id: -best[run_id])
    assert compare.best_run_ids([]) == []


def test_epochs_of_is_the_longest_run_or_none():
    assert compare.epochs_of([]) is None
    assert compare.epochs_of([snapshot_run("a")]) is None
    assert compare.epochs_of([snapshot_run("a", vals=(0.1, 0.2)), snapshot_run("b", vals=(0.1,) * 5)]) == 5


def test_run_series_has_one_series_per_run_with_epochs():
    first = snapshot_run("20260101-093000-cnn-1a2b", vals=(0.9, 0.95))
    empty = snapshot_run("20260101-100000-cnn-2b3c")
    second = snapshot_run("20260102-114500-mlp-ffff", architecture="mlp", vals=(0.5,))
    series = compare.run_series([first, empty, second])
    assert [item.name for item in series] == ["cnn 09:30 1a2b", "mlp 11:45 ffff"]
    assert [item.rows for item in series] == [list(first.epochs), list(second.epochs)]
    assert not any(item.dashed for item in series)


def test_published_series_are_dashed_and_cut_after_the_given_epochs():
    series = compare.published_series(["mlp", "deeper_cnn_bn"], epochs=3)
    assert [item.name for item in series] == ["published mlp", "published deeper_cnn_bn"]
    assert all(item.dashed for item in series)
    for item, key in zip(series, ["mlp", "deeper_cnn_bn"], strict=True):
        shipped = published_rows(key)[:3]
        assert [row["epoch"] for row in item.rows] == [1, 2, 3]
        assert [row["val_accuracy"] for row in item.rows] == [float(row["val_accuracy"]) for row in shipped]
        assert [row["seconds"] for row in item.rows] == [float(row["epoch_seconds"]) for row in shipped]
        elapsed = np.cumsum([float(row["epoch_seconds"]) for row in shipped]).tolist()
        assert [row["elapsed"] for row in item.rows] == pytest.approx(elapsed)
    whole = compare.published_series(["cnn", "deeper_cnn_bn"])
    assert [len(item.rows) for item in whole] == [len(published_rows("cnn")), len(published_rows("deeper_cnn_bn"))]
    assert [len(item.rows) for item in whole] == [100, 11]


def test_comparison_rows_of_runs_by_hand():
    evaluated = snapshot_run(
        "20260101-093000-cnn-1a2b", vals=(0.95, 0.975, 0.97), seconds=[50.0, 30.0, 40.0], test=0.9812
    )
    unevaluated = snapshot_run("20260101-100000-mlp-2b3c", architecture="mlp", vals=(0.5, 0.6), seconds=[3.0, 5.0])
    queued = snapshot_run("20260101-110000-fast_cnn-3c4d", architecture="fast_cnn")
    rows = compare.comparison_rows([evaluated, unevaluated, queued], [])
    assert rows == [
        {
            "name": "20260101-093000-cnn-1a2b",
            "architecture": "cnn",
            "parameters": 1_419_210,
            labels.EPOCHS_DONE: 3,
            "best val accuracy": "97.50 %",
            "test accuracy": "98.12 %",
            labels.SECONDS_PER_EPOCH: "40.0",  # the median of 30, 40, 50
        },
        {
            "name": "20260101-100000-mlp-2b3c",
            "architecture": "mlp",
            "parameters": 235_146,
            labels.EPOCHS_DONE: 2,
            "best val accuracy": "60.00 %",
            "test accuracy": "–",
            labels.SECONDS_PER_EPOCH: "5.0",  # the upper middle of two
        },
        {
            "name": "20260101-110000-fast_cnn-3c4d",
            "architecture": "fast_cnn",
            "parameters": 29_402,
            labels.EPOCHS_DONE: 0,
            "best val accuracy": "–",
            "test accuracy": "–",
            labels.SECONDS_PER_EPOCH: "–",
        },
    ]


def test_comparison_rows_of_published_runs_come_from_the_shipped_curves():
    rows = compare.comparison_rows([], ["cnn", "deeper_cnn_bn"])
    assert [row["name"] for row in rows] == ["published cnn (GPU)", "published deeper_cnn_bn (GPU)"]
    for row, key, test_accuracy in zip(rows, ["cnn", "deeper_cnn_bn"], ["97.39 %", "–"], strict=True):
        shipped = published_rows(key)
        epoch_seconds = sorted(float(r["epoch_seconds"]) for r in shipped)
        assert row["architecture"] == key
        assert row[labels.EPOCHS_DONE] == len(shipped)
        assert row["best val accuracy"] == f"{100 * max(float(r['val_accuracy']) for r in shipped):.2f} %"
        assert row["test accuracy"] == test_accuracy
        assert row[labels.SECONDS_PER_EPOCH] == f"{epoch_seconds[len(epoch_seconds) // 2]:.1f}"
    assert rows[0]["parameters"] == 1_419_210 and rows[1]["parameters"] == 616_682
    assert rows[1]["best val accuracy"] == "99.12 %"  # the architecture's note: val 99.12 % at epoch 11


# ----- run snapshots ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "expected"),
    [([], None), ([5.0], 5.0), ([3.0, 1.0, 2.0], 2.0), ([4.0, 1.0, 3.0, 2.0], 3.0), ([9.0, 7.0], 9.0)],
)
def test_median_epoch_seconds_takes_the_upper_middle(rows, expected):
    assert runs.median_epoch_seconds([{"seconds": s} for s in rows]) == expected


def with_progress(config: TrainConfig, progress: dict, epochs_done: int = 0) -> runs.Run:
    """Return a running snapshot of `config` at `progress` with `epochs_done` finished epochs."""
    return runs.Run(
        path=Path("/runs/20260101-000000-mlp-0000"),
        config=config,
        status={"state": runs.RUNNING},
        progress=progress,
        epochs=tuple({"epoch": i + 1, "seconds": 1.0, "val_accuracy": 0.5} for i in range(epochs_done)),
        evaluation=None,
        model_files=frozenset(),
    )


def test_batches_done_by_hand():
    config = TrainConfig.for_architecture("mlp", epochs=3, batch_size=100, train_subset=1000)  # 10 batches an epoch
    assert runs.batches_done(with_progress(config, {}, epochs_done=2)) == (20, 30, 10)  # no progress: epochs only
    at = {"epoch": 2, "batch": 4, "steps_per_epoch": 10}
    assert runs.batches_done(with_progress(config, at)) == (14, 30, 10)
    assert runs.batches_done(with_progress(config, {**at, "steps_per_epoch": 12})) == (16, 36, 12)  # the trainer's
    assert runs.batches_done(with_progress(config, {"epoch": 3, "batch": 7})) == (27, 30, 10)
    odd = TrainConfig.for_architecture("mlp", epochs=2, batch_size=64, train_subset=1000)  # ceil(1000 / 64) = 16
    assert runs.batches_done(with_progress(odd, {"epoch": 1, "batch": 5})) == (5, 32, 16)


def test_best_val_accuracy_is_the_best_epoch_or_none():
    assert snapshot_run("a", vals=(0.8, 0.93, 0.91)).best_val_accuracy == 0.93
    assert snapshot_run("a").best_val_accuracy is None


def test_summary_of_a_run_by_hand():
    run = snapshot_run(
        "20260101-093000-cnn-1a2b",
        vals=(0.95, 0.97),
        seconds=[12.0, 8.0],
        test=0.975,
        created="2026-01-01T09:30:00",
        error=None,
    )
    assert run.summary() == {
        "run_id": "20260101-093000-cnn-1a2b",
        "name": "20260101-093000-cnn-1a2b",  # no name given: its id
        "tags": (),
        "architecture": "cnn",
        "state": runs.FINISHED,
        "epochs_done": 2,
        "epochs_target": 5,
        "best_val_accuracy": 0.97,
        "test_accuracy": 0.975,
        "seconds_per_epoch": 12.0,
        "created": "2026-01-01T09:30:00",
        "error": None,
    }


def test_summary_of_a_damaged_run_shows_its_problem():
    run = snapshot_run("x", architecture=None, problem="config.json: empty", error="older error")
    summary = run.summary()
    assert summary["state"] == runs.DAMAGED and run.damaged
    assert summary["architecture"] is None and summary["epochs_target"] is None
    assert summary["error"] == "config.json: empty"  # the problem before the stored error
    assert summary["test_accuracy"] is None and summary["seconds_per_epoch"] is None


# ----- run folders on disk ----------------------------------------------------------------------------------------

CONFIG = TrainConfig.for_architecture("mlp", epochs=3, batch_size=100, train_subset=1000)
EPOCH_ROWS = [
    {
        "epoch": 1,
        "loss": 1.5,
        "accuracy": 0.6,
        "val_loss": 1.2,
        "val_accuracy": 0.7,
        "seconds": 4.0,
        "elapsed": 4.0,
        "learning_rate": 0.001,
    },
    {
        "epoch": 2,
        "loss": 0.9,
        "accuracy": 0.8,
        "val_loss": 0.8,
        "val_accuracy": 0.85,
        "seconds": 3.0,
        "elapsed": 7.0,
        "learning_rate": 0.001,
    },
]


def write_run(root: Path, run_id: str, created: str, state: str = runs.FINISHED, epochs=EPOCH_ROWS) -> Path:
    """Write a complete run folder (config, status, epochs) the way the trainer does; return its path."""
    path = root / run_id
    path.mkdir(parents=True)
    storage.write_json_atomic(path / runfiles.CONFIG, CONFIG.to_dict())
    status = {
        "state": state,
        "error": None,
        "pid": None,
        "supervisor_pid": None,
        "created": created,
        "started": created,
        "ended": created,
        "epochs_done": len(epochs),
        "best_val_accuracy": max((row["val_accuracy"] for row in epochs), default=None),
    }
    storage.write_json_atomic(path / runfiles.STATUS, status)
    storage.write_csv_atomic(path / runfiles.EPOCHS, list(epochs), runfiles.EPOCH_COLUMNS)
    return path


def test_read_run_reads_every_file_back(tmp_path):
    path = write_run(tmp_path, "20260101-100000-mlp-0001", "2026-01-01T10:00:00")
    progress = {"epoch": 3, "batch": 4, "steps_per_epoch": 10, "loss": 0.7, "accuracy": 0.81}
    storage.write_json_atomic(path / runfiles.PROGRESS, progress)
    run = runs.read_run(path)
    assert not run.damaged and run.problem is None
    assert run.run_id == "20260101-100000-mlp-0001" and run.state == runs.FINISHED
    assert run.config == CONFIG
    assert run.status["created"] == "2026-01-01T10:00:00" and run.status["epochs_done"] == 2
    assert run.progress == progress
    assert run.epochs == tuple(EPOCH_ROWS)
    assert isinstance(run.epochs[0]["epoch"], int) and isinstance(run.epochs[0]["seconds"], float)
    assert run.evaluation is None and run.model_files == frozenset() and not run.stop_requested
    assert run.best_val_accuracy == 0.85 and run.seconds_per_epoch == 4.0
    assert runs.batches_done(run) == (24, 30, 10)


def test_read_run_sees_models_the_stop_file_and_the_evaluation(tmp_path):
    path = write_run(tmp_path, "20260101-100000-mlp-0001", "2026-01-01T10:00:00")
    (path / runfiles.BEST_MODEL).write_bytes(b"")
    (path / runfiles.STOP).write_text("")
    evaluation = {"accuracy": 0.9, "loss": 0.3, "count": 10, "confusion_matrix": [], "per_class": [], "epochs_done": 2}
    storage.write_json_atomic(path / runfiles.EVALUATION, evaluation)
    run = runs.read_run(path)
    assert run.model_files == frozenset({runfiles.BEST_MODEL}) and run.has_model
    assert run.model_path("final") == path / runfiles.BEST_MODEL  # falls back to the model there is
    assert run.stop_requested
    assert run.evaluation == evaluation and stored_evaluation(run) == evaluation
    assert run.summary()["test_accuracy"] == 0.9


def truncated(text: str) -> str:
    return text[: len(text) // 2]


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        (runfiles.STATUS, "null", ["null", "not a JSON object"]),
        (runfiles.STATUS, "[1, 2]", ["not a JSON object"]),
        (runfiles.STATUS, "", ["empty"]),
        (runfiles.STATUS, json.dumps({"state": "paused", "created": "x"}), ["paused"]),
        (runfiles.STATUS, json.dumps({"state": "finished", "epochs_done": "2"}), ["epochs_done", "wrong type"]),
        (runfiles.STATUS, json.dumps({"state": "finished", "epochs_done": True}), ["epochs_done", "wrong type"]),
        (runfiles.CONFIG, truncated(json.dumps(CONFIG.to_dict())), ["not valid JSON"]),
        (runfiles.CONFIG, json.dumps({**CONFIG.to_dict(), "colour": "red"}), ["colour"]),
        (runfiles.CONFIG, json.dumps({**CONFIG.to_dict(), "epochs": 0}), ["epochs"]),
        (runfiles.EPOCHS, "epoch,loss\n1,0.5\n", ["header lacks"]),
        (runfiles.PROGRESS, json.dumps({"epoch": "one"}), ["epoch", "wrong type"]),
        (runfiles.EVALUATION, json.dumps({"accuracy": "high"}), ["accuracy", "wrong type"]),
    ],
)
def test_a_damaged_file_makes_the_run_damaged_naming_the_file(tmp_path, name, content, words):
    path = write_run(tmp_path, "20260101-100000-mlp-0001", "2026-01-01T10:00:00")
    (path / name).write_text(content)
    run = runs.read_run(path)
    assert run.damaged and run.state == runs.DAMAGED
    assert run.problem.startswith(f"{name}: "), run.problem
    for word in words:
        assert word in run.problem, run.problem
    assert not run.has_model
    assert run.summary()["error"] == run.problem


def test_epochs_out_of_order_are_damaged(tmp_path):
    path = write_run(tmp_path, "20260101-100000-mlp-0001", "2026-01-01T10:00:00")
    skipping = [EPOCH_ROWS[0], {**EPOCH_ROWS[1], "epoch": 3}]
    storage.write_csv_atomic(path / runfiles.EPOCHS, skipping, runfiles.EPOCH_COLUMNS)
    run = runs.read_run(path)
    assert run.problem.startswith(f"{runfiles.EPOCHS}: ") and "[1, 3]" in run.problem


def test_the_other_files_of_a_damaged_run_still_read(tmp_path):
    bad_status = write_run(tmp_path, "20260101-100000-mlp-0001", "2026-01-01T10:00:00")
    (bad_status / runfiles.STATUS).write_text("null")
    run = runs.read_run(bad_status)
    assert run.config == CONFIG and run.epochs == tuple(EPOCH_ROWS)
    assert run.status == {"state": runs.FAILED}  # what a run without a readable status stands as
    bad_config = write_run(tmp_path, "20260101-100000-mlp-0002", "2026-01-01T10:00:00")
    (bad_config / runfiles.CONFIG).write_text(truncated((bad_config / runfiles.CONFIG).read_text()))
    run = runs.read_run(bad_config)
    assert run.config is None and run.status["created"] == "2026-01-01T10:00:00"
    assert run.epochs == tuple(EPOCH_ROWS)
    assert run.summary()["architecture"] is None


def test_with_two_damaged_files_the_problem_names_the_first_one_read(tmp_path):
    path = write_run(tmp_path, "20260101-100000-mlp-0001", "2026-01-01T10:00:00")
    (path / runfiles.STATUS).write_text("null")
    (path / runfiles.CONFIG).write_text("{")
    assert runs.read_run(path).problem.startswith(f"{runfiles.STATUS}: holds null")  # status is read first
    storage.write_json_atomic(path / runfiles.STATUS, {"state": runs.FINISHED, "created": "x"})
    assert runs.read_run(path).problem.startswith(f"{runfiles.CONFIG}: not valid JSON")


def test_an_imported_run_needs_no_config_but_its_record(tmp_path):
    path = tmp_path / "20260101-100000-imported-0001"
    path.mkdir()
    storage.write_json_atomic(path / runfiles.STATUS, {"state": runs.IMPORTED, "created": "x"})
    assert runs.read_run(path).problem == f"{runfiles.IMPORTED}: missing"
    record = {"source": "a.keras", "format": "keras model", "architecture": None, "parameters": 7850}
    storage.write_json_atomic(path / runfiles.IMPORTED, record)
    run = runs.read_run(path)
    assert not run.damaged and run.config is None and run.parameters == 7850 and run.architecture is None
    storage.write_json_atomic(path / runfiles.IMPORTED, {**record, "parameters": "many"})
    assert runs.read_run(path).problem.startswith(f"{runfiles.IMPORTED}: parameters is 'many'")
    storage.write_json_atomic(path / runfiles.STATUS, {"state": runs.FINISHED, "created": "x"})
    assert runs.read_run(path).problem == f"{runfiles.CONFIG}: missing"  # a run trained here needs its config


def test_a_missing_status_or_config_is_named(tmp_path):
    path = write_run(tmp_path, "20260101-100000-mlp-0001", "2026-01-01T10:00:00")
    (path / runfiles.STATUS).unlink()
    assert runs.read_run(path).problem == f"{runfiles.STATUS}: missing"
    (path / runfiles.CONFIG).unlink()
    storage.write_json_atomic(path / runfiles.STATUS, {"state": runs.QUEUED, "created": "x"})
    assert runs.read_run(path).problem == f"{runfiles.CONFIG}: missing"


def test_list_runs_lists_good_and_damaged_runs_newest_first(tmp_path):
    root = tmp_path / "runs"
    write_run(root, "20260101-090000-mlp-0001", "2026-01-01T09:00:00")
    write_run(root, "20260101-110000-mlp-0003", "2026-01-01T11:00:00", state=runs.RUNNING, epochs=EPOCH_ROWS[:1])
    write_run(root, "20260101-100000-mlp-0002", "2026-01-01T10:00:00")
    write_run(root, "20260101-100000-mlp-0005", "2026-01-01T10:00:00")  # the same second: the id decides
    null_status = write_run(root, "20260101-120000-mlp-0004", "2026-01-01T12:00:00")
    (null_status / runfiles.STATUS).write_text("null")
    cut_config = write_run(root, "20260101-093000-mlp-0006", "2026-01-01T09:30:00")
    (cut_config / runfiles.CONFIG).write_text(truncated((cut_config / runfiles.CONFIG).read_text()))
    write_run(root, ".creating-20260101-130000-mlp-0007", "2026-01-01T13:00:00")  # being created: not listed
    (root / "notes").mkdir()  # neither config nor status: not a run
    (root / "readme.txt").write_text("not a folder")

    listed = runs.list_runs(root)
    assert [run.run_id for run in listed] == [
        "20260101-110000-mlp-0003",
        "20260101-100000-mlp-0005",
        "20260101-100000-mlp-0002",
        "20260101-093000-mlp-0006",
        "20260101-090000-mlp-0001",
        "20260101-120000-mlp-0004",  # no readable status, so no created time: last
    ]
    damaged = {run.run_id: run.problem for run in listed if run.damaged}
    assert set(damaged) == {"20260101-093000-mlp-0006", "20260101-120000-mlp-0004"}
    assert damaged["20260101-093000-mlp-0006"].startswith(f"{runfiles.CONFIG}: ")
    assert damaged["20260101-120000-mlp-0004"].startswith(f"{runfiles.STATUS}: ")
    good = [run for run in listed if not run.damaged]
    assert all(run.config == CONFIG for run in good)
    assert [run.state for run in good] == [runs.RUNNING] + [runs.FINISHED] * 3
    assert runs.list_runs(tmp_path / "nowhere") == []


# ----- evaluation galleries ---------------------------------------------------------------------------------------


def evaluation_result(seed: int = 0) -> dict:
    """Return a hand-made evaluation: 40 mistakes most confident first, 3 unsure 3s and 2 unsure 5s."""
    rng = np.random.default_rng(seed)
    mistakes = []
    for index in rng.permutation(200)[:40]:
        true = int(rng.integers(0, 10))
        predicted = int((true + rng.integers(1, 10)) % 10)
        mistakes.append({"index": int(index), "true": true, "predicted": predicted, "confidence": float(rng.random())})
    matrix = [[0] * 10 for _ in range(10)]
    for row in mistakes:
        matrix[row["true"]][row["predicted"]] += 1
    matrix[3][3], matrix[5][5] = 1234, 2
    unsure = [
        {"index": 7, "true": 3, "predicted": 3, "confidence": 0.41},
        {"index": 2, "true": 3, "predicted": 3, "confidence": 0.55},
        {"index": 9, "true": 3, "predicted": 3, "confidence": 0.60},
        {"index": 4, "true": 5, "predicted": 5, "confidence": 0.51},
        {"index": 8, "true": 5, "predicted": 5, "confidence": 0.97},
    ]
    return {
        "confusion_matrix": matrix,
        "misclassified": sorted(mistakes, key=lambda row: -row["confidence"]),
        "least_confident_correct": unsure,
    }


def test_filter_misclassified_keeps_the_matching_rows_in_order():
    rows = evaluation_result()["misclassified"]
    assert filter_misclassified(rows) == rows
    for true in range(10):
        assert filter_misclassified(rows, true=true) == [row for row in rows if row["true"] == true]
        assert filter_misclassified(rows, predicted=true) == [row for row in rows if row["predicted"] == true]
        for predicted in range(10):
            picked = filter_misclassified(rows, true, predicted)
            assert picked == [row for row in rows if (row["true"], row["predicted"]) == (true, predicted)]
    assert filter_misclassified([], 1, 2) == []


def test_gallery_of_a_cell_row_or_column_is_its_mistakes_most_confident_first():
    result = evaluation_result()
    mistakes = result["misclassified"]
    true, predicted = mistakes[0]["true"], mistakes[0]["predicted"]  # a cell that holds a mistake
    cases = {
        (true, predicted): [r for r in mistakes if r["true"] == true and r["predicted"] == predicted],
        (true, None): [r for r in mistakes if r["true"] == true],
        (None, predicted): [r for r in mistakes if r["predicted"] == predicted],
        (None, None): mistakes,
    }
    for (row_digit, column_digit), expected in cases.items():
        rows, text = gallery(result, row_digit, column_digit)
        assert rows == sorted(expected, key=lambda row: row["confidence"], reverse=True)
        assert text == f"{len(expected):,} {'mistake' if len(expected) == 1 else 'mistakes'}, most confident first"
    assert len(gallery(result, None, None)[0]) == 40
    one = [mistakes[0]]
    assert gallery({**result, "misclassified": one}, None, None) == (one, "1 mistake, most confident first")
    assert gallery({**result, "misclassified": []}, None, None) == ([], "No mistakes here")


def test_gallery_of_a_diagonal_cell_is_the_least_confident_correct_digits():
    result = evaluation_result()
    rows, text = gallery(result, 3, 3)
    assert [row["index"] for row in rows] == [7, 2, 9]
    assert rows == sorted(rows, key=lambda row: row["confidence"])
    assert text == "1,234 3s classified correctly (the 3 least sure of), least confident first"
    rows, text = gallery(result, 5, 5)
    assert [row["index"] for row in rows] == [4, 8]
    assert text == "2 5s classified correctly, least confident first"  # every correct 5 is shown
    rows, text = gallery(result, 0, 0)
    assert rows == [] and text == "0 0s classified correctly, least confident first"


def test_gallery_of_a_diagonal_cell_in_an_older_evaluation_asks_to_evaluate_again():
    result = evaluation_result()
    del result["least_confident_correct"]
    rows, text = gallery(result, 3, 3)
    assert rows == [] and "evaluate again to see the 3s" in text
    assert gallery(result, 3, None)[0] == [r for r in result["misclassified"] if r["true"] == 3]  # mistakes still


def test_stored_evaluation_is_kept_only_for_the_current_model():
    current = snapshot_run("a", vals=(0.9, 0.95), test=0.96)
    assert stored_evaluation(current) == {"accuracy": 0.96, "epochs_done": 2}
    continued = runs.Run(**{**current.__dict__, "epochs": (*current.epochs, {**current.epochs[-1], "epoch": 3})})
    assert stored_evaluation(continued) is None  # evaluated at 2 epochs, now 3
    assert stored_evaluation(snapshot_run("b", vals=(0.9,))) is None


def test_count_by_state_lists_every_training_state_and_imported_or_damaged_only_when_present():
    config = TrainConfig.for_architecture("mlp", epochs=1)
    states = [runs.FINISHED, runs.FINISHED, runs.QUEUED]
    made = [runs.Run(Path(f"/r/{i}"), config, {"state": s}, {}, (), None, frozenset()) for i, s in enumerate(states)]
    counts = runs.count_by_state(made)
    assert list(counts) == [state for state in runs.STATES if state not in (runs.PRUNED, runs.IMPORTED)]
    assert counts[runs.FINISHED] == 2 and counts[runs.QUEUED] == 1 and sum(counts.values()) == 3
    damaged = runs.Run(Path("/r/x"), None, {}, {}, (), None, frozenset(), problem="status.json: null")
    outside = runs.Run(Path("/r/y"), None, {"state": runs.IMPORTED}, {}, (), None, frozenset())
    with_both = runs.count_by_state([*made, damaged, outside])
    assert with_both[runs.DAMAGED] == 1 and with_both[runs.IMPORTED] == 1 and sum(with_both.values()) == 5


def test_a_given_name_replaces_the_short_name_in_legends_and_chips():
    config = TrainConfig.for_architecture("cnn", epochs=1)
    plain = runs.Run(Path("/r/20260101-093000-cnn-1a2b"), config, {"state": "finished"}, {}, (), None, frozenset())
    named = dataclasses.replace(plain, labels={"name": "first try"})
    assert plain.short_name == "cnn 09:30 1a2b" and named.short_name == "first try"
    rows = [{"epoch": 1, "val_accuracy": 0.9, "seconds": 1.0}]
    series = compare.run_series([dataclasses.replace(named, epochs=tuple(rows))])
    assert [item.name for item in series] == ["first try"]


def test_class_counts_ticks_are_whole_numbers_for_a_handful_of_drawings():
    few = charts.class_counts_figure({"my drawings": [0, 1, 2, 0, 0, 0, 0, 1, 0, 0]})
    assert few.layout.yaxis.dtick == 1
    assert [list(bar.y) for bar in few.data] == [[0, 1, 2, 0, 0, 0, 0, 1, 0, 0]]
    many = charts.class_counts_figure({"train": [5400] * 10, "my drawings": [1] * 10})
    assert many.layout.yaxis.dtick is None  # plotly's own ticks for thousands
