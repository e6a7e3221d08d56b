"""Augmentation: shifts are whole-pixel moves, re-stroking is a grey dilation or erosion, 'drawn' turns, scales
and moves digits by the amounts it promises (checked with image moments), batches keep their labels, and a
real run trains with it."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import fresh, log_of, wait_state
from scipy import ndimage

from mnist_core import augment, control, runs
from mnist_core.augment import DrawnAugmentation
from mnist_core.config import TrainConfig

STILL = DrawnAugmentation(
    rotation_degrees=0.0, scale=(1.0, 1.0), shear=0.0, shift_pixels=0.0, stroke=(0.0, 0.0), bend_pixels=0.0
)


@pytest.fixture(scope="module")
def digits(mnist) -> np.ndarray:
    """Return 300 MNIST training digits as float (300, 28, 28) in [0, 1]."""
    return mnist.x_train[:300].astype(np.float32) / 255.0


def centre_of_mass(images: np.ndarray) -> np.ndarray:
    """Return each image's centre of ink as (row, column), (b, 2)."""
    return np.array([ndimage.center_of_mass(image) for image in images])


def orientation_degrees(images: np.ndarray) -> np.ndarray:
    """Return each image's main axis angle from the horizontal, in degrees (second moments), (b,)."""
    ys, xs = np.mgrid[0:28, 0:28]
    angles = []
    for image in images:
        mass = image.sum()
        y0, x0 = (image * ys).sum() / mass, (image * xs).sum() / mass
        mu20 = (image * (xs - x0) ** 2).sum()
        mu02 = (image * (ys - y0) ** 2).sum()
        mu11 = (image * (xs - x0) * (ys - y0)).sum()
        angles.append(np.degrees(0.5 * np.arctan2(2 * mu11, mu20 - mu02)))
    return np.array(angles)


def test_shift_moves_each_digit_by_whole_pixels_within_two(digits):
    moved = augment.shifted(digits[:40], np.random.default_rng(0))
    padded = np.pad(digits[:40], ((0, 0), (2, 2), (2, 2)))
    for index, image in enumerate(moved):
        matches = [
            (dy, dx)
            for dy in range(5)
            for dx in range(5)
            if np.array_equal(padded[index, dy : dy + 28, dx : dx + 28], image)
        ]
        assert matches, f"digit {index} is not a whole-pixel shift of its original"


def test_restroking_is_a_share_of_a_grey_dilation_or_erosion(digits):
    images = digits[:20]
    thicker = ndimage.maximum_filter(images, size=(1, 3, 3), mode="constant", cval=0.0)
    thinner = ndimage.minimum_filter(images, size=(1, 3, 3), mode="constant", cval=0.0)
    np.testing.assert_allclose(augment.restroked(images, np.ones(20)), thicker, atol=1e-6)
    np.testing.assert_allclose(augment.restroked(images, -np.ones(20)), thinner, atol=1e-6)
    np.testing.assert_allclose(augment.restroked(images, np.full(20, 0.5)), (images + thicker) / 2, atol=1e-6)
    assert (augment.restroked(images, np.ones(20)) > 0.5).sum() > (images > 0.5).sum()  # more ink


def test_drawn_with_every_range_at_zero_leaves_digits_as_they_were(digits):
    np.testing.assert_allclose(augment.drawn(digits[:50], np.random.default_rng(1), STILL), digits[:50], atol=1e-5)


def test_drawn_scale_shrinks_about_the_centre(digits):
    half = DrawnAugmentation(**{**STILL.__dict__, "scale": (0.5, 0.5)})
    small = augment.drawn(digits[:50], np.random.default_rng(2), half)
    before, after = centre_of_mass(digits[:50]), centre_of_mass(small)
    np.testing.assert_allclose(after, augment.CENTRE + 0.5 * (before - augment.CENTRE), atol=0.35)
    np.testing.assert_allclose(small.sum(axis=(1, 2)) / digits[:50].sum(axis=(1, 2)), 0.25, atol=0.05)


def test_drawn_rotation_turns_by_up_to_its_limit_both_ways():
    bar = np.zeros((200, 28, 28), np.float32)
    bar[:, 13:15, 4:24] = 1.0
    turned = DrawnAugmentation(**{**STILL.__dict__, "rotation_degrees": 12.0})
    angles = orientation_degrees(augment.drawn(bar, np.random.default_rng(3), turned))
    assert np.abs(angles).max() <= 12.5
    assert angles.max() > 8 and angles.min() < -8  # it turns both ways, over the whole range


def test_drawn_defaults_move_ink_a_bounded_amount_and_vary_with_the_seed(digits):
    first = augment.drawn(digits, np.random.default_rng(4))
    assert first.min() >= 0 and first.max() <= 1
    moved = np.linalg.norm(centre_of_mass(first) - centre_of_mass(digits), axis=1)
    # Shift up to 2 px per axis, the bend up to 1.2 px, shear and scale about the centre add a little.
    assert np.median(moved) < 2.5 and moved.max() < 5.0
    assert np.mean(np.abs(first - digits).sum(axis=(1, 2)) > 5) > 0.95  # nearly every digit changed
    np.testing.assert_array_equal(augment.drawn(digits, np.random.default_rng(4)), first)  # seeded: repeatable
    assert not np.allclose(augment.drawn(digits, np.random.default_rng(5)), first)


def test_preview_gives_copies_of_each_digit(mnist):
    shown = augment.preview(mnist.x_train[:6], "drawn", copies=4, seed=0)
    assert shown.shape == (6, 4, 28, 28)
    assert not np.allclose(shown[:, 0], shown[:, 1])
    np.testing.assert_allclose(augment.preview(mnist.x_train[:6], "none", 2)[:, 1], mnist.x_train[:6] / 255.0)


def test_augmented_batches_keep_their_labels(digits, mnist):
    from mnist_core.training import AugmentedDigits

    x, y = digits[:50, ..., None], mnist.y_train[:50]
    batches = AugmentedDigits(x, y, batch_size=16, seed=0, kind="shift")
    assert len(batches) == 4
    images, labels = batches.epoch(0)
    assert images.shape == (50, 28, 28, 1) and labels.shape == (50,)
    padded = np.pad(digits[:50], ((0, 0), (2, 2), (2, 2)))
    sources = [
        [
            i
            for i in range(50)
            for dy in range(5)
            for dx in range(5)
            if np.array_equal(padded[i, dy : dy + 28, dx : dx + 28], image)
        ]
        for image in images[..., 0]
    ]
    assert all(found and all(y[i] == label for i in found) for found, label in zip(sources, labels, strict=True))
    identified = [found[0] for found in sources if len(found) == 1]
    assert len(identified) > 40 and len(set(identified)) == len(identified)  # each digit once in the epoch


def test_the_stream_of_batches_is_each_epoch_made_directly(digits, mnist):
    from mnist_core.training import AugmentedDigits

    x, y = digits[:40, ..., None], mnist.y_train[:40]
    batches = AugmentedDigits(x, y, batch_size=16, seed=3, kind="varied")
    streamed = list(batches.dataset(first_epoch=1, end_epoch=3).as_numpy_iterator())
    assert [len(labels) for _, labels in streamed] == [16, 16, 8, 16, 16, 8]  # epochs 1 and 2, last batch short
    for number, part in ((1, streamed[:3]), (2, streamed[3:])):
        images, labels = batches.epoch(number)  # made here, not on the helper thread
        np.testing.assert_array_equal(np.concatenate([image for image, _ in part]), images)
        np.testing.assert_array_equal(np.concatenate([label for _, label in part]), labels)
    assert not np.array_equal(batches.epoch(1)[0], batches.epoch(2)[0])  # each epoch is augmented afresh
    np.testing.assert_array_equal(np.sort(batches.epoch(2)[1]), np.sort(y))  # every digit once an epoch


def test_a_run_trains_with_drawn_augmentation(runs_dir, reaper):
    config = TrainConfig.for_architecture("robust_cnn", epochs=1, train_subset=600, batch_size=64)
    assert config.augmentation == "drawn"
    run = control.start_run(config, runs_dir)
    reaper.append(run)
    assert wait_state(run) == runs.FINISHED, log_of(run)
    assert fresh(run).epochs[0]["val_accuracy"] > 0.1  # it learned something from the augmented digits


def test_varied_changes_digits_less_than_drawn(digits):
    def change(kind: str) -> float:
        return float(np.abs(augment.augment(kind, digits, np.random.default_rng(6)) - digits).mean())

    assert 0 < change("varied") < change("drawn")
    assert change("none") == 0
