"""A run's curves for the live view, read incrementally and built once per server, not once per tab.

The trainer appends a line to batches.jsonl every second or so; thirty tabs watching one run must not
re-read and re-parse the whole file thirty times a second. Each file is followed once per server: only
the bytes added since the last look are parsed, and charts get a downsampled copy of at most MAX_POINTS.
Figures are built once per version of the data and shared by every tab (they are only read).
"""

from __future__ import annotations

import functools
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from mnist_core import charts, reference, runfiles
from mnist_core.runs import Run, read_run

MAX_POINTS = 400  # a chart a few hundred pixels wide shows no more


@dataclass
class _Tail:
    """What has been read of one batches.jsonl: up to `offset`, parsed rows, and the sampled copy."""

    inode: int
    offset: int = 0
    pending: bytes = b""  # a last line the trainer has not finished writing
    rows: list[dict] = field(default_factory=list)
    sampled: tuple[dict, ...] = ()
    skipped: int = 0  # lines that were not JSON objects (damage), left out


_TAILS: dict[Path, _Tail] = {}
_LOCK = threading.Lock()


def downsample(rows: list[dict], limit: int = MAX_POINTS) -> tuple[dict, ...]:
    """Return at most `limit` rows evenly spaced over `rows`, the first and the last always kept."""
    if len(rows) <= limit:
        return tuple(rows)
    step = (len(rows) - 1) / (limit - 1)
    return tuple(rows[round(i * step)] for i in range(limit))


def _read_new(tail: _Tail, path: Path, size: int) -> None:
    """Parse the bytes `path` gained since `tail.offset` into `tail.rows`."""
    with open(path, "rb") as handle:
        handle.seek(tail.offset)
        data = tail.pending + handle.read(size - tail.offset)
    tail.offset = size
    lines = data.split(b"\n")
    tail.pending = lines.pop()  # b"" when the data ended with a newline
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            row = None
        if isinstance(row, dict) and isinstance(row.get("epoch_progress"), (int, float)):
            tail.rows.append(row)
        elif line.strip():
            tail.skipped += 1


def running_curve(run_path: Path) -> tuple[tuple[dict, ...], int]:
    """Return (the run's running-curve rows downsampled to at most MAX_POINTS, lines skipped as unreadable)."""
    path = Path(run_path) / runfiles.BATCHES
    try:
        stat = os.stat(path)
    except OSError:
        return (), 0
    with _LOCK:
        tail = _TAILS.get(path)
        if tail is None or tail.inode != stat.st_ino or stat.st_size < tail.offset:
            tail = _TAILS[path] = _Tail(inode=stat.st_ino)  # new, or rewritten when a run resumed
        if stat.st_size > tail.offset:
            try:
                _read_new(tail, path, stat.st_size)
            except OSError:
                return tail.sampled, tail.skipped
            tail.sampled = downsample(tail.rows)
        return tail.sampled, tail.skipped


@functools.lru_cache(maxsize=64)
def _running_figure(run_path: str, version: tuple):
    """Return the running-curve figure of the run at `run_path` as of `version` (built once per version)."""
    rows, _ = running_curve(Path(run_path))
    return charts.batch_curve_figure(list(rows))


def running_figure(run_path: Path):
    """Return (the running-curve figure, lines skipped as unreadable), or (None, 0) before the first point.

    One figure per version of the curve for the whole server: thirty tabs share it."""
    rows, skipped = running_curve(run_path)
    if not rows:
        return None, skipped
    return _running_figure(str(run_path), (len(rows), rows[-1]["epoch_progress"])), skipped


@functools.lru_cache(maxsize=64)
def _epoch_figures(run_path: str, version: tuple, overlay: str | None):
    """Return the (loss, accuracy) figures of one run's epochs as of `version`, with a published overlay."""
    run = read_run(Path(run_path))
    series = [charts.Series(run.short_name, list(run.epochs))]
    if overlay:
        curve = reference.published_curve(overlay)[: max(run.config.epochs, len(run.epochs))]
        series.append(charts.Series(f"published {overlay}", curve, dashed=True, color="#888888"))
    return charts.curves_figure(series, "loss"), charts.curves_figure(series, "accuracy")


def epoch_figures(run: Run, overlay: bool):
    """Return the (loss, accuracy) figures of `run`'s epochs, with the walkthrough's published curve when
    `overlay` and there is one; None when there is nothing to draw. Built once per version of epochs.csv."""
    published = (
        run.config.architecture if overlay and run.config.architecture in reference.published_architectures() else None
    )
    if not run.epochs and not published:
        return None
    version = (len(run.epochs), run.epochs[-1]["elapsed"] if run.epochs else None, run.config.epochs, run.short_name)
    return _epoch_figures(str(run.path), version, published)
