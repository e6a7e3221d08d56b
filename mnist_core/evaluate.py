"""Test-set evaluation: accuracy, loss, confusion matrix, per-class scores and the misclassified digits; which
run is best by its scores."""

from __future__ import annotations

import time

import numpy as np

from mnist_core import runfiles, storage
from mnist_core.control import now_iso, storage_error
from mnist_core.data import load_mnist, to_model_input
from mnist_core.labels import EPOCHS_DONE, MISSING, counted, percent
from mnist_core.models import Predictor, run_predictor
from mnist_core.runs import IMPORTED, Run
from mnist_core.settings import EVALUATION_BATCH_SIZE, NUM_CLASSES

EPSILON = 1e-7  # Keras clips probabilities the same way before taking the log
LEAST_CONFIDENT_KEPT = 100  # per digit: the correctly classified digits a model was least sure of


def probabilities(predictor: Predictor, images: np.ndarray, batch_size: int = EVALUATION_BATCH_SIZE) -> np.ndarray:
    """Return the model's class probabilities (N, 10) for uint8 images (N, 28, 28)."""
    # The compiled forward pass in chunks: measured faster than model.predict or model.evaluate.
    inputs = to_model_input(images)
    chunks = [predictor.probabilities(inputs[i : i + batch_size]) for i in range(0, len(inputs), batch_size)]
    return np.concatenate(chunks).astype(np.float32, copy=False)


def _digit_rows(indices, labels: np.ndarray, predicted: np.ndarray, confidence: np.ndarray) -> list[dict]:
    """Return one row per test digit in `indices`: index, true and predicted digit, the model's confidence."""
    return [
        {"index": int(i), "true": int(labels[i]), "predicted": int(predicted[i]), "confidence": float(confidence[i])}
        for i in indices
    ]


def score(probs: np.ndarray, labels: np.ndarray) -> dict:
    """Return accuracy, loss, confusion matrix, per-class precision/recall/F1 and misclassified rows."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    labels = np.asarray(labels).astype(np.int64)
    predicted = probs.argmax(axis=1)
    confidence = probs[np.arange(len(probs)), predicted]
    true_prob = np.clip(probs[np.arange(len(probs)), labels], EPSILON, 1.0)
    classes = list(range(NUM_CLASSES))
    precision, recall, f1, support = precision_recall_fscore_support(labels, predicted, labels=classes, zero_division=0)
    wrong = np.flatnonzero(predicted != labels)
    wrong = wrong[np.argsort(-confidence[wrong], kind="stable")]
    unsure = []
    for digit in classes:
        right = np.flatnonzero((predicted == labels) & (labels == digit))
        unsure.extend(right[np.argsort(confidence[right], kind="stable")][:LEAST_CONFIDENT_KEPT])
    return {
        "accuracy": float((predicted == labels).mean()),
        "loss": float(-np.log(true_prob).mean()),
        "count": len(labels),
        "confusion_matrix": confusion_matrix(labels, predicted, labels=classes).tolist(),
        "per_class": [
            {
                "digit": d,
                "precision": float(precision[d]),
                "recall": float(recall[d]),
                "f1": float(f1[d]),
                "support": int(support[d]),
            }
            for d in classes
        ],
        "misclassified": _digit_rows(wrong, labels, predicted, confidence),
        "least_confident_correct": _digit_rows(unsure, labels, predicted, confidence),
    }


def evaluate_run(run: Run, which: str = "best") -> dict:
    """Return the run's test-set evaluation, computed now and stored as evaluation.json (StorageError
    when the disk refuses it)."""
    predictor = run_predictor(run, which)
    mnist = load_mnist()
    started = time.perf_counter()
    result = score(probabilities(predictor, mnist.x_test), mnist.y_test)
    result.update(
        model=run.model_path(which).name,
        seconds=round(time.perf_counter() - started, 3),
        evaluated_at=now_iso(),
        epochs_done=len(run.epochs),
    )
    try:
        storage.write_json_atomic(run.file(runfiles.EVALUATION), result)
    except OSError as error:
        raise storage_error(error, f"save the evaluation of run {run.run_id}") from error
    return result


def stored_evaluation(run: Run) -> dict | None:
    """Return the stored evaluation if it is still about the run's current model, else None."""
    result = run.evaluation
    if not result or result.get("epochs_done") != len(run.epochs):
        return None
    return result


def gallery(result: dict, true: int | None, predicted: int | None) -> tuple[list[dict], str]:
    """Return (the digits of one confusion-matrix cell or row / column, what they are): the mistakes, most
    confident first, or for a diagonal cell the correctly classified digits, least confident first."""
    if true is not None and true == predicted:
        rows = result.get("least_confident_correct")
        if rows is None:
            return (
                [],
                f"This evaluation predates galleries of correct digits: evaluate again to see the {true}s.",
            )
        rows = [row for row in rows if row["true"] == true]
        count = result["confusion_matrix"][true][true]
        shown = f" (the {len(rows)} least sure of)" if len(rows) < count else ""
        return rows, f"{count:,} {true}s classified correctly{shown}, least confident first"
    rows = filter_misclassified(result["misclassified"], true, predicted)
    return rows, f"{counted(len(rows), 'mistake')}, most confident first" if rows else "No mistakes here"


def filter_misclassified(rows: list[dict], true: int | None = None, predicted: int | None = None) -> list[dict]:
    """Return the misclassified rows with that true and / or predicted digit (None: any), order kept."""
    return [
        row
        for row in rows
        if (true is None or row["true"] == true) and (predicted is None or row["predicted"] == predicted)
    ]


def best_model(candidates: list[Run]) -> tuple[Run, str] | None:
    """Return the run to open the Draw page on, and why, in words; None when there are no candidates.

    Runs are ranked by their test accuracy where they have an evaluation of their current model, else by their
    best validation accuracy (the newest wins a tie); runs with neither come last."""

    def score(run: Run) -> tuple[float, str] | None:
        evaluation = stored_evaluation(run)
        if evaluation is not None:
            return float(evaluation["accuracy"]), "test"
        return (float(run.best_val_accuracy), "validation") if run.best_val_accuracy is not None else None

    if not candidates:
        return None
    scored = [(run, score(run)) for run in candidates]
    ranked = [(run, found) for run, found in scored if found is not None]
    # A run trained without validation has epochs but no score until it is evaluated on the test set.
    unscored = sum(1 for run, found in scored if found is None and run.epochs)
    if not ranked:
        reason = (
            "no run has a validation or test score yet (a run trained without validation gets one on Evaluate)"
            if unscored
            else "no run has finished an epoch yet"
        )
        return candidates[0], f"{candidates[0].run_id}, the newest: {reason}"
    best, (accuracy, basis) = max(ranked, key=lambda item: item[1][0])  # max keeps the first (newest) of a tie
    why = f"{best.run_id}, the best {basis} accuracy ({100 * accuracy:.2f} %)"
    evaluated = sum(found[1] == "test" for _, found in ranked)
    if unscored:
        why += f"; {unscored} run(s) trained without validation count once evaluated on the test set"
    if basis == "validation" and not evaluated:
        return best, f"{why}; no run has been evaluated on the test set yet (Evaluate page)"
    if evaluated < len(ranked):
        return best, f"{why}; runs not evaluated on the test set count with their validation accuracy"
    return best, why


def score_images(run: Run, images: np.ndarray, labels: np.ndarray, which: str = "best") -> dict:
    """Return the run's scores (as `score`, plus the seconds it took) on uint8 images (N, 28, 28) with their
    labels (N,): my drawings, or any other labelled set; nothing is stored."""
    predictor = run_predictor(run, which)
    started = time.perf_counter()
    result = score(probabilities(predictor, images), labels)
    result.update(seconds=round(time.perf_counter() - started, 3), model=run.model_path(which).name)
    return result


def leaderboard(candidates: list[Run], drawings_accuracy: dict[str, float] | None = None) -> list[dict]:
    """Return one row per run scored on the test set (its current model) or on my drawings, the best test
    accuracy first (then the best on my drawings): rank, name, architecture, parameters, test accuracy and loss,
    accuracy on my drawings when given (run id -> accuracy) and how many of them a run was taught, epochs done."""
    mine = drawings_accuracy or {}
    scored = [(run, stored_evaluation(run), mine.get(run.run_id)) for run in candidates]
    shown = [item for item in scored if item[1] is not None or item[2] is not None]
    ranked = sorted(
        shown, key=lambda item: (-(item[1]["accuracy"] if item[1] else -1.0), -(item[2] if item[2] is not None else -1))
    )
    # Said only when a run was taught your handwriting: it has seen most of these drawings, so its score is not fair.
    any_taught = drawings_accuracy is not None and any(run.drawings_trained_on for run, _, _ in ranked)
    rows = []
    for rank, (run, result, on_mine) in enumerate(ranked, start=1):
        row = {
            "rank": rank,
            "name": run.name,
            "architecture": run.architecture_label,
            "parameters": run.parameters,
            "test accuracy": percent(result["accuracy"]) if result else MISSING,
            "test loss": f"{result['loss']:.4f}" if result else MISSING,
        }
        if drawings_accuracy is not None:
            row["my drawings accuracy"] = percent(on_mine)
        if any_taught:
            taught = run.drawings_trained_on
            row["trained on my drawings"] = f"{taught} of them" if taught else ""
        row[EPOCHS_DONE] = MISSING if run.state == IMPORTED else len(run.epochs)
        rows.append(row)
    return rows
