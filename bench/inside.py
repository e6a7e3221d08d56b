"""The Inside page's views for one input: every layer's output, the filters, Grad-CAM and integrated gradients.

For each architecture (its model built as the registry makes it; the time does not depend on the weights),
one input, --repeats times after a warm-up: (1) every layer's output from the one compiled pass the page uses,
beside one `predict` per layer through a sub-model for each, built beforehand (the usual way: the same outputs);
(2) the first-layer filters; (3) Grad-CAM and integrated gradients for the predicted class. Then the
embedding map of 2,000 test digits (PCA), first time and cached, and t-SNE once (fast_cnn). Medians; the
views' max beside their median.
"""

from __future__ import annotations

import time

import benchlib
from benchlib import fmt, median

TARGET_VIEWS_MS = 300.0  # all of 1-3 for one input
TARGET_EMBEDDING_S = 10.0  # the embedding map's first computation, 2,000 digits


def timed(function, repeats: int) -> list[float]:
    """Return the milliseconds of `repeats` calls of `function` (after one warm-up call)."""
    function()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(1000 * (time.perf_counter() - started))
    return times


def per_layer_models(model) -> list:
    """Return one sub-model per layer (input to that layer's output): the usual way to read every layer, built
    once here so only its predicts are timed."""
    import keras

    from mnist_core import inside

    inputs = keras.Input((28, 28, 1))
    y, made = inputs, []
    for layer in inside.model_layers(model):
        y = layer(y)
        made.append(keras.Model(inputs, y))
    return made


def per_layer_predicts(sub_models: list, image) -> list:
    """Return every layer's output by one `predict` per layer's sub-model (the comparison)."""
    return [sub_model.predict(image.reshape(1, 28, 28, 1), verbose=0) for sub_model in sub_models]


def main() -> None:
    """Time every view for every architecture, print the table, write bench/results/inside.json."""
    parser = benchlib.parser(__doc__.split("\n\n")[0], repeats=3)
    parser.add_argument("--repeats", type=int, default=15, help="timed calls per view (default 15)")
    args = benchlib.parse(parser)

    from mnist_core import inside
    from mnist_core.architectures import ARCHITECTURES, build_model
    from mnist_core.data import load_mnist, to_model_input

    digits = to_model_input(load_mnist().x_test[: inside.EMBEDDING_DIGITS])[..., 0]
    image = digits[0]
    rows, checks = [], []
    for key in ARCHITECTURES:
        model = build_model(key)
        views = inside.Inspector(model)
        target = int(views.layer_outputs(image)[-1].values.argmax())
        one_pass = timed(lambda views=views: views.layer_outputs(image), args.repeats)
        sub_models = per_layer_models(model)
        predicts = timed(lambda sub_models=sub_models: per_layer_predicts(sub_models, image), max(2, args.repeats // 3))
        every = timed(
            lambda views=views, target=target: (
                views.layer_outputs(image),
                views.first_filters(),
                views.grad_cam(image, target),
                views.integrated_gradients(image, target),
            ),
            args.repeats,
        )
        started = time.perf_counter()
        views.embedding(digits, "pca")
        first_embedding = time.perf_counter() - started
        cached = timed(lambda views=views: views.embedding(digits, "pca"), args.repeats)
        tsne = None
        if key == "fast_cnn":  # t-SNE, the option: once, for the record
            started = time.perf_counter()
            views.embedding(digits, "tsne")
            tsne = time.perf_counter() - started
        rows.append(
            {
                "architecture": key,
                "one_pass_ms": median(one_pass),
                "per_layer_predict_ms": median(predicts),
                "speedup": median(predicts) / median(one_pass),
                "views_ms": median(every),
                "views_max_ms": max(every),
                "embedding_first_s": first_embedding,
                "embedding_cached_ms": median(cached),
                "tsne_first_s": tsne,
            }
        )
        print(f"  {key}: views {fmt(median(every), 1)} ms, embedding {fmt(first_embedding, 2)} s", flush=True)
    benchlib.table(
        "\nOne input (milliseconds, median; max of the views beside it)",
        rows,
        [
            ("architecture", "architecture"),
            ("every layer, one pass", "one_pass_ms", 1),
            ("a predict per layer", "per_layer_predict_ms", 1),
            ("ratio", "speedup", 1, "x"),
            ("all of 1-3", "views_ms", 1),
            ("max", "views_max_ms", 1),
            ("embedding, first (s)", "embedding_first_s", 2),
            ("cached (ms)", "embedding_cached_ms", 3),
            ("t-SNE first (s)", "tsne_first_s", 1),
        ],
    )
    slowest = max(rows, key=lambda row: row["views_ms"])
    embedding = max(rows, key=lambda row: row["embedding_first_s"])
    checks.append(
        benchlib.check(
            f"all views, one input, slowest ({slowest['architecture']})",
            slowest["views_ms"],
            TARGET_VIEWS_MS,
            higher_is_better=False,
            unit=" ms",
        )
    )
    checks.append(
        benchlib.check(
            f"embedding of {inside.EMBEDDING_DIGITS:,} digits, first, slowest ({embedding['architecture']})",
            embedding["embedding_first_s"],
            TARGET_EMBEDDING_S,
            higher_is_better=False,
            unit=" s",
        )
    )
    benchlib.write_results(
        "inside",
        {
            "settings": {"repeats": args.repeats, "digits": inside.EMBEDDING_DIGITS},
            "rows": rows,
            "checks": checks,
            "note": f"slowest views {slowest['views_ms']:.0f} ms; slowest first embedding "
            f"{embedding['embedding_first_s']:.1f} s",
        },
        args.out,
        lambda results: {"views_ms": slowest["views_ms"], "embedding_s": embedding["embedding_first_s"]},
    )


if __name__ == "__main__":
    main()
