"""Prediction latency and test-set evaluation time per architecture, the studio's path vs Keras' own.

Latency, one drawn digit, preprocessing included: mnist_core.predict.preprocess_canvas on a 280x280 RGBA canvas,
then the model's mnist_core.models.Predictor (the compiled forward pass the Draw page keeps), vs the same
preprocessing followed by Keras' `model.predict(x, verbose=0)`. After a warm-up the calls alternate between the two
paths so both see the same machine load; p50 / p90 are over the timed calls.

Evaluation, the 10,000 test images: mnist_core.evaluate.probabilities + score on the uint8 images through a
Predictor (what evaluate_run does once it has loaded the model) vs the walkthrough's `model.evaluate(x_test,
y_onehot, batch_size=64)` on float64 arrays prepared beforehand. The first call of each path is reported on its
own as "cold" (tracing; for ours, making the Predictor, which traces, and the first score); then the paths
alternate for --repeats timed calls and medians count.

Models are freshly built for each part (weights do not change the speed).
"""

from __future__ import annotations

import time

import benchlib
import numpy as np
from benchlib import median, percentile

ARCHITECTURES = ["mlp", "cnn", "deeper_cnn", "deeper_cnn_bn", "fast_cnn", "strong_cnn"]
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


def ours(predictor, canvas: np.ndarray) -> np.ndarray:
    """Return the probabilities the Draw page computes: preprocessing, then the model's compiled forward pass."""
    from mnist_core.predict import preprocess_canvas

    return predictor.probabilities(preprocess_canvas(canvas).image)


def keras_predict(model, canvas: np.ndarray) -> np.ndarray:
    """Return the probabilities via the same preprocessing and model.predict on a batch of one."""
    from mnist_core.predict import preprocess_canvas

    return model.predict(preprocess_canvas(canvas).image[None, ..., None], verbose=0)[0]


def timed_ms(function, *args) -> float:
    """Return how long one call took, in milliseconds."""
    started = time.perf_counter()
    function(*args)
    return 1000 * (time.perf_counter() - started)


def latency(arch: str, canvas: np.ndarray, calls: int, warmup: int) -> dict:
    """Return p50 / p90 (ms) of both paths, of preprocessing alone and of the forward passes alone."""
    from mnist_core.architectures import build_model
    from mnist_core.models import Predictor
    from mnist_core.predict import preprocess_canvas

    model = build_model(arch)
    image = preprocess_canvas(canvas).image
    batch = image[None, ..., None]
    predictor = Predictor(model)
    if not np.allclose(ours(predictor, canvas), keras_predict(model, canvas), atol=1e-5):
        raise RuntimeError(f"{arch}: the two paths disagree")
    for _ in range(warmup):
        ours(predictor, canvas)
        keras_predict(model, canvas)
        model.predict(batch, verbose=0)
    times: dict[str, list[float]] = {"ours": [], "keras": [], "preprocess": [], "ours_forward": [], "keras_forward": []}
    for _ in range(calls):
        times["ours"].append(timed_ms(ours, predictor, canvas))
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


def evaluation(arch: str, mnist, x_test, y_test, repeats: int) -> dict:
    """Return cold and median warm seconds of both ways to score the test set, for one freshly built model."""
    from mnist_core.architectures import build_model
    from mnist_core.evaluate import probabilities, score
    from mnist_core.models import Predictor
    from mnist_core.tfimport import import_keras

    def studio() -> float:
        return score(probabilities(predictor, mnist.x_test), mnist.y_test)["accuracy"]

    def seeds() -> float:
        return float(model.evaluate(x_test, y_test, batch_size=64, verbose=0)[1])

    model = build_model(arch)
    model.compile(loss="categorical_crossentropy", optimizer=import_keras().optimizers.Adam(1e-3), metrics=["accuracy"])
    with benchlib.Stopwatch() as cold_ours:
        predictor = Predictor(model)
        accuracy_ours = studio()
    with benchlib.Stopwatch() as cold_seed:
        accuracy_seed = seeds()
    if abs(accuracy_ours - accuracy_seed) > 1e-3:
        raise RuntimeError(f"{arch}: the two paths disagree ({accuracy_ours} vs {accuracy_seed})")
    warm_ours, warm_seed = [], []
    for _ in range(repeats):
        for function, seconds in ((studio, warm_ours), (seeds, warm_seed)):
            with benchlib.Stopwatch() as watch:
                function()
            seconds.append(watch.seconds)
    result = {
        "architecture": arch,
        "ours_cold_s": cold_ours.seconds,
        "seed_cold_s": cold_seed.seconds,
        "ours_s": median(warm_ours),
        "seed_s": median(warm_seed),
        "ours_runs_s": warm_ours,
        "seed_runs_s": warm_seed,
    }
    result["ratio"] = result["seed_s"] / result["ours_s"]
    result["cold_ratio"] = result["seed_cold_s"] / result["ours_cold_s"]
    return result


def headline(results: dict) -> dict:
    """Return each architecture's p50, predict/ours, evaluation seconds and evaluate/ours."""
    figures = {
        r["architecture"]: {"p50_ms": r["ours_p50_ms"], "predict/ours": r["ratio"]} for r in results["architectures"]
    }
    for r in results["evaluation"]:
        figures.setdefault(r["architecture"], {}).update({"evaluate_s": r["ours_s"], "evaluate/ours": r["ratio"]})
    return figures


def main() -> None:
    """Time every architecture both ways, print the tables and ratio lines, write bench/results/predict_latency.json."""
    parser = benchlib.parser(__doc__.split("\n\n")[0], calls=20, warmup=3, repeats=1)
    parser.add_argument("--archs", nargs="+", default=ARCHITECTURES, choices=ARCHITECTURES)
    parser.add_argument("--calls", type=int, default=200, help="timed latency calls per path (default 200)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed latency calls first (default 20)")
    parser.add_argument("--repeats", type=int, default=5, help="timed evaluations per path after the cold one (5)")
    args = benchlib.parse(parser)
    from mnist_core.data import load_mnist
    from mnist_core.tfimport import import_keras

    keras = import_keras()
    canvas = drawn_canvas()
    latencies = []
    for arch in args.archs:
        latencies.append(latency(arch, canvas, args.calls, args.warmup))
        print(f"  {arch}: ours p50 {latencies[-1]['ours_p50_ms']:.2f} ms", flush=True)
    mnist = load_mnist()
    x_test, y_test = (mnist.x_test / 255.0)[..., None], keras.utils.to_categorical(mnist.y_test, 10)  # the seed's
    evaluations = []
    for arch in args.archs:
        evaluations.append(evaluation(arch, mnist, x_test, y_test, args.repeats))
        print(f"  {arch}: ours {evaluations[-1]['ours_s']:.2f} s, model.evaluate {evaluations[-1]['seed_s']:.2f} s")

    benchlib.table(
        f"\nOne drawn digit, milliseconds over {args.calls} calls (preprocessing included unless noted)",
        latencies,
        [
            ("architecture", "architecture"),
            ("ours p50", "ours_p50_ms", 2),
            ("ours p90", "ours_p90_ms", 2),
            ("predict p50", "keras_p50_ms", 2),
            ("predict p90", "keras_p90_ms", 2),
            ("preprocess p50", "preprocess_p50_ms", 2),
            ("fwd ours p50", "ours_forward_p50_ms", 2),
            ("fwd predict p50", "keras_forward_p50_ms", 2),
            ("predict/ours", "ratio", 1, "x"),
        ],
    )
    checks = [
        benchlib.check(f"{r['architecture']} p50", r["ours_p50_ms"], TARGET_P50_MS, higher_is_better=False, unit=" ms")
        for r in latencies
    ]
    for r in latencies:
        print(
            f"{r['architecture']} predict/ours: {r['ratio']:.1f}x with preprocessing, "
            f"{r['forward_ratio']:.1f}x forward pass alone"
        )
    benchlib.table(
        f"\nScoring the 10,000 test images, seconds (median of {args.repeats}; cold = first call, with tracing)",
        evaluations,
        [
            ("architecture", "architecture"),
            ("ours", "ours_s", 3),
            ("model.evaluate", "seed_s", 3),
            ("evaluate/ours", "ratio", 2, "x"),
            ("ours cold", "ours_cold_s", 3),
            ("evaluate cold", "seed_cold_s", 3),
            ("cold ratio", "cold_ratio", 2, "x"),
        ],
    )
    checks += [
        benchlib.check(f"{r['architecture']} model.evaluate/ours", r["ratio"], 1.0, higher_is_better=True, unit="x")
        for r in evaluations
    ]
    settings = {"calls": args.calls, "warmup": args.warmup, "repeats": args.repeats, "canvas": [CANVAS, CANVAS, 4]}
    benchlib.write_results(
        "predict_latency",
        {
            "settings": settings,
            "architectures": latencies,
            "median_ratio": median(r["ratio"] for r in latencies),
            "evaluation": evaluations,
            "checks": checks,
        },
        args.out,
        headline,
    )


if __name__ == "__main__":
    main()
