"""A drawn digit made MNIST-like (crop, fit 20x20, centre by mass in 28x28) and measured against MNIST's own digits
(too little ink, too small, flat, a blot, scattered pieces): numpy and PIL only, no model."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from mnist_core.settings import IMAGE_SIZE

INK_THRESHOLD = 0.1  # grey level (0-1) above which a canvas pixel counts as ink
MIN_INK_PIXELS = 4  # fewer inked pixels than this is a blank canvas (or a stray click)
FIT_SIZE = 20  # MNIST scaled each digit to fit a 20x20 box...
CENTRE = (IMAGE_SIZE - 1) / 2  # ...then moved its centre of mass to the middle of the 28x28 field

# What a drawing must measure to be read as a digit. The limits come from MNIST's 10,000 test digits put through
# preprocess_canvas (tests/test_predict.py measures them all; 99.9 % pass every check):
# - ink share (ink pixels / image): 5.1 % at the least, 9-26 % for nine in ten (5th-95th percentile). The canvas pen
#   (18 px on 280) is thinner than MNIST's (about 2.5 px on 28), so a drawn digit covers roughly half as much: a
#   drawn "1" covers about 5 %, a dot 0.3 %, a short dash 1-2 %.
MIN_INK_SHARE = 0.025
USUAL_INK_SHARE = (0.10, 0.25)
# - extent (the longer side of the ink's bounding box / the image's side): MNIST's digits were scaled to 20 of 28
#   pixels, so 68-71 %; a drawing smaller than 30 % of the canvas becomes a thick blot once scaled up.
MIN_EXTENT = 0.30
USUAL_EXTENT = 0.70
# - height / width of the bounding box: 0.5 at the least (a wide 2 or 7); a dash lying flat is far below.
MIN_HEIGHT_TO_WIDTH = 0.3
# - ink share of the 28x28 image the model sees: 38 % at the most; a scribbled-over patch fills more (a filled
#   square 51 %, a filled disc 40 %: a dot is caught by the ink share and the extent).
MAX_FITTED_INK_SHARE = 0.42
# - pieces (8-connected groups of ink in the 28x28 image): one for 97 %, three at the most for 99.9 %.
MAX_PIECES = 3
NOT_A_DIGIT = "This does not look like a digit"


@dataclass(frozen=True)
class Measures:
    """How a drawing compares with MNIST's digits: shares are fractions (0-1), measured after preprocessing."""

    ink_share: float  # inked pixels / pixels of the drawn image (canvas or 28x28 test digit)
    extent: float  # longer side of the ink's bounding box / the image's side
    height_to_width: float  # the ink's bounding box, height / width
    fitted_ink_share: float  # inked pixels / 784 in the 28x28 image the model sees
    pieces: int  # 8-connected groups of ink in the 28x28 image

    def problems(self) -> list[str]:
        """Return what makes the drawing unlike a digit, each with what was measured (empty when nothing)."""
        problems = []
        low, high = USUAL_INK_SHARE
        if self.ink_share < MIN_INK_SHARE:
            problems.append(
                f"only {100 * self.ink_share:.1f} % of the image is ink, where an MNIST digit covers "
                f"{100 * low:.0f}-{100 * high:.0f} % of its image (one drawn here at least "
                f"{100 * MIN_INK_SHARE:.1f} %)"
            )
        if self.extent < MIN_EXTENT:
            problems.append(
                f"it spans only {100 * self.extent:.0f} % of the canvas; a digit spans about "
                f"{100 * USUAL_EXTENT:.0f} %: draw it larger"
            )
        if self.height_to_width < MIN_HEIGHT_TO_WIDTH:
            problems.append(
                f"it is {1 / self.height_to_width:.0f} times as wide as tall; digits are at most twice as wide"
            )
        if self.fitted_ink_share > MAX_FITTED_INK_SHARE:
            problems.append(
                f"scaled to the model's 28x28 image the ink fills {100 * self.fitted_ink_share:.0f} % of it; "
                f"digits fill at most {100 * MAX_FITTED_INK_SHARE:.0f} %: it looks like a blot"
            )
        if self.pieces > MAX_PIECES:
            problems.append(f"it is {self.pieces} separate pieces; a digit is one, at most {MAX_PIECES}")
        return problems


@dataclass
class Preprocessed:
    """A drawn digit ready for a model: `image` (28, 28) float32 in [0, 1], or blank (image None)."""

    blank: bool
    image: np.ndarray | None
    steps: dict[str, np.ndarray] = field(default_factory=dict)
    measures: Measures | None = None
    source: str = "canvas"  # or "sample": a test digit shown while the canvas is blank

    @property
    def warning(self) -> str | None:
        """Return why the drawing does not look like a digit, with what was measured; None when it does."""
        problems = self.measures.problems() if self.measures else []
        if not problems:
            return None
        return f"{NOT_A_DIGIT}: {'; '.join(problems)}. The answer below means little; draw one digit, large."


def to_grayscale(canvas: np.ndarray) -> np.ndarray:
    """Return ink intensity (H, W) float32 in [0, 1] from an RGBA, RGB or grey canvas array."""
    array = np.asarray(canvas, dtype=np.float32)
    if array.ndim == 2:
        grey = array
    elif array.ndim == 3 and array.shape[2] in (3, 4):
        grey = array[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        if array.shape[2] == 4:
            # A transparent background is no ink, whatever colour it nominally has.
            grey = grey * (array[..., 3] / 255.0)
    else:
        raise ValueError(f"canvas must be (H, W), (H, W, 3) or (H, W, 4), got shape {array.shape}")
    return np.clip(grey / 255.0, 0.0, 1.0).astype(np.float32)


def center_of_mass(image: np.ndarray) -> tuple[float, float]:
    """Return the (row, column) centre of mass of a non-negative image."""
    total = float(image.sum())
    rows, cols = np.indices(image.shape)
    return float((rows * image).sum() / total), float((cols * image).sum() / total)


def _fit_box(cropped: np.ndarray) -> np.ndarray:
    """Return `cropped` resized (area-averaged) so its longer side is 20 pixels, aspect ratio kept."""
    from PIL import Image

    height, width = cropped.shape
    scale = FIT_SIZE / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    picture = Image.fromarray(np.round(cropped * 255).astype(np.uint8))
    resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    return np.asarray(picture.resize(size, resample), dtype=np.float32) / 255.0


def preprocess_canvas(canvas: np.ndarray) -> Preprocessed:
    """Return the canvas as a 28x28 MNIST-like image, with each intermediate step kept for display."""
    grey = to_grayscale(canvas)
    ink = grey > INK_THRESHOLD
    if int(ink.sum()) < MIN_INK_PIXELS:
        return Preprocessed(blank=True, image=None, steps={"grayscale": grey})
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    cropped = grey[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    fitted = _fit_box(cropped)
    # Paste in a large field, then cut the 28x28 window whose centre is the centre of mass.
    field_size = 3 * IMAGE_SIZE
    big = np.zeros((field_size, field_size), dtype=np.float32)
    top, left = (field_size - fitted.shape[0]) // 2, (field_size - fitted.shape[1]) // 2
    big[top : top + fitted.shape[0], left : left + fitted.shape[1]] = fitted
    com_row, com_col = center_of_mass(big)
    start_row, start_col = round(com_row - CENTRE), round(com_col - CENTRE)
    image = big[start_row : start_row + IMAGE_SIZE, start_col : start_col + IMAGE_SIZE].copy()
    boxed = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    box_top, box_left = (IMAGE_SIZE - fitted.shape[0]) // 2, (IMAGE_SIZE - fitted.shape[1]) // 2
    boxed[box_top : box_top + fitted.shape[0], box_left : box_left + fitted.shape[1]] = fitted
    return Preprocessed(
        blank=False,
        image=image,
        steps={"grayscale": grey, "cropped": cropped, "fitted_20x20": boxed, "centred_28x28": image},
        measures=measure(ink, cropped.shape, image),
    )


def measure(ink: np.ndarray, box: tuple[int, int], image: np.ndarray) -> Measures:
    """Return the Measures of a drawing: `ink` its inked pixels (H, W), `box` the (height, width) of their bounding
    box, `image` the 28x28 image made of it."""
    from scipy import ndimage  # scikit-learn's dependency; labelling a 28x28 image takes microseconds

    fitted_ink = image > INK_THRESHOLD
    _, pieces = ndimage.label(fitted_ink, structure=np.ones((3, 3), dtype=bool))
    height, width = box
    return Measures(
        ink_share=float(ink.mean()),
        extent=max(height / ink.shape[0], width / ink.shape[1]),
        height_to_width=height / width,
        fitted_ink_share=float(fitted_ink.mean()),
        pieces=int(pieces),
    )


def drawing_or_sample(canvas: np.ndarray | None, sample: np.ndarray | None = None) -> Preprocessed:
    """Return what the Draw page predicts: the canvas preprocessed, or, while it is blank (or None, not drawn on
    yet) and there is one, the test digit `sample` preprocessed (source "sample")."""
    prepared = preprocess_canvas(canvas) if canvas is not None else None
    if (prepared is None or prepared.blank) and sample is not None:
        return dataclasses.replace(preprocess_canvas(sample), source="sample")
    if prepared is None:
        return Preprocessed(blank=True, image=None)
    return prepared


def squared(image: np.ndarray) -> np.ndarray:
    """Return `image` (H, W) centred on a black square (S, S), S = max(H, W), for display at one size."""
    height, width = image.shape
    side = max(height, width)
    top, left = (side - height) // 2, (side - width) // 2
    return np.pad(image, ((top, side - height - top), (left, side - width - left)))


def random_index(count: int) -> int:
    """Return a random position in [0, count)."""
    return int(np.random.default_rng().integers(count))
