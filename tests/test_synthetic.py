"""The procedural drawn digits: seeded, balanced, pen width, slant and turn visible in them, every way of writing
a digit distinct, and a trained model reads most of them."""

from __future__ import annotations

import numpy as np

from mnist_core import synthetic
from mnist_core.models import run_predictor
from mnist_core.predict import preprocess_canvas


def test_the_set_is_seeded_balanced_and_prepared_like_a_drawing():
    images, labels = synthetic.drawn_digits(60, seed=3)
    again, _ = synthetic.drawn_digits(60, seed=3)
    other, _ = synthetic.drawn_digits(60, seed=4)
    np.testing.assert_array_equal(images, again)
    assert not np.array_equal(images, other)
    assert images.shape == (60, 28, 28) and np.bincount(labels).tolist() == [6] * 10
    assert images.min() >= 0 and images.max() <= 1 and (images.reshape(60, -1).max(axis=1) > 0.5).all()


def test_a_wider_pen_leaves_more_ink_and_a_slant_leans_the_digit():
    def ink(pen: int) -> float:
        canvas = synthetic.draw_canvas(1, synthetic.Hand(pen=pen))
        return float((canvas[:, :, 0] > 128).sum())

    amounts = [ink(pen) for pen in synthetic.PEN_WIDTHS]
    assert amounts == sorted(amounts) and amounts[-1] > 2 * amounts[0]
    leaning = synthetic.draw_canvas(1, synthetic.Hand(slant=0.3))[:, :, 0] > 128
    rows = np.flatnonzero(leaning.any(axis=1))
    top = np.flatnonzero(leaning[rows[0] + 20])
    bottom = np.flatnonzero(leaning[rows[-1] - 20])
    assert top.mean() > bottom.mean() + 20  # x grows with height: the top leans right
    assert not preprocess_canvas(synthetic.draw_canvas(7, synthetic.Hand(offset=(0.05, -0.05)))).blank


def test_every_way_of_writing_a_digit_is_drawn_and_differs():
    for label, styles in synthetic.STYLES.items():
        drawn = [
            preprocess_canvas(synthetic.draw_canvas(label, synthetic.Hand(style=s))).image for s in range(len(styles))
        ]
        assert all(image is not None for image in drawn), label
        for first in range(len(drawn)):
            for second in range(first + 1, len(drawn)):
                assert np.abs(drawn[first] - drawn[second]).sum() > 8, (label, first, second)  # a stroke of ink


def test_a_turn_turns_the_digit():
    def main_axis(turn: float) -> float:
        ink = synthetic.draw_canvas(1, synthetic.Hand(style=1, turn_degrees=turn))[:, :, 0].astype(float)
        ys, xs = np.mgrid[0 : ink.shape[0], 0 : ink.shape[1]]
        x0, y0 = (ink * xs).sum() / ink.sum(), (ink * ys).sum() / ink.sum()
        mu20, mu02 = (ink * (xs - x0) ** 2).sum(), (ink * (ys - y0) ** 2).sum()
        mu11 = (ink * (xs - x0) * (ys - y0)).sum()
        return float(np.degrees(0.5 * np.arctan2(2 * mu11, mu20 - mu02)))

    # The plain 1 stands nearly upright (about 90 degrees); a turn of 15 degrees moves its axis by about that.
    assert abs(abs(main_axis(0)) - 90) < 3
    assert abs(abs(main_axis(0)) - abs(main_axis(15)) - 15) < 3


def test_a_trained_model_reads_most_drawn_digits(trained_cnn):
    images, labels = synthetic.drawn_digits(200)
    predicted = run_predictor(trained_cnn).probabilities(images).argmax(axis=1)
    accuracy = float((predicted == labels).mean())
    assert accuracy > 0.7, accuracy  # ten classes: chance is 0.1
