"""Evaluation: score() against plain numpy on synthetic probabilities, and evaluate_run on a trained run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import copy_run

from mnist_core import runs, storage
from mnist_core.data import to_model_input
from mnist_core.evaluate import evaluate_run, filter_misclassified, gallery, score, stored_evaluation
from mnist_core.models import run_predictor


def synthetic(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Return (probabilities (n, 10) float32, labels (n,)) with ~70 % right answers and no class 9 predicted."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    probs = rng.dirichlet(np.ones(10), n)
    right = rng.random(n) < 0.7
    probs[right, labels[right]] += 2.0  # make the true class the argmax for most rows
    probs[:, 9] *= 0.01  # digit 9 is never predicted: its precision has no predictions to divide by
    probs = 0.99 * probs / probs.sum(axis=1, keepdims=True) + 0.001
    return (probs / probs.sum(axis=1, keepdims=True)).astype(np.float32), labels


def numpy_confusion(labels, predicted) -> np.ndarray:
    matrix = np.zeros((10, 10), dtype=int)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix


def test_accuracy_and_loss_match_numpy():
    probs, labels = synthetic()
    result = score(probs, labels)
    predicted = probs.argmax(axis=1)
    assert result["count"] == len(labels)
    assert result["accuracy"] == pytest.approx(np.mean(predicted == labels))
    expected_loss = -np.mean(np.log(probs[np.arange(len(labels)), labels].astype(np.float64)))
    assert result["loss"] == pytest.approx(expected_loss, rel=1e-5)
    assert 0.5 < result["accuracy"] < 0.95  # the synthetic data really has both right and wrong rows


def test_loss_matches_keras_cross_entropy_even_with_zero_probabilities():
    import keras

    probs, labels = synthetic(200, seed=1)
    probs[:5] = 0.0
    probs[np.arange(5), (labels[:5] + 1) % 10] = 1.0  # certain and wrong: the true class has probability 0
    result = score(probs, labels)
    keras_loss = float(keras.losses.SparseCategoricalCrossentropy()(labels, probs))
    assert np.isfinite(result["loss"])
    assert result["loss"] == pytest.approx(keras_loss, rel=1e-4)


def test_confusion_matrix_matches_a_numpy_count():
    probs, labels = synthetic()
    predicted = probs.argmax(axis=1)
    matrix = np.array(score(probs, labels)["confusion_matrix"])
    expected = numpy_confusion(labels, predicted)
    assert matrix.shape == (10, 10)
    assert np.array_equal(matrix, expected)
    assert matrix.sum() == len(labels)
    assert np.trace(matrix) == np.sum(predicted == labels)
    assert np.array_equal(matrix.sum(axis=1), np.bincount(labels, minlength=10))  # rows are true digits
    assert matrix[:, 9].sum() == 0


def test_per_class_precision_recall_f1_by_hand():
    probs, labels = synthetic()
    predicted = probs.argmax(axis=1)
    per_class = score(probs, labels)["per_class"]
    assert [row["digit"] for row in per_class] == list(range(10))
    for digit, row in enumerate(per_class):
        true_positive = np.sum((predicted == digit) & (labels == digit))
        predicted_count = np.sum(predicted == digit)
        actual_count = np.sum(labels == digit)
        precision = true_positive / predicted_count if predicted_count else 0.0
        recall = true_positive / actual_count if actual_count else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        assert row["precision"] == pytest.approx(precision), digit
        assert row["recall"] == pytest.approx(recall), digit
        assert row["f1"] == pytest.approx(f1), digit
        assert row["support"] == actual_count
    assert per_class[9]["precision"] == 0.0 and per_class[9]["recall"] == 0.0


def test_misclassified_sorted_by_confidence():
    probs, labels = synthetic()
    predicted = probs.argmax(axis=1)
    wrong = score(probs, labels)["misclassified"]
    assert sorted(row["index"] for row in wrong) == sorted(np.flatnonzero(predicted != labels).tolist())
    confidences = [row["confidence"] for row in wrong]
    assert confidences == sorted(confidences, reverse=True)
    for row in wrong:
        i = row["index"]
        assert row["true"] == labels[i] and row["predicted"] == predicted[i] != labels[i]
        assert row["confidence"] == pytest.approx(float(probs[i].max()))


def test_least_confident_correct_digits_per_digit():
    probs, labels = synthetic()
    predicted = probs.argmax(axis=1)
    result = score(probs, labels)
    kept = result["least_confident_correct"]
    for digit in range(10):
        rows = [row for row in kept if row["true"] == digit]
        right = np.flatnonzero((predicted == labels) & (labels == digit))
        expected = sorted(right.tolist(), key=lambda i: (probs[i].max(), i))[:100]
        assert [row["index"] for row in rows] == expected
        assert all(row["predicted"] == digit for row in rows)
    # The gallery of a diagonal cell shows them; any other cell shows that cell's mistakes.
    digit = int(labels[0])
    rows, text = gallery(result, digit, digit)
    assert rows == [row for row in kept if row["true"] == digit]
    assert f"{result['confusion_matrix'][digit][digit]:,} {digit}s classified correctly" in text
    assert "least confident first" in text
    other = (digit + 1) % 10
    rows, text = gallery(result, digit, other)
    assert rows == filter_misclassified(result["misclassified"], digit, other)
    said = f"{len(rows):,} {'mistake' if len(rows) == 1 else 'mistakes'}, most confident first"
    assert text == (said if rows else "No mistakes here")
    older = {key: value for key, value in result.items() if key != "least_confident_correct"}
    assert gallery(older, digit, digit)[0] == [] and "evaluate again" in gallery(older, digit, digit)[1]


def test_perfect_predictions():
    labels = np.arange(50) % 10
    probs = np.eye(10, dtype=np.float32)[labels]
    result = score(probs, labels.astype(np.uint8))
    assert result["accuracy"] == 1.0
    assert result["misclassified"] == []
    assert result["loss"] == pytest.approx(0.0, abs=1e-6)
    assert np.array_equal(np.array(result["confusion_matrix"]), np.diag(np.full(10, 5)))


def test_evaluate_run_on_a_trained_run(trained_run, runs_dir, mnist):
    run = copy_run(trained_run, runs_dir)
    assert stored_evaluation(run) is None
    result = evaluate_run(run)
    assert result["count"] == 10_000
    assert result["model"] == "best.keras"
    assert result["epochs_done"] == 1

    model = run_predictor(run, "best").model
    probs = model.predict(to_model_input(mnist.x_test), batch_size=1024, verbose=0)
    predicted = probs.argmax(axis=1)
    expected_accuracy = np.mean(predicted == mnist.y_test)
    assert abs(result["accuracy"] - expected_accuracy) <= 2e-4  # at most two near-ties may round differently
    assert result["accuracy"] > 0.3  # well above chance: test images and labels line up
    matrix = np.array(result["confusion_matrix"])
    assert np.array_equal(matrix.sum(axis=1), np.bincount(mnist.y_test, minlength=10))
    assert abs(np.trace(matrix) - np.sum(predicted == mnist.y_test)) <= 2
    assert len(result["misclassified"]) == 10_000 - np.trace(matrix)

    stored = json.loads(run.file("evaluation.json").read_text())
    assert stored["accuracy"] == result["accuracy"] and stored["count"] == 10_000
    run = runs.read_run(run.path)
    assert stored_evaluation(run)["accuracy"] == result["accuracy"]
    assert run.summary()["test_accuracy"] == result["accuracy"]

    # Once the run has trained further, the stored evaluation is stale.
    rows = list(run.epochs)
    storage.write_csv_atomic(run.file("epochs.csv"), [*rows, dict(rows[-1], epoch=2)], list(rows[0]))
    assert stored_evaluation(runs.read_run(run.path)) is None
