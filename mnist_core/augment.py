"""Training-time augmentation, in numpy: new random changes to every digit every time the trainer asks for it.

- shift: each digit moves by up to 2 whole pixels (the classic MNIST augmentation).
- drawn: each digit is also turned, scaled, sheared, made thicker or thinner, and bent a little, the ways a
  person's drawing on the canvas differs from MNIST's scans.
- varied: the same changes, milder: digits more like MNIST's own.

The turn, scale, shear and shift are one affine map and the bend is a smooth displacement added to it, so every
digit is resampled once (scipy's map_coordinates, linear), not blurred by a chain of transforms; about 5 ms per
batch of 128 on one core (14 ms while training runs beside it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from mnist_core.settings import IMAGE_SIZE

SHIFT_PIXELS = 2
CENTRE = (IMAGE_SIZE - 1) / 2  # MNIST centres each digit's mass on the image's middle


@dataclass(frozen=True)
class DrawnAugmentation:
    """How far 'drawn' augmentation goes: every digit draws its own values, uniformly within these ranges."""

    rotation_degrees: float = 12.0
    scale: tuple[float, float] = (0.85, 1.1)  # smaller more than larger: drawn digits are often small
    shear: float = 0.25  # x moves by up to shear * (y - centre): slanted handwriting
    shift_pixels: float = 2.0
    # A share of a 3x3 dilation (> 0: a thicker pen) or erosion (< 0: thinner; less, as it also dims the ink).
    stroke: tuple[float, float] = (-0.4, 0.6)
    bend_pixels: float = 1.2  # the elastic bend: a smooth displacement of up to about this many pixels
    bend_grid: int = 4  # the bend's control points per side: a few bends across a digit, not noise


DRAWN = DrawnAugmentation()
# The same changes, milder: digits as another hand of the same census might have written them (the Best preset).
VARIED = DrawnAugmentation(
    rotation_degrees=8.0, scale=(0.92, 1.08), shear=0.12, shift_pixels=2.0, stroke=(-0.15, 0.25), bend_pixels=0.8
)
SETTINGS = {"varied": VARIED, "drawn": DRAWN}


def shifted(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Return images (b, 28, 28) each moved by up to SHIFT_PIXELS whole pixels, zeros coming in at the edges."""
    pad, size = SHIFT_PIXELS, images.shape[1]
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad)))
    offsets = rng.integers(0, 2 * pad + 1, size=(len(images), 2))
    grid = np.arange(size)
    rows = (offsets[:, 0, None] + grid)[:, :, None]
    columns = (offsets[:, 1, None] + grid)[:, None, :]
    return padded[np.arange(len(images))[:, None, None], rows, columns]


def restroked(images: np.ndarray, amount: np.ndarray) -> np.ndarray:
    """Return images (b, 28, 28) with strokes thickened (amount > 0) or thinned (amount < 0) by that share of a
    3x3 grey dilation or erosion."""
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1)))
    size = images.shape[1]
    neighbours = np.stack([padded[:, dy : dy + size, dx : dx + size] for dy in range(3) for dx in range(3)])
    target = np.where(amount[:, None, None] > 0, neighbours.max(axis=0), neighbours.min(axis=0))
    return images + np.abs(amount)[:, None, None] * (target - images)


def _interpolation_matrix(points: int, size: int) -> np.ndarray:
    """Return the (size, points) weights that interpolate `points` control values linearly across `size` pixels."""
    positions = np.linspace(0, points - 1, size)
    return np.clip(1 - np.abs(positions[:, None] - np.arange(points)[None, :]), 0, 1)


def drawn(images: np.ndarray, rng: np.random.Generator, settings: DrawnAugmentation = DRAWN) -> np.ndarray:
    """Return float images (b, 28, 28) in [0, 1] each re-stroked, then turned, scaled, sheared, shifted and bent."""
    count, size = len(images), images.shape[1]
    images = restroked(images, rng.uniform(*settings.stroke, count))
    angle = np.radians(rng.uniform(-settings.rotation_degrees, settings.rotation_degrees, count))
    scale = rng.uniform(*settings.scale, count)
    shear = rng.uniform(-settings.shear, settings.shear, count)
    shift = rng.uniform(-settings.shift_pixels, settings.shift_pixels, (count, 2))
    # forward (x, y) -> centre + rotate @ scale @ shear @ ((x, y) - centre) + shift; sampling needs its inverse.
    cos, sin = np.cos(angle), np.sin(angle)
    forward = np.empty((count, 2, 2))
    forward[:, 0, 0], forward[:, 0, 1] = scale * cos, scale * (cos * shear - sin)
    forward[:, 1, 0], forward[:, 1, 1] = scale * sin, scale * (sin * shear + cos)
    inverse = np.linalg.inv(forward)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    out = np.stack([xs - CENTRE, ys - CENTRE])[None] - shift[:, :, None, None]  # (b, 2, 28, 28) as (x, y)
    source = np.einsum("bij,bjyx->biyx", inverse, out) + CENTRE
    weights = _interpolation_matrix(settings.bend_grid, size)
    control = rng.uniform(
        -settings.bend_pixels, settings.bend_pixels, (count, 2, settings.bend_grid, settings.bend_grid)
    )
    source += np.einsum("yg,bcgh,xh->bcyx", weights, control, weights)
    batch = np.broadcast_to(np.arange(count, dtype=np.float64)[:, None, None], (count, size, size))
    coordinates = np.stack([batch, source[:, 1], source[:, 0]])  # map_coordinates wants (batch, row, column)
    resampled = ndimage.map_coordinates(images, coordinates, order=1, mode="constant", cval=0.0)
    return np.clip(resampled, 0.0, 1.0)


def augment(kind: str, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Return images (b, 28, 28) in [0, 1] augmented by `kind` ('none', 'shift', 'varied' or 'drawn')."""
    if kind == "shift":
        return shifted(images, rng)
    if kind in SETTINGS:
        return drawn(images, rng, SETTINGS[kind]).astype(images.dtype)
    return images


def preview(images: np.ndarray, kind: str, copies: int, seed: int = 0) -> np.ndarray:
    """Return (n, copies, 28, 28) float: `copies` augmented versions of each of the uint8 images (n, 28, 28)."""
    rng = np.random.default_rng(seed)
    repeated = np.repeat(np.asarray(images, np.float32) / 255.0, copies, axis=0)
    return augment(kind, repeated, rng).reshape(len(images), copies, *images.shape[1:])
