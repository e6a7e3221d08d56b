"""The training process of one run: `python -m mnist_core.worker RUN_DIR` (started by runs.schedule)."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

from mnist_core.runs import FAILED, Run, now_iso, schedule, update_status


def main(run_dir: str) -> int:
    """Train the run in `run_dir`, record how it ended, then start the next queued run; return exit code."""
    import os

    run = Path(run_dir).resolve()
    run = Run(run)
    update_status(run, pid=os.getpid())
    code = 0
    try:
        from mnist_core.training import train_run

        state = train_run(run)
        update_status(run, state=state, error=None, ended=now_iso())
    except Exception as error:  # noqa: BLE001 - any failure must be reported, not crash the caller
        traceback.print_exc()
        update_status(run, state=FAILED, error=f"{type(error).__name__}: {error}", ended=now_iso())
        code = 1
    finally:
        run.file("stop").unlink(missing_ok=True)
        schedule(run.path.parent)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
