"""A run's running (per-batch) curve, read incrementally and shared by every page and tab of the server.

The trainer appends a line to batches.jsonl every second or so; thirty tabs watching one run must not
re-read and re-parse the whole file thirty times a second. Each file is followed once per server: only
the bytes added since the last look are parsed, and charts get a downsampled copy of at most MAX_POINTS.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from mnist_core import runfiles

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
