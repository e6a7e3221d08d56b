"""A procedural set of drawn digits: strokes rendered like the Draw page's canvas (white pen on black, 280x280)
with several pen widths, slants, sizes and positions, then prepared exactly as a drawing is. For tests and
benchmarks of how models do on drawings rather than on MNIST's scans."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from mnist_core.predict import preprocess_canvas

CANVAS = 280  # the Draw page's canvas, in pixels
PEN_WIDTHS = (10, 14, 18, 24, 30)  # the Draw page's pen is 18
SLANTS = (-0.35, -0.15, 0.0, 0.15, 0.3)  # shear: x moves by slant * (0.5 - y)


def _arc(cx: float, cy: float, rx: float, ry: float, start: float, end: float, points: int = 24) -> list:
    """Return points along an ellipse arc (angles in degrees, 0 = right, 90 = down), in the unit box."""
    return [
        (cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a)))
        for a in np.linspace(start, end, points)
    ]


# Each digit as strokes in a unit box (x right, y down), the way a person writes it.
STROKES = {
    0: [_arc(0.5, 0.5, 0.3, 0.45, 0, 360)],
    1: [[(0.35, 0.2), (0.55, 0.05), (0.55, 0.95)]],
    2: [[*_arc(0.5, 0.3, 0.3, 0.25, 190, 360), (0.8, 0.35), (0.2, 0.95), (0.85, 0.95)]],
    3: [_arc(0.48, 0.28, 0.28, 0.23, 200, 450) + _arc(0.48, 0.72, 0.32, 0.23, 270, 520)],
    4: [[(0.6, 0.05), (0.15, 0.65), (0.85, 0.65)], [(0.62, 0.3), (0.62, 0.95)]],
    5: [[(0.8, 0.05), (0.3, 0.05), (0.25, 0.45), *_arc(0.5, 0.68, 0.32, 0.27, 240, 500)]],
    6: [_arc(0.55, 0.45, 0.3, 0.45, 290, 160) + _arc(0.5, 0.7, 0.28, 0.25, 180, 540)],
    7: [[(0.15, 0.08), (0.85, 0.08), (0.4, 0.95)]],
    8: [_arc(0.5, 0.27, 0.24, 0.22, 90, 450) + _arc(0.5, 0.72, 0.3, 0.23, 270, 630)],
    9: [[*_arc(0.48, 0.3, 0.28, 0.25, 0, 360), (0.76, 0.3), (0.7, 0.95)]],
}


def draw_canvas(label: int, pen: int, slant: float, size: float, offset: tuple[float, float]) -> np.ndarray:
    """Return digit `label` drawn on an RGBA canvas (280, 280, 4) uint8 like the Draw page's: a `pen`-pixel
    pen, sheared by `slant`, the digit `size` of the canvas high, its centre moved by `offset` (canvas shares)."""
    picture = Image.new("RGBA", (CANVAS, CANVAS), (0, 0, 0, 0))
    pen_draw = ImageDraw.Draw(picture)
    box = size * CANVAS
    left = (CANVAS - box) / 2 + offset[0] * CANVAS
    top = (CANVAS - box) / 2 + offset[1] * CANVAS
    for stroke in STROKES[label]:
        points = [(left + box * (x + slant * (0.5 - y)), top + box * y) for x, y in stroke]
        pen_draw.line(points, fill=(255, 255, 255, 255), width=pen, joint="curve")
        for x, y in (points[0], points[-1]):  # round pen ends, as a real pen leaves
            pen_draw.ellipse((x - pen / 2, y - pen / 2, x + pen / 2, y + pen / 2), fill=(255, 255, 255, 255))
    return np.asarray(picture)


def drawn_digits(count: int = 500, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Return (images (count, 28, 28) in [0, 1] prepared as the Draw page prepares a drawing, labels (count,)):
    every digit equally often, each with a random pen width, slant, size and position (seeded)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 10
    images = []
    for label in labels:
        canvas = draw_canvas(
            int(label),
            int(rng.choice(PEN_WIDTHS)),
            float(rng.choice(SLANTS)),
            float(rng.uniform(0.35, 0.8)),
            (float(rng.uniform(-0.1, 0.1)), float(rng.uniform(-0.1, 0.1))),
        )
        images.append(preprocess_canvas(canvas).image)
    return np.stack(images).astype(np.float32), labels
