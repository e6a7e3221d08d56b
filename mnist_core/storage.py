"""Atomic file writes and tolerant readers: a crash never leaves half a file where a page reads."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path


def write_bytes_atomic(path: Path, data: bytes, durable: bool = True) -> None:
    """Write `data` to `path` via a temp file in the same folder and a rename (fsync'd when `durable`)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, value, durable: bool = True) -> None:
    """Write `value` as pretty JSON to `path`, atomically (the rename alone when not `durable`)."""
    write_bytes_atomic(path, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode(), durable)


def read_json(path: Path, default=None):
    """Return the JSON in `path`, or `default` when it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return default


def write_csv_atomic(path: Path, rows: list[dict], columns: list[str]) -> None:
    """Write `rows` as CSV with header `columns` to `path`, atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_bytes_atomic(path, buffer.getvalue().encode())


def read_csv_numbers(path: Path) -> list[dict]:
    """Return a CSV's rows with every cell parsed as float (int when whole), [] when missing."""
    try:
        text = Path(path).read_text()
    except OSError:
        return []
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        parsed = {}
        for key, value in row.items():
            try:
                number = float(value)
                parsed[key] = int(number) if key == "epoch" else number
            except (TypeError, ValueError):
                parsed[key] = value
        rows.append(parsed)
    return rows


def append_jsonl(path: Path, rows: list[dict]) -> None:
    """Append `rows` to a JSON-lines file in one write (readers skip a torn last line)."""
    if rows:
        with open(path, "a") as handle:
            handle.write("".join(json.dumps(row) + "\n" for row in rows))


def read_jsonl(path: Path) -> list[dict]:
    """Return every complete JSON line of `path`, [] when missing."""
    try:
        text = Path(path).read_text()
    except OSError:
        return []
    rows = []
    for line in text.splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue  # a line still being written by the trainer
    return rows


def save_model_atomic(model, path: Path) -> None:
    """Save a Keras model to `path` (.keras) via a temp file and a rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.keras")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
