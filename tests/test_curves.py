"""The live view's running curve: read incrementally, a torn last line waited for, rewrites noticed, downsampled."""

from __future__ import annotations

import itertools
import json
import os

from mnist_core import curves, runfiles, storage


def rows(start: int, stop: int) -> list[dict]:
    return [
        {"epoch": 1, "batch": i, "epoch_progress": i / 1000, "loss": 1 / (i + 1), "accuracy": 0.5}
        for i in range(start, stop)
    ]


def test_reads_only_what_was_added_and_waits_for_a_torn_line(tmp_path):
    path = tmp_path / runfiles.BATCHES
    storage.append_jsonl(path, rows(0, 10))
    assert [row["batch"] for row in curves.running_curve(tmp_path)[0]] == list(range(10))
    with open(path, "a") as handle:  # the trainer is half-way through a line
        handle.write(json.dumps(rows(10, 11)[0])[:15])
    assert len(curves.running_curve(tmp_path)[0]) == 10
    with open(path, "a") as handle:
        handle.write(json.dumps(rows(10, 11)[0])[15:] + "\n")
    storage.append_jsonl(path, rows(11, 20))
    got, skipped = curves.running_curve(tmp_path)
    assert [row["batch"] for row in got] == list(range(20)) and skipped == 0
    # Nothing new: the same parsed rows, nothing read again.
    assert curves.running_curve(tmp_path)[0] is got


def test_a_rewritten_file_is_read_again(tmp_path):
    path = tmp_path / runfiles.BATCHES
    storage.append_jsonl(path, rows(0, 50))
    assert len(curves.running_curve(tmp_path)[0]) == 50
    storage.write_jsonl_atomic(path, rows(0, 30))  # a resumed run dropped the points past its checkpoint
    assert [row["batch"] for row in curves.running_curve(tmp_path)[0]] == list(range(30))


def test_damaged_lines_are_counted_and_left_out(tmp_path):
    path = tmp_path / runfiles.BATCHES
    storage.append_jsonl(path, rows(0, 3))
    with open(path, "ab") as handle:
        handle.write(os.urandom(64).replace(b"\n", b"x") + b"\n[1, 2]\n")
    storage.append_jsonl(path, rows(3, 5))
    got, skipped = curves.running_curve(tmp_path)
    assert [row["batch"] for row in got] == [0, 1, 2, 3, 4] and skipped == 2


def test_downsample_keeps_ends_and_spreads_evenly():
    data = rows(0, 5000)
    sampled = curves.downsample(data, 400)
    assert len(sampled) == 400
    assert sampled[0] is data[0] and sampled[-1] is data[-1]
    gaps = {b["batch"] - a["batch"] for a, b in itertools.pairwise(sampled)}
    assert gaps <= {12, 13}  # 4999 / 399 = 12.53: evenly spread
    assert curves.downsample(data[:10], 400) == tuple(data[:10])
