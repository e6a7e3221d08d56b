"""A procedural set of drawn digits: strokes rendered like the Draw page's canvas (white pen on black, 280x280),
in several ways of writing each digit, with pen widths from a fine liner to a marker, slants, turns, narrow and
wide shapes, a wobbly hand, and any size and position, then prepared exactly as a drawing is. For tests and
benchmarks of how models do on drawings rather than on MNIST's scans.

Preparing a drawing crops and scales it to 20x20 pixels, so size and position alone change little; what stays is
the pen's width relative to the digit (a marker on a small digit is a thick blob), the slant and turn, the shape's
proportions, the wobble and the way the digit is written (a 7 with a bar, an open 4, a 1 with a base)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from mnist_core.predict import preprocess_canvas

CANVAS = 280  # the Draw page's canvas, in pixels
PEN_WIDTHS = (6, 10, 14, 18, 24, 30, 38)  # the Draw page's pen is 18
MAX_PEN_SHARE = 0.3  # no pen wider than this share of the digit's height: it would leave a blob, not a digit


def _arc(cx: float, cy: float, rx: float, ry: float, start: float, end: float, points: int = 24) -> list:
    """Return points along an ellipse arc (angles in degrees, 0 = right, 90 = down), in the unit box."""
    return [
        (cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a)))
        for a in np.linspace(start, end, points)
    ]


# Each digit, in the ways people write it: each way a list of strokes in a unit box (x right, y down).
STYLES = {
    0: [[_arc(0.5, 0.5, 0.3, 0.45, 0, 360)], [_arc(0.5, 0.5, 0.22, 0.45, -80, 290)]],
    1: [
        [[(0.35, 0.2), (0.55, 0.05), (0.55, 0.95)]],
        [[(0.52, 0.05), (0.5, 0.95)]],
        [[(0.35, 0.2), (0.55, 0.05), (0.55, 0.95)], [(0.3, 0.95), (0.8, 0.95)]],
    ],
    2: [
        [[*_arc(0.5, 0.3, 0.3, 0.25, 190, 360), (0.8, 0.35), (0.2, 0.95), (0.85, 0.95)]],
        [[*_arc(0.5, 0.3, 0.3, 0.25, 190, 370), (0.25, 0.88), *_arc(0.3, 0.85, 0.1, 0.1, 0, 300), (0.9, 0.92)]],
    ],
    3: [
        [_arc(0.48, 0.28, 0.28, 0.23, 200, 450) + _arc(0.48, 0.72, 0.32, 0.23, 270, 520)],
        [[(0.2, 0.05), (0.8, 0.05), (0.45, 0.42), *_arc(0.48, 0.68, 0.32, 0.27, 270, 520)]],
    ],
    4: [
        [[(0.6, 0.05), (0.15, 0.65), (0.85, 0.65)], [(0.62, 0.3), (0.62, 0.95)]],
        [[(0.22, 0.05), (0.2, 0.55), (0.85, 0.55)], [(0.68, 0.08), (0.68, 0.95)]],
    ],
    5: [
        [[(0.8, 0.05), (0.3, 0.05), (0.25, 0.45), *_arc(0.5, 0.68, 0.32, 0.27, 240, 500)]],
        [[(0.3, 0.05), (0.25, 0.45), *_arc(0.5, 0.68, 0.32, 0.27, 240, 500)], [(0.3, 0.05), (0.85, 0.06)]],
    ],
    6: [
        [_arc(0.55, 0.45, 0.3, 0.45, 290, 160) + _arc(0.5, 0.7, 0.28, 0.25, 180, 540)],
        [[(0.62, 0.05), (0.25, 0.6), *_arc(0.5, 0.72, 0.27, 0.23, 180, 540)]],
    ],
    7: [
        [[(0.15, 0.08), (0.85, 0.08), (0.4, 0.95)]],
        [[(0.15, 0.08), (0.85, 0.08), (0.4, 0.95)], [(0.35, 0.5), (0.8, 0.5)]],
        [[(0.12, 0.2), (0.2, 0.08), (0.85, 0.08), (0.5, 0.95)]],
    ],
    8: [
        [_arc(0.5, 0.27, 0.24, 0.22, 90, 450) + _arc(0.5, 0.72, 0.3, 0.23, 270, 630)],
        [_arc(0.5, 0.3, 0.2, 0.25, 90, 450) + _arc(0.5, 0.75, 0.33, 0.2, 270, 630)],
    ],
    9: [
        [[*_arc(0.48, 0.3, 0.28, 0.25, 0, 360), (0.76, 0.3), (0.7, 0.95)]],
        [[*_arc(0.48, 0.3, 0.28, 0.25, 0, 360), (0.76, 0.3), *_arc(0.45, 0.62, 0.31, 0.33, 0, 110)]],
    ],
}


@dataclass(frozen=True)
class Hand:
    """How one digit is drawn: the way of writing it, the pen, slant and turn, proportions, wobble, size, place."""

    style: int = 0
    pen: int = 18
    slant: float = 0.0  # shear: x moves by slant * (0.5 - y)
    turn_degrees: float = 0.0
    width: float = 1.0  # horizontal stretch of the digit
    wobble: float = 0.0  # a wobbly hand: points move by up to this share of the digit, smoothly
    size: float = 0.6  # the digit's height, as a share of the canvas
    offset: tuple[float, float] = (0.0, 0.0)  # its centre's move from the canvas centre, as canvas shares
    phase: float = 0.0  # where along the strokes the wobble starts


def random_hand(label: int, rng: np.random.Generator) -> Hand:
    """Return a random way of drawing digit `label` (seeded by `rng`)."""
    size = float(rng.uniform(0.25, 0.85))
    pens = [pen for pen in PEN_WIDTHS if pen <= MAX_PEN_SHARE * size * CANVAS] or [PEN_WIDTHS[0]]
    return Hand(
        style=int(rng.integers(len(STYLES[label]))),
        pen=int(rng.choice(pens)),
        slant=float(rng.uniform(-0.45, 0.45)),
        turn_degrees=float(rng.uniform(-15, 15)),
        width=float(rng.uniform(0.6, 1.25)),
        wobble=float(rng.uniform(0.0, 0.03)),
        size=size,
        offset=(float(rng.uniform(-0.15, 0.15)), float(rng.uniform(-0.15, 0.15))),
        phase=float(rng.uniform(0, 2 * math.pi)),
    )


def _placed(stroke: list, hand: Hand, box: float, centre: tuple[float, float]) -> list:
    """Return a stroke's unit-box points on the canvas as `hand` draws them."""
    turn = math.radians(hand.turn_degrees)
    cos, sin = math.cos(turn), math.sin(turn)
    placed = []
    for index, (x, y) in enumerate(stroke):
        wave = hand.phase + 0.7 * index
        x += hand.wobble * math.sin(wave)
        y += hand.wobble * math.cos(1.3 * wave)
        dx, dy = (x - 0.5 + hand.slant * (0.5 - y)) * hand.width, y - 0.5
        placed.append((centre[0] + box * (cos * dx - sin * dy), centre[1] + box * (sin * dx + cos * dy)))
    return placed


def _inside(strokes: list[list], margin: float) -> list[list]:
    """Return the strokes moved, and shrunk about their middle if need be, so that ink `margin` pixels wide around
    every point stays on the canvas (nobody draws past its edge)."""
    points = np.array([point for stroke in strokes for point in stroke])
    low, high = points.min(axis=0) - margin, points.max(axis=0) + margin
    shrink = min(1.0, CANVAS / float((high - low).max()))
    middle = (low + high) / 2
    fitted = middle + shrink * (points - middle)
    fitted_low, fitted_high = middle + shrink * (low - middle), middle + shrink * (high - middle)
    fitted += np.clip(-fitted_low, 0, None) - np.clip(fitted_high - CANVAS, 0, None)
    result, start = [], 0
    for stroke in strokes:
        result.append([tuple(point) for point in fitted[start : start + len(stroke)]])
        start += len(stroke)
    return result


def draw_canvas(label: int, hand: Hand) -> np.ndarray:
    """Return digit `label` drawn by `hand` on an RGBA canvas (280, 280, 4) uint8 like the Draw page's."""
    picture = Image.new("RGBA", (CANVAS, CANVAS), (0, 0, 0, 0))
    pen_draw = ImageDraw.Draw(picture)
    box = hand.size * CANVAS
    centre = (CANVAS / 2 + hand.offset[0] * CANVAS, CANVAS / 2 + hand.offset[1] * CANVAS)
    pen = hand.pen
    strokes = _inside([_placed(stroke, hand, box, centre) for stroke in STYLES[label][hand.style]], pen / 2)
    for points in strokes:
        pen_draw.line(points, fill=(255, 255, 255, 255), width=pen, joint="curve")
        for x, y in (points[0], points[-1]):  # round pen ends, as a real pen leaves
            pen_draw.ellipse((x - pen / 2, y - pen / 2, x + pen / 2, y + pen / 2), fill=(255, 255, 255, 255))
    return np.asarray(picture)


def drawn_digits(count: int = 500, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Return (images (count, 28, 28) in [0, 1] prepared as the Draw page prepares a drawing, labels (count,)):
    every digit equally often, each drawn by its own random hand (seeded)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 10
    images = [preprocess_canvas(draw_canvas(int(label), random_hand(int(label), rng))).image for label in labels]
    return np.stack(images).astype(np.float32), labels
