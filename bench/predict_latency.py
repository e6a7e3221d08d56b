"""Prediction latency for one drawn digit, preprocessing included, per architecture: the studio's path
(mnist_core.predict.preprocess_canvas on a 280x280 RGBA canvas, then predictor_for(model).probabilities)
vs the same preprocessing followed by Keras' `model.predict(x, verbose=0)`.

Models are freshly built (weights do not change the speed). After a warm-up, calls alternate between
the two paths so both see the same machine load; p50 / p90 are over the timed calls.
"""

from __future__ import annotations

import time

import benchlib
import numpy as np
from benchlib import fmt, median, percentile

CANVAS = 280
TARGET_P50_MS = 10.0


def drawn_canvas() -> np.ndarray:
    """Return a 280x280 RGBA canvas (transparent, white 18-pixel stroke) holding a hand-drawn-like '7'."""
    from PIL import Image, ImageDraw

    picture = Image.new("RGBA", (CANVAS, CANVAS), (0, 0, 0, 0))
    pen = ImageDraw.Draw(picture)
    # What st_canvas returns for a freehand '7': a bar and a slanted stem, round joints.
    white = (255, 255, 255, 255)
    pen.line([(80, 70), (200, 66), (190, 90), (150, 160), (120, 230)], fill=white, width=18, joint="curve")
    pen.line([(120, 150), (185, 148)], fill=white, width=18)
    return np.asarray(picture)


def ours(model, canvas: np.ndarray) -> np.ndarray:
    """Return the probabilities the Draw page computes: preprocessing, then the cached compiled forward pass."""
    from mnist_core.predict import predictor_for, preprocess_canvas

    prepared = preprocess_canvas(canvas)
    return predictor_for(model).probabilities(prepared.image)


def keras_predict(model, canvas: np.ndarray) -> np.ndarray:
    """Return the probabilities via the same preprocessing and model.predict on a batch of one."""
    from mnist_core.predict import preprocess_canvas

    prepared = preprocess_canvas(canvas)
    return model.predict(prepared.image[None, ..., None], verbose=0)[0]


def timed_ms(function, *args) -> float:
    """Return how long one call took, in milliseconds."""
    started = time.perf_counter()
    function(*args)
    return 1000 * (time.perf_counter() - started)


def bench_architecture(arch: str, canvas: np.ndarray, calls: int, warmup: int) -> dict:
    """Return p50 / p90 (ms) of both paths, of preprocessing alone and of the forward passes alone."""
    from mnist_core.architectures import build_model
    from mnist_core.predict import predictor_for, preprocess_canvas

    model = build_model(arch)
    image = preprocess_canvas(canvas).image
    batch = image[None, ..., None]
    predictor = predictor_for(model)
    if not np.allclose(ours(model, canvas), keras_predict(model, canvas), atol=1e-5):
        raise RuntimeError(f"{arch}: the two paths disagree")
    for _ in range(warmup):
        ours(model, canvas)
        keras_predict(model, canvas)
        model.predict(batch, verbose=0)
    times: dict[str, list[float]] = {"ours": [], "keras": [], "preprocess": [], "ours_forward": [], "keras_forward": []}
    for _ in range(calls):
        times["ours"].append(timed_ms(ours, model, canvas))
        times["keras"].append(timed_ms(keras_predict, model, canvas))
        times["preprocess"].append(timed_ms(preprocess_canvas, canvas))
        times["ours_forward"].append(timed_ms(predictor.probabilities, image))
        times["keras_forward"].append(timed_ms(lambda: model.predict(batch, verbose=0)))
    result = {"architecture": arch, "params": int(model.count_params())}
    for name, values in times.items():
        result[f"{name}_p50_ms"] = percentile(values, 50)
        result[f"{name}_p90_ms"] = percentile(values, 90)
    result["ratio"] = result["keras_p50_ms"] / result["ours_p50_ms"]
    result["forward_ratio"] = result["keras_forward_p50_ms"] / result["ours_forward_p50_ms"]
    return result


def main() -> None:
    """Time every architecture, print the table and ratio lines, write bench/results/predict_latency.json."""
    from mnist_core.architectures import ARCHITECTURES

    parser = benchlib.parser(__doc__.split("\n\n")[0])
    parser.add_argument("--archs", nargs="+", default=list(ARCHITECTURES), choices=list(ARCHITECTURES))
    parser.add_argument("--calls", type=int, default=200, help="timed calls per path (default 200)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed calls first (default 20)")
    args = parser.parse_args()
    from mnist_core.tfimport import import_keras

    import_keras()
    canvas = drawn_canvas()
    results = []
    for arch in args.archs:
        results.append(bench_architecture(arch, canvas, args.calls, args.warmup))
        print(f"  {arch}: ours p50 {results[-1]['ours_p50_ms']:.2f} ms", flush=True)

    print(f"\nOne drawn digit, milliseconds over {args.calls} calls (preprocessing included unless noted)")
    benchlib.print_table(
        [
            "architecture",
            "ours p50",
            "ours p90",
            "predict p50",
            "predict p90",
            "preprocess p50",
            "fwd ours p50",
            "fwd predict p50",
            "predict/ours",
        ],
        [
            [
                r["architecture"],
                fmt(r["ours_p50_ms"]),
                fmt(r["ours_p90_ms"]),
                fmt(r["keras_p50_ms"]),
                fmt(r["keras_p90_ms"]),
                fmt(r["preprocess_p50_ms"]),
                fmt(r["ours_forward_p50_ms"]),
                fmt(r["keras_forward_p50_ms"]),
                fmt(r["ratio"], 1, "x"),
            ]
            for r in results
        ],
    )
    checks = [
        benchlib.check(f"{r['architecture']} p50", r["ours_p50_ms"], TARGET_P50_MS, higher_is_better=False, unit=" ms")
        for r in results
    ]
    for r in results:
        print(
            f"{r['architecture']} predict/ours: {r['ratio']:.1f}x with preprocessing, "
            f"{r['forward_ratio']:.1f}x forward pass alone"
        )
    benchlib.write_results(
        "predict_latency",
        {
            "settings": {"calls": args.calls, "warmup": args.warmup, "canvas": [CANVAS, CANVAS, 4]},
            "architectures": results,
            "median_ratio": median(r["ratio"] for r in results),
            "checks": checks,
        },
        args.out,
    )


if __name__ == "__main__":
    main()
