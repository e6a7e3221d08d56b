"""Seconds per training epoch with batch normalization computed by TensorFlow's fused kernel (the engine's way
since 2026-12-07, training.fuse_batch_norm) against Keras' own BatchNormalization call (a dozen small ops).

The same network, recipe and digits on each side (Adam one-cycle, the architecture's batch size, a fresh model per
fit, plain arrays); each fit is two one-epoch `fit` calls and only the second counts (the first traces). Sides
alternate keras, fused, --rounds times per architecture. Medians, min-max beside them, and the median of the
pairwise ratios (keras / fused: above 1 means the fused kernel is faster).
"""

from __future__ import annotations

import time

import benchlib
from benchlib import fmt, median

from mnist_core.architectures import build_model
from mnist_core.config import TrainConfig
from mnist_core.data import load_mnist, to_model_input
from mnist_core.training import compile_model, fuse_batch_norm

SIDES = ("keras", "fused")
TARGET_RATIO = 1.2  # the fused kernel at least 1.2x faster an epoch, or it is not worth a replaced call


def epoch_seconds(side: str, arch: str, x, y) -> float:
    """Return the seconds of the second of two one-epoch fits of a fresh `arch` model, batch norm the `side`'s way."""
    config = TrainConfig.for_architecture(arch, epochs=2, train_subset=len(x))
    model = build_model(arch)
    compile_model(model, config, total_steps=config.epochs * config.steps_per_epoch)
    if side == "fused":
        fuse_batch_norm(model)
    model.fit(x, y, batch_size=config.batch_size, epochs=1, verbose=0)
    started = time.perf_counter()
    model.fit(x, y, batch_size=config.batch_size, epochs=1, verbose=0)
    return time.perf_counter() - started


def main() -> None:
    """Time both sides on each architecture, print the table and the check, write the results."""
    parser = benchlib.parser(__doc__.split("\n\n")[0], images=2000, rounds=1, archs=["fast_cnn"])
    parser.add_argument("--archs", nargs="+", default=["fast_cnn", "robust_cnn"], help="architectures with BN")
    parser.add_argument("--images", type=int, default=20_000, help="training digits per epoch")
    parser.add_argument("--rounds", type=int, default=3, help="keras/fused pairs per architecture")
    args = benchlib.parse(parser)
    mnist = load_mnist()
    x, y = to_model_input(mnist.x_train[: args.images]), mnist.y_train[: args.images]
    records = []
    for arch in args.archs:
        seconds = {side: [] for side in SIDES}
        for round_number in range(args.rounds):
            for side in SIDES:
                seconds[side].append(epoch_seconds(side, arch, x, y))
                print(f"{arch} round {round_number + 1} {side}: {seconds[side][-1]:.2f} s", flush=True)
        ratios = [k / f for k, f in zip(seconds["keras"], seconds["fused"], strict=True)]
        records.append(
            {
                "arch": arch,
                **{f"{side}_median": median(seconds[side]) for side in SIDES},
                **{f"{side}_range": f"{min(seconds[side]):.2f}-{max(seconds[side]):.2f}" for side in SIDES},
                "ratio": median(ratios),
                "seconds": seconds,
            }
        )
    print()
    benchlib.table(
        f"seconds per epoch of {args.images:,} digits (median of {args.rounds}; min-max)",
        records,
        [
            ("architecture", "arch"),
            ("keras BN", "keras_median", 2),
            ("min-max", "keras_range"),
            ("fused BN", "fused_median", 2),
            ("min-max", "fused_range"),
            ("keras / fused", "ratio", 2, "x"),
        ],
    )
    checks = [
        benchlib.check(f"{r['arch']}: keras / fused epoch time", r["ratio"], TARGET_RATIO, higher_is_better=True)
        for r in records
    ]
    benchlib.write_results(
        "batch_norm",
        {"args": vars(args), "records": records, "checks": checks},
        args.out,
        headline=lambda p: {r["arch"]: f"{fmt(r['ratio'])}x" for r in p["records"]},
    )


if __name__ == "__main__":
    main()
