"""The command-line interface: train (with a progress bar), list runs, evaluate, stop, continue, label, export,
delete, restore and import runs; hash a password."""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from pathlib import Path

from mnist_core import access, control, export, imported, sweeps
from mnist_core import runs as runs_mod
from mnist_core.architectures import ARCHITECTURES
from mnist_core.config import ConfigError, TrainConfig
from mnist_core.data import DataError, load_mnist, to_model_input
from mnist_core.evaluate import evaluate_run
from mnist_core.labels import MISSING, percent
from mnist_core.models import ModelFileError
from mnist_core.settings import AUGMENTATIONS, LR_SCHEDULES, OPTIMIZERS


def progress_line(run: runs_mod.Run, width: int = 30) -> str:
    """Return a one-line text progress bar for a run: bar, epoch, batch, loss, accuracy, time left."""
    progress, config = run.progress, run.config
    done, total, steps = runs_mod.batches_done(run)
    filled = min(width, int(width * done / total)) if total else 0
    last = run.epochs[-1] if run.epochs else {}
    left = runs_mod.time_left(run)
    parts = [
        f"[{'#' * filled}{'.' * (width - filled)}]",
        f"epoch {progress.get('epoch', 0)}/{config.epochs}",
        f"batch {progress.get('batch', 0)}/{steps}",
        f"loss {progress['loss']:.4f}" if "loss" in progress else f"loss {MISSING}",
        f"acc {percent(progress.get('accuracy'))}",
        f"val_acc {percent(last.get('val_accuracy'))}",
    ]
    if left is not None:
        parts.append(f"~{left:.0f} s left")
    return " ".join(parts)


def follow(run: runs_mod.Run, stream=sys.stdout, poll: float = 0.5) -> str:
    """Print a live progress bar until the run ends; Ctrl-C asks it to stop. Return the final state."""
    interactive = stream.isatty()
    last_printed = 0.0
    try:
        while True:
            run = runs_mod.read_run(run.path)
            state = run.state
            if state not in runs_mod.ACTIVE_STATES:
                break
            now = time.monotonic()
            if state == runs_mod.QUEUED:
                line = "queued: waiting for a free training slot"
            else:
                line = progress_line(run)
            if interactive:
                stream.write("\r" + line[:150].ljust(150))
                stream.flush()
            elif now - last_printed > 5:
                stream.write(line + "\n")
                last_printed = now
            time.sleep(poll)
    except KeyboardInterrupt:
        stream.write("\nstopping (the model trained so far is kept)...\n")
        control.request_stop(run.run_id, run.path.parent)
        state = control.wait_for(run)
        run = runs_mod.read_run(run.path)
    stream.write(("\n" if interactive else "") + progress_line(run) + "\n")
    error = run.summary()["error"]
    stream.write(f"run {run.run_id}: {state}" + (f" - {error}" if error else "") + "\n")
    return state


def cmd_train(args) -> int:
    """Start a run and follow it (or return at once with --detach)."""
    config = TrainConfig.for_architecture(
        args.arch,
        epochs=args.epochs,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        learning_rate=args.learning_rate,
        seed=args.seed,
        train_subset=args.subset,
        lr_schedule=args.lr_schedule,
        augmentation=args.augmentation,
        label_smoothing=args.label_smoothing,
        validation=args.validation,
    )
    run = control.start_run(config, args.runs_dir)
    print(
        f"run {run.run_id}: {config.architecture}, {config.epochs} epochs, batch {config.batch_size}, "
        f"{config.optimizer} lr {config.learning_rate:g} -> {run.path}"
    )
    if args.detach:
        return 0
    return 0 if follow(run) in (runs_mod.FINISHED, runs_mod.STOPPED) else 1


def cmd_runs(args) -> int:
    """Print every run with its state and best validation accuracy."""
    rows = [run.summary() for run in runs_mod.list_runs(args.runs_dir)]
    if not rows:
        print("no runs yet: start one with `python -m mnist_core train --arch cnn --epochs 3`")
        return 0
    print(f"{'run':38} {'architecture':14} {'state':9} {'epochs':>7} {'best val':>9} {'test':>9}")
    for row in rows:
        print(
            f"{row['run_id']:38} {row['architecture'] or '-':14} {row['state']:9} "
            f"{row['epochs_done']:>3}/{row['epochs_target'] or '-':<3} {percent(row['best_val_accuracy']):>9} "
            f"{percent(row['test_accuracy']):>9}"
            + (f"  {row['name']}" if row["name"] != row["run_id"] else "")
            + (f"  #{' #'.join(row['tags'])}" if row["tags"] else "")
            + (f"  {row['error']}" if row["state"] == runs_mod.DAMAGED else "")
        )
    return 0


def cmd_evaluate(args) -> int:
    """Evaluate a run on the test set and print its numbers."""
    result = evaluate_run(runs_mod.get_run(args.run, args.runs_dir), args.model)
    print(
        f"test accuracy {percent(result['accuracy'])}, loss {result['loss']:.4f}, "
        f"{len(result['misclassified'])} misclassified of {result['count']:,} ({result['seconds']:.2f} s)"
    )
    print("digit precision recall    f1")
    for row in result["per_class"]:
        print(f"{row['digit']:>5} {row['precision']:>9.4f} {row['recall']:>6.4f} {row['f1']:>5.4f}")
    return 0


def cmd_stop(args) -> int:
    """Ask a run to stop."""
    run = control.request_stop(args.run, args.runs_dir)
    print(f"run {run.run_id}: stop requested (state now {run.state})")
    return 0


def cmd_continue(args) -> int:
    """Continue a finished or stopped run for more epochs."""
    run = control.continue_run(args.run, args.epochs, args.runs_dir)
    print(f"run {run.run_id}: queued to train epochs {len(run.epochs) + 1}-{run.config.epochs}")
    return 0 if args.detach else (0 if follow(run) in (runs_mod.FINISHED, runs_mod.STOPPED) else 1)


def cmd_export(args) -> int:
    """Write RUN.zip (and RUN.tflite, checked against Keras on test digits) into --out."""
    run = runs_mod.get_run(args.run, args.runs_dir)
    images = None
    if args.tflite:
        images = to_model_input(load_mnist().x_test[: export.TFLITE_CHECK_DIGITS])[..., 0]
    for path in export.export_run(run, Path(args.out), images):
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")
    return 0


def cmd_label(args) -> int:
    """Name, annotate and tag a run."""
    run = control.label_run(args.run, args.name, args.note, args.tag, args.runs_dir)
    print(
        f"run {run.run_id}: name {run.name!r}, tags {', '.join(run.tags) or '-'}"
        + (", with a note" if run.labels.get("note") else "")
    )
    return 0


def cmd_delete(args) -> int:
    """Move a run to the trash (asking first unless --yes); say how to restore it."""
    run = runs_mod.get_run(args.run, args.runs_dir)
    if not args.yes:
        try:
            answer = input(f"Delete run {run.run_id} ({run.state}, {len(run.epochs)} epochs)? [y/N] ")
        except EOFError:  # no one to answer: keep it
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print("not deleted")
            return 1
    control.delete_run(run.run_id, args.runs_dir)
    print(f"run {run.run_id}: moved to the trash; `python -m mnist_core restore {run.run_id}` brings it back")
    return 0


def cmd_restore(args) -> int:
    """Put a deleted run back from the trash."""
    run = control.restore_run(args.run, args.runs_dir)
    print(f"run {run.run_id}: restored ({run.state}, {len(run.epochs)} epochs)")
    return 0


def cmd_import(args) -> int:
    """Bring in a .keras model or an architecture's weights file trained elsewhere as an imported run."""
    run = imported.import_file(args.file, args.name, args.architecture, args.runs_dir)
    record = run.imported
    print(
        f"run {run.run_id}: imported {record['source']} ({run.architecture_title}, {record['parameters']:,} "
        f"parameters) as {run.name!r}; `python -m mnist_core evaluate {run.run_id}` scores it"
    )
    return 0


def sweep_config(args) -> sweeps.SweepConfig:
    """Return the SweepConfig the flags of `sweep start` ask for (the defaults where they are silent)."""
    defaults = sweeps.SweepConfig(architecture=args.arch)
    values = {
        "architecture": args.arch,
        "trials": args.trials,
        "epochs": args.epochs,
        "learning_rate": tuple(args.lr) if args.lr else None,
        "batch_sizes": tuple(args.batch_sizes) if args.batch_sizes else None,
        "optimizers": tuple(args.optimizers) if args.optimizers else None,
        "lr_schedules": tuple(args.schedules) if args.schedules else None,
        "augmentations": tuple(args.augmentations) if args.augmentations else None,
        "sampler": args.sampler,
        "pruning": not args.no_pruning,
        "train_subset": args.subset,
        "seed": args.seed,
    }
    return sweeps.SweepConfig(
        **{key: getattr(defaults, key) if value is None else value for key, value in values.items()}
    )


def cmd_sweep(args) -> int:
    """Start, follow, stop, resume or join a sweep, or print its trials."""
    name, url, root = args.name, args.storage, args.runs_dir
    if args.action == "start":
        config = sweep_config(args).validated()
        sweeps.create(name, config, url, root)
        print(
            f"sweep {name}: {config.trials} trials of {config.architecture} ({config.sampler}, pruning "
            f"{'on' if config.pruning else 'off'}) in {sweeps.shown_url(sweeps.storage_url(url, root))}"
        )
    elif args.action == "resume":
        config = sweeps.resume(name, args.more, url, root)
        print(f"sweep {name}: now {config.trials} trials")
    elif args.action == "stop":
        running = sweeps.request_stop(name, url, root)
        print(f"sweep {name}: stop requested ({running} trial(s) running stop within a batch or two)")
        return 0
    elif args.action == "status":
        study, config = sweeps.load(name, url, root)
        rows = sweeps.trial_rows(study)
        done = sum(row["state"] in ("complete", "pruned") for row in rows)
        print(
            f"sweep {name}: {done} of {config.trials} trials done"
            + (" · stopped" if sweeps.stop_requested(study) else "")
        )
        for trial in study.get_trials(deepcopy=False):
            print(
                sweeps.trial_line(trial)
                + (f" · run {trial.user_attrs['run_id']}" if "run_id" in trial.user_attrs else "")
            )
        return 0
    if args.action in ("start", "resume") and args.detach:
        pid = sweeps.start_worker(name, url, root)
        print(f"sweep {name}: worker {pid} started; `python -m mnist_core sweep status {name}` follows it")
        return 0
    trained = sweeps.work(name, url, root, report=print)
    best = sweeps.best_trial(sweeps.load(name, url, root)[0])
    print(
        f"sweep {name}: this worker trained {trained} trial(s)"
        + (f"; best: {sweeps.trial_line(best)} · run {best.user_attrs.get('run_id')}" if best else "")
    )
    return 0


def cmd_architectures(args) -> int:
    """Print the architecture registry."""
    for arch in ARCHITECTURES.values():
        print(f"{arch.key:14} {arch.title}: {arch.layers}")
    return 0


def cmd_password(args) -> int:
    """Read a password (asked twice on a terminal, else the first line of stdin) and print its hash and where
    to put it for shared mode."""
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print("error: the two passwords differ", file=sys.stderr)
            return 2
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        print("error: the password is empty", file=sys.stderr)
        return 2
    encoded = access.hash_password(password)
    key, env = (
        (access.ADMIN_PASSWORD_KEY, access.ADMIN_PASSWORD_ENV)
        if args.admin
        else (access.PASSWORD_KEY, access.PASSWORD_ENV)
    )
    print(encoded)
    print(f'\nPut this line in .streamlit/secrets.toml (never commit that file):\n  {key} = "{encoded}"')
    print(f"or set it in the environment (the single quotes keep the $ signs):\n  export {env}='{encoded}'")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of `python -m mnist_core`."""
    parser = argparse.ArgumentParser(prog="python -m mnist_core", description=__doc__)
    parser.add_argument("--runs-dir", default=None, help="runs folder (default: $MNIST_RUNS_DIR or ./runs)")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train an architecture (published defaults unless overridden)")
    train.add_argument("--arch", required=True, choices=list(ARCHITECTURES))
    train.add_argument("--epochs", type=int)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--optimizer", choices=OPTIMIZERS)
    train.add_argument("--learning-rate", type=float)
    train.add_argument("--seed", type=int)
    train.add_argument(
        "--subset", type=int, help="train on the first N of the 54,000 (of the 60,000 without validation)"
    )
    train.add_argument("--lr-schedule", choices=LR_SCHEDULES)
    train.add_argument("--augmentation", choices=AUGMENTATIONS)
    train.add_argument("--label-smoothing", type=float, help="0 to below 1 (best_cnn: 0.1)")
    holdout = train.add_mutually_exclusive_group()
    holdout.add_argument(
        "--no-validation",
        dest="validation",
        action="store_const",
        const=False,
        help="hold nothing out: train on all 60,000 images and keep the last epoch's model (best_cnn's default)",
    )
    holdout.add_argument(
        "--validation",
        dest="validation",
        action="store_const",
        const=True,
        help="hold out the 6,000 (the default but for best_cnn)",
    )
    train.add_argument("--detach", action="store_true", help="start it and return at once")
    train.set_defaults(func=cmd_train)
    sub.add_parser("runs", help="list runs").set_defaults(func=cmd_runs)
    evaluate = sub.add_parser("evaluate", help="evaluate a run on the 10,000 test images")
    evaluate.add_argument("run")
    evaluate.add_argument("--model", choices=["best", "final"], default="best")
    evaluate.set_defaults(func=cmd_evaluate)
    stop = sub.add_parser("stop", help="stop a run (within one batch)")
    stop.add_argument("run")
    stop.set_defaults(func=cmd_stop)
    cont = sub.add_parser("continue", help="train a finished or stopped run for more epochs")
    cont.add_argument("run")
    cont.add_argument(
        "--epochs", type=int, help="epochs to add to the plan (default: none, train on to the planned epochs)"
    )
    cont.add_argument("--detach", action="store_true")
    cont.set_defaults(func=cmd_continue)
    exporter = sub.add_parser("export", help="write a run's plain files as RUN.zip (--tflite: its model too)")
    exporter.add_argument("run")
    exporter.add_argument("--out", default=".", help="folder to write into (default: the current one)")
    exporter.add_argument("--tflite", action="store_true", help="also RUN.tflite, checked on 100 test digits")
    exporter.set_defaults(func=cmd_export)
    label = sub.add_parser("label", help="give a run a name, a note and tags (shown on every page)")
    label.add_argument("run")
    label.add_argument("--name", help='a display name ("" clears it)')
    label.add_argument("--note", help='free text ("" clears it)')
    label.add_argument("--tag", action="append", help="a tag (repeat for several); replaces the run's tags")
    label.add_argument("--no-tags", dest="tag", action="store_const", const=[], help="remove every tag")
    label.set_defaults(func=cmd_label)
    delete = sub.add_parser("delete", help="move a run that is not queued or running to the trash")
    delete.add_argument("run")
    delete.add_argument("--yes", action="store_true", help="do not ask")
    delete.set_defaults(func=cmd_delete)
    restore = sub.add_parser("restore", help="bring a deleted run back from the trash (its newest deletion)")
    restore.add_argument("run")
    restore.set_defaults(func=cmd_restore)
    importer = sub.add_parser("import", help="bring in a .keras model or a weights file trained elsewhere")
    importer.add_argument("file", help="a .keras model, or a .weights.h5 / .h5 weights file of one architecture")
    importer.add_argument("--name", help="its display name (default: the file's name)")
    importer.add_argument(
        "--architecture", choices=list(ARCHITECTURES), help="for a weights file (default: the one its weights fit)"
    )
    importer.set_defaults(func=cmd_import)
    sweep = sub.add_parser("sweep", help="hyperparameter sweeps on Optuna: start, status, stop, resume, worker")
    sweep.add_argument("action", choices=["start", "status", "stop", "resume", "worker"])
    sweep.add_argument("name", help="the sweep's name (1-24 lower-case letters, digits, '-' or '_')")
    sweep.add_argument("--storage", help="Optuna storage URL (default: $MNIST_SWEEP_STORAGE, else runs/sweeps.db)")
    sweep.add_argument("--arch", choices=list(ARCHITECTURES), help="start: the architecture")
    sweep.add_argument("--trials", type=int, help="start: how many trials (default 8)")
    sweep.add_argument("--epochs", type=int, help="start: epochs per trial (default 1)")
    sweep.add_argument("--lr", type=float, nargs=2, metavar=("LOW", "HIGH"), help="start: learning-rate range (log)")
    sweep.add_argument("--batch-sizes", type=int, nargs="+", help="start: batch sizes to choose from")
    sweep.add_argument("--optimizers", nargs="+", choices=OPTIMIZERS, help="start: optimizers to choose from")
    sweep.add_argument("--schedules", nargs="+", choices=LR_SCHEDULES, help="start: learning-rate schedules")
    sweep.add_argument("--augmentations", nargs="+", choices=AUGMENTATIONS, help="start: augmentations")
    sweep.add_argument("--sampler", choices=sweeps.SAMPLERS, help="start: tpe (default), random or grid")
    sweep.add_argument("--no-pruning", action="store_true", help="start: train every trial to its last epoch")
    sweep.add_argument("--subset", type=int, help="start: train on the first N of the 54,000 images")
    sweep.add_argument("--seed", type=int, help="start: the seed of every trial's run")
    sweep.add_argument("--more", type=int, default=4, help="resume: trials to add (default 4)")
    sweep.add_argument("--detach", action="store_true", help="start / resume: train in a background worker")
    sweep.set_defaults(func=cmd_sweep)
    sub.add_parser("architectures", help="list the architectures").set_defaults(func=cmd_architectures)
    password = sub.add_parser("password", help="hash a password for shared (classroom) mode")
    password.add_argument("--admin", action="store_true", help="the admin password (may stop anyone's runs)")
    password.set_defaults(func=cmd_password)
    return parser


def main(argv=None) -> int:
    """Run the command line; return the exit code (2 with a one-line message on bad input)."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, DataError, runs_mod.RunError, KeyError, ModelFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"error: {error.strerror or error}" + (f" ({error.filename})" if error.filename else ""), file=sys.stderr)
        return 2
