"""Atomic file writes and strict readers: a crash never leaves half a file where a page reads, and a damaged
file is reported by name instead of being read as something else."""

from __future__ import annotations

import csv
import functools
import io
import json
import os
import tempfile
from pathlib import Path


class DamagedFile(ValueError):
    """A file exists but does not hold what it should; the message starts with the file's name."""


@functools.cache
def plain_file_mode() -> int:
    """Return the permissions open() gives a new file here: 0o666 less the process's umask (0o644 if unknown)."""
    try:
        with open("/proc/self/status") as status:  # read, not set: os.umask() would change it for every thread
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o644


def write_bytes_atomic(path: Path, data: bytes, durable: bool = True, mode: int | None = None) -> None:
    """Write `data` to `path` via a temp file in the same folder and a rename (fsync'd when `durable`), with
    `mode`'s permissions, else a plain new file's (mkstemp's own 0600 would hide files from other tools and users
    of a shared folder)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, plain_file_mode() if mode is None else mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, value, durable: bool = True, mode: int | None = None) -> None:
    """Write `value` as pretty JSON to `path`, atomically (the rename alone when not `durable`)."""
    write_bytes_atomic(path, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode(), durable, mode)


def csv_bytes(rows: list[dict], columns: list[str]) -> bytes:
    """Return `rows` as UTF-8 CSV with header `columns`, one line each."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def write_csv_atomic(path: Path, rows: list[dict], columns: list[str]) -> None:
    """Write `rows` as CSV with header `columns` to `path`, atomically."""
    write_bytes_atomic(path, csv_bytes(rows, columns))


def write_jsonl_atomic(path: Path, rows: list[dict]) -> None:
    """Replace a JSON-lines file with `rows`, atomically."""
    write_bytes_atomic(path, "".join(json.dumps(row) + "\n" for row in rows).encode())


def append_jsonl(path: Path, rows: list[dict]) -> None:
    """Append `rows` to a JSON-lines file in one write (readers skip a torn last line)."""
    if rows:
        with open(path, "a") as handle:
            handle.write("".join(json.dumps(row) + "\n" for row in rows))


def save_model_atomic(model, path: Path) -> None:
    """Save a Keras model (with its optimizer state) to `path` (.keras) via a temp file, fsync and a rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.keras")
    try:
        model.save(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_text(path: Path) -> str | None:
    """Return a file's UTF-8 text, None when it does not exist; DamagedFile when it cannot be read as text."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise DamagedFile(f"{path.name}: cannot be read ({error.strerror or error})") from error
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DamagedFile(f"{path.name}: not text (byte 0x{data[error.start]:02x} at {error.start})") from error


def read_json_object(path: Path) -> dict | None:
    """Return the JSON object (dict) in `path`, None when missing; DamagedFile when it is not one."""
    text = read_text(path)
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as error:
        what = "empty" if not text.strip() else f"not valid JSON ({error})"
        raise DamagedFile(f"{Path(path).name}: {what}") from error
    if not isinstance(value, dict):
        raise DamagedFile(f"{Path(path).name}: holds {json.dumps(value)[:40]}, not a JSON object")
    return value


def read_number_csv(path: Path, columns: list[str], text_columns: tuple[str, ...] = ()) -> list[dict] | None:
    """Return a CSV's rows as dicts of `columns`, floats ('epoch' int, `text_columns` as text), None when the
    file is missing; DamagedFile when the header lacks a column or a cell is not a number."""
    text = read_text(path)
    if text is None:
        return None
    name = Path(path).name
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    missing = [column for column in columns if column not in header]
    if missing:
        raise DamagedFile(f"{name}: header lacks {', '.join(missing)} (has {', '.join(header) or 'nothing'})")
    rows = []
    for line, row in enumerate(reader, start=2):
        parsed = {}
        for column in columns:
            value = row.get(column)
            if column in text_columns:
                parsed[column] = value
                continue
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise DamagedFile(f"{name}: line {line}: {column} is {value!r}, not a number") from None
            if column == "epoch":
                if not number.is_integer():
                    raise DamagedFile(f"{name}: line {line}: epoch {value!r} is not a whole number")
                number = int(number)
            parsed[column] = number
        rows.append(parsed)
    return rows


def read_jsonl(path: Path) -> list[dict]:
    """Return every complete JSON-object line of `path`, [] when missing (a torn or foreign line is skipped)."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return []
    rows = []
    for line in data.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue  # a line still being written by the trainer, or bytes that are not JSON
        if isinstance(value, dict):
            rows.append(value)
    return rows
