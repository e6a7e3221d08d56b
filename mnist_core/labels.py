"""How numbers and runs are written for people, the same on every page and in the command line."""

from __future__ import annotations

import math
from datetime import UTC, datetime

MISSING = "–"
# One definition each, under one name on every page: the median epoch (validation included), finished epochs.
SECONDS_PER_EPOCH = "seconds / epoch (median)"
EPOCHS_DONE = "epochs done"


def seconds(value) -> str:
    """Return seconds as '12.3', '–' when unknown."""
    return f"{value:.1f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else MISSING


def percent(value) -> str:
    """Return a fraction as '98.76 %', or '–' when missing (None, NaN: an epoch of a run without validation)."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return f"{100 * value:.2f} %" if number else MISSING


def duration(seconds) -> str:
    """Return seconds as '42 s', '3m 05s' or '1h 02m' (short enough for a metric), '–' when unknown."""
    if seconds is None:
        return MISSING
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def counted(count: int, noun: str) -> str:
    """Return '1 epoch', '2 epochs', '1,200 epochs': the count and the noun, plural unless one."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def digit_with_article(digit: int) -> str:
    """Return 'a 7' or 'an 8', as the digit is said aloud."""
    return f"{'an' if digit == 8 else 'a'} {digit}"


def moment(stamp: str) -> str:
    """Return an ISO 8601 time as '2026-12-02 01:57 UTC'; the text itself when it is no such time."""
    try:
        when = datetime.fromisoformat(stamp)
    except (TypeError, ValueError):
        return str(stamp)
    if when.tzinfo is None:
        return when.strftime("%Y-%m-%d %H:%M")
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def short_name(run_id: str, architecture: str | None) -> str:
    """Return a compact run name for chips and legends: architecture, time started, id suffix ('cnn 09:30 1a2b')."""
    stamp = run_id.split("-")
    when = f"{stamp[1][:2]}:{stamp[1][2:4]}" if len(stamp) > 2 and len(stamp[1]) >= 4 else run_id
    return f"{architecture or '?'} {when} {run_id[-4:]}"
