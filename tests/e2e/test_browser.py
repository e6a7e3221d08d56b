"""End-to-end tests in a real browser: every page, live training with reload and stop, drawing, compare, evaluate.

The tests run in file order on one server: pages with no runs first, then a run started from the Train page, then
two runs trained through the API for Draw, Compare, Evaluate and the pages with runs, and last the server log.
"""

from __future__ import annotations

import itertools
import math
import re
import shutil
import time

import pytest
from playwright.sync_api import Page, expect

from mnist_core import control, runs
from mnist_core.config import TrainConfig
from mnist_core.labels import short_name

from .streamlit_browser import APP_TIMEOUT, no_exception, open_page, plotly_traces, selectbox, wait_for_app, wait_until

TRAINING_TIMEOUT = 300.0  # seconds for the API runs (they may queue behind the Train page's run)
PAGES = ["/", "/Dataset", "/Train", "/Compare", "/Evaluate", "/Draw"]
TITLES = {
    "/": "MNIST studio",
    "/Dataset": "Dataset",
    "/Train": "Train",
    "/Compare": "Compare",
    "/Evaluate": "Evaluate",
    "/Draw": "Draw",
}
# What each page shows when there are no runs.
EMPTY_TEXT = {
    "/": "No runs yet. Train a model first",
    "/Dataset": "54,000 train images",
    "/Train": "No runs yet: choose an architecture or a preset",
    "/Compare": "No run has finished an epoch yet",
    "/Evaluate": "No trained models yet",
    "/Draw": "No trained models yet",
}
PROGRESS = re.compile(r"epoch (\d+)/\d+ · batch (\d+)/(\d+)")


def page_id(path: str) -> str:
    """Return a test id for a page path: 'Home' for '/', else the page name."""
    return path.strip("/") or "Home"


# ---------------------------------------------------------------- every page, before any run exists


@pytest.mark.parametrize("path", PAGES, ids=page_id)
def test_page_without_runs(page: Page, server, path):
    """Each page opens without an exception and says what to do when there are no runs yet."""
    assert not runs.list_runs(server.runs_dir), "this test needs the empty runs folder"
    open_page(page, server, path)
    expect(page.locator("h1").first).to_contain_text(TITLES[path])
    expect(page).to_have_title("MNIST studio" if path == "/" else f"{TITLES[path]} · MNIST studio")
    expect(page.get_by_text(EMPTY_TEXT[path]).first).to_be_visible()
    no_exception(page)


# ---------------------------------------------------------------- the Dataset page's gallery


def thumbnails(page: Page):
    """Return the Dataset gallery's thumbnails (buttons inside its component frame)."""
    return page.frame_locator('iframe[title*="mnist_thumbnails"]').locator("button")


def test_dataset_thumbnails_open_the_large_view_and_keep_their_order(page: Page, context, server, shoot):
    """A click on a thumbnail shows that digit large (the dropdown follows); the split stays chosen when clicked
    again; on a phone the gallery still reads left to right, row by row."""
    open_page(page, server, "/Dataset")
    tiles = thumbnails(page)
    expect(tiles).to_have_count(24)
    fifth = tiles.nth(4).get_attribute("title")  # "#index · label"
    index, label = (int(part) for part in re.fullmatch(r"#(\d+) · (\d)", fifth).groups())
    tiles.nth(4).click()
    wait_for_app(page)
    large = page.locator('[data-testid="stMetric"]').filter(has_text="Index in its file")
    expect(large.locator('[data-testid="stMetricValue"]')).to_have_text(f"{index:,}")
    shown_label = page.locator('[data-testid="stMetric"]').filter(has_text="Label")
    expect(shown_label.locator('[data-testid="stMetricValue"]')).to_have_text(str(label))
    expect(selectbox(page, "Digit on this page")).to_have_value(f"#{index} (label {label})")
    expect(tiles.nth(4)).to_have_attribute("aria-pressed", "true")
    expect(tiles.nth(0)).to_have_attribute("aria-pressed", "false")
    tiles.nth(4).click()  # the same one again: nothing changes, nothing breaks
    wait_for_app(page)
    expect(large.locator('[data-testid="stMetricValue"]')).to_have_text(f"{index:,}")

    train = page.locator('[data-testid="stButtonGroup"] button').filter(has_text="train")
    train.click()  # the split already shown: it stays selected
    wait_for_app(page)
    expect(train).to_have_attribute("aria-checked", "true")
    expect(page.get_by_text("54,000 train images")).to_be_visible()
    no_exception(page)

    phone = context.new_page()
    phone.set_viewport_size({"width": 390, "height": 844})
    open_page(phone, server, "/Dataset")
    phone_tiles = thumbnails(phone)
    expect(phone_tiles).to_have_count(24)
    boxes = [phone_tiles.nth(i).bounding_box() for i in range(24)]
    rows = [round(box["y"]) for box in boxes]
    assert rows == sorted(rows), f"thumbnails out of reading order: {rows}"
    per_row = rows.count(rows[0])
    assert 3 <= per_row <= 6, f"{per_row} thumbnails in a phone row"
    assert all(boxes[i]["x"] < boxes[i + 1]["x"] for i in range(per_row - 1))
    assert max(box["width"] for box in boxes) < 120, "a thumbnail is as wide as the phone"
    shoot(phone, "phone")
    phone.close()


# ---------------------------------------------------------------- training from the Train page


def set_number(page: Page, key: str, value: int) -> None:
    """Type `value` into the number input with widget key `key` and commit it."""
    box = page.locator(f".st-key-{key} input")
    box.fill(str(value))
    box.press("Enter")
    expect(box).to_have_value(str(value))


def batches_done(page: Page) -> int | None:
    """Return how many batches the progress bar says are done, over all epochs (None before the first)."""
    bar = page.locator('[data-testid="stProgress"]')
    if not bar.count():
        return None
    match = PROGRESS.search(bar.first.inner_text())
    if not match:
        return None
    epoch, batch, steps = (int(group) for group in match.groups())
    return (epoch - 1) * steps + batch


def batch_curve_points(page: Page) -> int:
    """Return how many points the running-curve chart shows (0 while it is not drawn)."""
    chart = page.locator(".st-key-train_batch_chart")
    if not chart.locator(".js-plotly-plot").count():
        return 0
    traces = plotly_traces(chart)
    return len(traces[0]["x"]) if traces else 0


def metric_value(page: Page, label: str) -> str:
    """Return the value text of the metric labelled `label`."""
    metric = page.locator('[data-testid="stMetric"]').filter(has_text=label)
    return metric.locator('[data-testid="stMetricValue"]').inner_text()


def seconds_of(text: str) -> int:
    """Return the seconds of a duration as the pages write it: '42 s', '3m 05s' or '1h 02m'."""
    match = re.fullmatch(r"(\d+) s|(\d+)m (\d+)s|(\d+)h (\d+)m", text.strip())
    assert match, f"not a duration: {text!r}"
    s, m, m_s, h, h_m = (int(group) if group else 0 for group in match.groups())
    return s + 60 * m + m_s + 3600 * h + 60 * h_m


def sees_progress(page: Page, what: str, timeout: float = 30.0) -> None:
    """Wait until the progress bar and the running-curve chart have both moved on from what they show now."""
    batches = wait_until(page, lambda: batches_done(page), timeout, f"the progress bar ({what})")
    points = wait_until(page, lambda: batch_curve_points(page), timeout, f"the running curve ({what})")
    wait_until(page, lambda: (batches_done(page) or 0) > batches, timeout, f"the batch count to grow ({what})")
    wait_until(page, lambda: batch_curve_points(page) > points, timeout, f"the running curve to gain points ({what})")


def test_train_live_reload_and_stop(page: Page, context, server, shoot):
    """Start a run from the page, watch it live, reload and still watch it, stop it from a second tab."""
    open_page(page, server, "/Train")
    page.locator(".st-key-train_start_from").get_by_text("Walkthrough architecture").click()
    page.locator(".st-key-train_architecture").click()
    page.get_by_role("option", name="Convolutional network", exact=True).click()
    expect(page.locator(".st-key-train_epochs_cnn input")).to_be_visible()
    set_number(page, "train_epochs_cnn", 2)
    set_number(page, "train_batch_cnn", 8)  # small batches: the run lasts about a minute, long enough to watch
    wait_for_app(page)
    page.evaluate("() => { window.e2eTab = 'first load'; }")  # gone if the page is ever reloaded
    page.locator(".st-key-train_start button").click()

    expect(page).to_have_url(re.compile(r"[?&]run=\d{8}-\d{6}-cnn-\w+"), timeout=60_000)
    run_id = re.search(r"run=([\w-]+)", page.url).group(1)
    heading = page.locator("h3").filter(has_text="Convolutional network")
    expect(heading).to_contain_text("running")
    expect(page.get_by_text("2 epochs · batch 8 · sgd lr 0.001")).to_be_visible()
    wait_until(page, lambda: batches_done(page), 90, "the first batch (TensorFlow starts in the worker)")
    sees_progress(page, "live, first look")
    sees_progress(page, "live, second look")

    # Time left is an estimate from the pace so far, not from the first batch (TensorFlow's start-up). The
    # page's pace: batches between two of its updates at least 8 s apart (it updates every second or two).
    def next_update(after: int) -> tuple[float, int]:
        done = wait_until(page, lambda: (batches_done(page) or 0) > after and batches_done(page), 30, "an update")
        return time.monotonic(), done

    first_time, first = update = next_update(batches_done(page))
    while update[0] - first_time < 8:
        update = next_update(update[1])
    pace = (update[0] - first_time) / (update[1] - first)
    left = seconds_of(metric_value(page, "Time left"))
    expected = (2 * 6750 - update[1]) * pace  # 54,000 / 8 = 6,750 batches an epoch
    assert expected / 3 < left < expected * 3, f"time left {left} s against {expected:.0f} s at the page's pace"
    assert page.evaluate("() => window.e2eTab") == "first load", "the page was reloaded while training"
    shoot(page, "live")

    page.reload()
    wait_for_app(page)
    assert run_id in page.url
    expect(selectbox(page, "Run")).to_have_value(re.compile(run_id))
    expect(heading).to_contain_text("running")
    sees_progress(page, "after the reload")
    page.evaluate("() => { window.e2eTab = 'reloaded'; }")

    second = context.new_page()
    open_page(second, server, "/Train")  # no ?run=: the page shows the active run
    expect(selectbox(second, "Run")).to_have_value(re.compile(run_id))
    second.locator(".st-key-train_stop button").click()
    expect(second.locator("h3").filter(has_text="Convolutional network")).to_contain_text("stopped", timeout=60_000)
    shoot(second, "second-tab")

    expect(heading).to_contain_text("stopped", timeout=60_000)
    expect(selectbox(page, "Run")).to_have_value(re.compile("stopped"))
    expect(page.locator(".st-key-train_stop")).to_have_count(0)
    assert page.evaluate("() => window.e2eTab") == "reloaded", "the first tab was reloaded to show the stop"
    assert runs.get_run(run_id, server.runs_dir).state == runs.STOPPED
    # Stopped part-way (in epoch 1, or in epoch 2 on a fast machine): the plan of 2 epochs is kept, the partial
    # epoch is said to be discarded, and more epochs add to the plan.
    done = len(runs.get_run(run_id, server.runs_dir).epochs)
    assert done < 2
    expect(page.locator('[data-testid="stMetric"]').filter(has_text="Epochs done")).to_contain_text(f"{done} / 2")
    caption = f"{done} of 2 epochs done"
    # A stop that lands between epochs (during validation and the checkpoint, checked before the next epoch's
    # first batch) leaves no partial epoch to speak of: the caption follows the run's own progress record.
    progress = runs.get_run(run_id, server.runs_dir).progress
    if progress and progress["epoch"] > done:
        caption += f" · epoch {done + 1} was stopped"
    else:
        expect(page.locator('[data-testid="stProgress"]')).not_to_contain_text("was stopped")
    expect(page.locator('[data-testid="stProgress"]')).to_contain_text(caption)
    expect(page.locator(".st-key-train_continue button")).to_have_text(re.compile("Continue to epoch 2$"))
    set_number(page, "train_more_epochs_True", 1)
    expect(page.locator(".st-key-train_continue button")).to_have_text(re.compile("Continue to epoch 3$"))
    no_exception(page)
    no_exception(second)


# ---------------------------------------------------------------- two runs trained through the API


@pytest.fixture(scope="session")
def finished_runs(server) -> tuple[runs.Run, runs.Run]:
    """Return two finished runs: fast_cnn 2 epochs on all 54,000 images (~98.5 %), and a CNN 2 epochs on 5,400."""
    quick = control.start_run(TrainConfig.for_architecture("fast_cnn", epochs=2), server.runs_dir)
    small = control.start_run(
        TrainConfig.for_architecture("cnn", epochs=2, optimizer="adam", train_subset=5400), server.runs_dir
    )
    for run in (quick, small):
        state = control.wait_for(run, timeout=TRAINING_TIMEOUT)
        assert state == runs.FINISHED, f"{run.run_id} ended {state}: {run.file('log.txt').read_text()}"
    return runs.read_run(quick.path), runs.read_run(small.path)


def ready_canvas(page: Page) -> dict:
    """Return the bounding box of the drawing canvas once its pen is live (Fabric shows a crosshair on hover)."""
    canvas = page.locator("canvas.upper-canvas")
    hovers = itertools.count()

    def ready():
        if canvas.count() != 1:
            return None
        box = canvas.bounding_box()
        if not box:
            return None
        page.mouse.move(box["x"] + 3 + next(hovers) % 3, box["y"] + 3)
        return box if canvas.evaluate("e => e.style.cursor") == "crosshair" else None

    return wait_until(page, ready, 30, "the drawing canvas to accept strokes")


def draw(page: Page, box: dict, points: list[tuple[float, float]], steps: int) -> None:
    """Draw one stroke through `points` (canvas pixels) with the mouse."""
    page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(box["x"] + x, box["y"] + y, steps=steps)
    page.mouse.up()


def shown_prediction(page: Page) -> tuple[str, list[float]]:
    """Return the 'Prediction' metric's value and the probability chart's ten bars, once they are shown."""
    metric = page.locator('[data-testid="stMetric"]').filter(has_text="Prediction")
    expect(metric).to_be_visible(timeout=60_000)  # the server loads TensorFlow and the model on the first digit
    expect(page.get_by_text("What the model sees")).to_be_visible()
    wait_for_app(page)
    bars = plotly_traces(page.locator(".st-key-draw_probabilities"))[0]["y"]
    return metric.locator('[data-testid="stMetricValue"]').inner_text().strip(), bars


def test_draw_one_clear_and_zero(page: Page, server, finished_runs, shoot):
    """A drawn '1' is shown as the model sees it (28x28) and predicted 1; Clear empties it; a drawn '0' is 0."""
    quick, _ = finished_runs
    open_page(page, server, f"/Draw?run={quick.run_id}")
    expect(selectbox(page, "Model")).to_have_value(re.compile(quick.run_id))
    blank = page.get_by_text("The canvas is blank")
    expect(blank).to_be_visible()

    draw(page, ready_canvas(page), [(140, 40), (140, 240)], steps=20)
    digit, probabilities = shown_prediction(page)
    assert digit == "1", f"a vertical stroke was predicted {digit}: {probabilities}"
    assert len(probabilities) == 10 and abs(sum(probabilities) - 1) < 1e-3
    assert max(range(10), key=lambda d: probabilities[d]) == 1
    for caption in ("1 · cropped to the ink", "2 · scaled into 20x20", "3 · centred by mass in 28x28"):
        expect(page.get_by_text(caption)).to_be_visible()
    sizes = page.locator('[data-testid="stImage"] img').evaluate_all(
        "images => images.map(i => [i.complete, i.naturalWidth, i.naturalHeight])"
    )
    assert len(sizes) == 3 and all(complete for complete, _, _ in sizes), sizes
    assert sizes[1][1:] == [28, 28] and sizes[2][1:] == [28, 28], f"the model's inputs are not 28x28: {sizes}"
    assert sizes[0][1] == sizes[0][2], f"the cropped '1' is not shown on a square tile: {sizes}"
    expect(blank).to_have_count(0)
    shoot(page, "one")

    page.locator(".st-key-draw_clear button:visible").click()
    expect(blank).to_be_visible()
    expect(page.locator('[data-testid="stMetric"]').filter(has_text="Prediction")).to_have_count(0)
    expect(page.locator('[data-testid="stImage"]')).to_have_count(0)

    centre_x, centre_y = 140, 140
    loop = [
        (centre_x + 60 * math.sin(2 * math.pi * i / 40), centre_y - 90 * math.cos(2 * math.pi * i / 40))
        for i in range(41)
    ]
    draw(page, ready_canvas(page), loop, steps=2)
    digit, probabilities = shown_prediction(page)
    assert len(probabilities) == 10 and abs(sum(probabilities) - 1) < 1e-3
    assert digit == "0", f"a drawn loop was predicted {digit}: {probabilities}"
    no_exception(page)


# ---------------------------------------------------------------- compare and evaluate


def test_compare_overlays_both_runs(page: Page, server, finished_runs):
    """Both finished runs are picked by default and their curves appear, named, in the loss and accuracy charts."""
    open_page(page, server, "/Compare")
    for key in ("compare_loss", "compare_accuracy"):
        chart = page.locator(f".st-key-{key}")
        expect(chart.locator(".legendtext").first).to_be_visible()
        legend = chart.locator(".legendtext").all_text_contents()
        traces = plotly_traces(chart)
        for run in finished_runs:
            name = short_name(run.run_id, run.config.architecture)
            assert name in legend, f"{name} missing from the {key} legend: {legend}"
            curve = next(t for t in traces if t["name"] == name)  # the validation curve carries the run's name
            assert curve["x"] == list(range(1, run.config.epochs + 1)), curve
    no_exception(page)


def test_evaluate_confusion_matrix_and_gallery(page: Page, server, finished_runs):
    """Evaluating a run shows its test accuracy, a confusion matrix of 10,000 digits and the misclassified ones."""
    quick, _ = finished_runs
    open_page(page, server, f"/Evaluate?run={quick.run_id}")
    expect(page.get_by_text("has not been scored on the 10,000 test images yet")).to_be_visible()
    page.locator(".st-key-evaluate_start button").click()
    expect(page.get_by_role("heading", name="Confusion matrix")).to_be_visible(timeout=120_000)
    wait_for_app(page)
    expect(page.get_by_text("has not been scored")).to_have_count(0)
    expect(page.locator(".st-key-evaluate_start")).to_have_count(0)

    accuracy = page.locator('[data-testid="stMetric"]').filter(has_text="Test accuracy")
    assert float(accuracy.locator('[data-testid="stMetricValue"]').inner_text().split()[0]) > 90
    matrix = plotly_traces(page.locator("[class*='st-key-evaluate_confusion_']"))[0]
    assert len(matrix["x"]) == 100 and sum(matrix["text"]) == 10_000, matrix
    wrong = page.locator('[data-testid="stMetric"]').filter(has_text="Misclassified")
    misclassified = int(wrong.locator('[data-testid="stMetricValue"]').inner_text().split()[0].replace(",", ""))
    assert misclassified == 10_000 - sum(matrix["text"][i] for i in range(100) if matrix["x"][i] == matrix["y"][i])

    expect(page.get_by_role("heading", name="Test digits of the chosen cell")).to_be_visible()
    gallery = thumbnails(page)  # clickable: a digit opens on the Inside page
    expect(gallery).to_have_count(min(misclassified, 60))
    wait_until(
        page,
        lambda: gallery.locator("img").evaluate_all("images => images.every(i => i.complete && i.naturalWidth)"),
        30,
        "the gallery's images to load",
    )
    expect(gallery.first).to_have_attribute("title", re.compile(r"^#\d+: \d → \d \(\d+%\)$"))

    # A click on a cell boxes it and fills both dropdowns; changing a dropdown moves the box; the same cell
    # clicked again registers again; other cells keep their look.
    def click_cell(true: int, predicted: int) -> None:
        cells = page.locator("[class*='st-key-evaluate_confusion_'] .scatterlayer .point")
        cells.nth(true * 10 + predicted).click(force=True)
        wait_for_app(page)

    def boxed() -> tuple[int, int] | None:
        chart = page.locator("[class*='st-key-evaluate_confusion_'] .js-plotly-plot").first
        shapes = chart.evaluate("g => ((g.layout && g.layout.shapes) || []).map(s => [s.y0 + 0.5, s.x0 + 0.5])")
        return (round(shapes[0][0]), round(shapes[0][1])) if shapes else None

    click_cell(9, 5)
    wait_until(page, lambda: boxed() == (9, 5), 30, "the clicked cell 9 → 5 to be boxed")
    expect(selectbox(page, "True digit")).to_have_value("9")
    expect(selectbox(page, "Predicted digit")).to_have_value("5")
    selectbox(page, "True digit").click()
    page.keyboard.type("3")
    page.keyboard.press("Enter")
    wait_for_app(page)
    expect(selectbox(page, "True digit")).to_have_value("3")
    wait_until(page, lambda: boxed() == (3, 5), 30, "the box to follow the dropdown to 3 → 5")
    click_cell(9, 5)
    wait_until(page, lambda: boxed() == (9, 5), 30, "a second click on 9 → 5 to register")
    opacities = page.locator("[class*='st-key-evaluate_confusion_'] .scatterlayer .point").evaluate_all(
        "points => points.map(p => getComputedStyle(p).opacity)"
    )
    assert set(opacities) == {"1"}, f"cells were greyed out after a click: {set(opacities)}"
    no_exception(page)


def test_inside_a_model_from_a_drawing_and_from_a_mistake(page: Page, server, finished_runs, shoot):
    """A '1' drawn on Draw opens on the Inside page: every layer, the filters, Grad-CAM and integrated gradients,
    and the embedding map with the nearest test digits; a mistake clicked on Evaluate opens there too."""
    quick, _ = finished_runs
    open_page(page, server, f"/Draw?run={quick.run_id}")
    draw(page, ready_canvas(page), [(140, 40), (140, 240)], steps=20)
    shown_prediction(page)
    page.get_by_role("link", name=re.compile("See inside the model")).click()
    wait_for_app(page)
    expect(page.locator("h1").first).to_contain_text("Inside")
    expect(selectbox(page, "Model")).to_have_value(re.compile(quick.run_id))
    expect(page.get_by_text("Predicted 1")).to_be_visible()
    expect(page.get_by_text("your drawing on the Draw page")).to_be_visible()
    layers = page.get_by_text(
        re.compile(r"^\d+\. .* · (Conv2D|BatchNormalization|ReLU|MaxPooling2D) · \d+ x \d+ x \d+$")
    )
    expect(layers.first).to_be_visible()
    assert layers.count() >= 9  # fast_cnn: three conv, batch-norm, ReLU and pooling blocks
    shoot(page, "layers")
    page.get_by_role("tab", name="First-layer filters").click()
    expect(page.get_by_text(re.compile("The 16 3x3 kernels the first convolution learned"))).to_be_visible()
    page.get_by_role("tab", name="Where it looks").click()
    expect(page.get_by_text("Grad-CAM for 1")).to_be_visible()
    expect(page.get_by_text("Integrated gradients for 1")).to_be_visible()
    shoot(page, "looks")
    page.get_by_role("tab", name="Where it lands").click()
    expect(page.locator(".st-key-inside_embedding .js-plotly-plot")).to_be_visible(timeout=60_000)
    traces = page.locator(".st-key-inside_embedding .js-plotly-plot").first.evaluate(
        "g => g._fullData.map(t => [t.name, (t.x || []).length])"
    )
    assert [name for name, _ in traces] == [str(d) for d in range(10)] + ["this input"]
    assert sum(count for name, count in traces[:10]) == 2000 and traces[10][1] == 1
    expect(page.get_by_text("The test digits most like yours")).to_be_visible()
    shoot(page, "lands")
    no_exception(page)

    open_page(page, server, f"/Evaluate?run={quick.run_id}")  # evaluated by the test above
    tile = thumbnails(page).first
    expect(tile).to_be_visible()
    index = int(re.match(r"#(\d+):", tile.get_attribute("title")).group(1))
    tile.click()
    wait_for_app(page)
    expect(page.locator("h1").first).to_contain_text("Inside")
    expect(page.get_by_text(f"test digit #{index:,}")).to_be_visible()
    no_exception(page)


def test_save_my_drawings_browse_them_delete_and_undo(page: Page, server, finished_runs, shoot):
    """Two drawings saved from the Draw page with one click each land in my drawings (PNG + labels.csv); the
    Dataset page shows them with their counts; one deleted comes back with Undo."""
    from mnist_core import drawings

    folder = server.runs_dir.parent / "drawings"
    quick, _ = finished_runs
    open_page(page, server, f"/Draw?run={quick.run_id}")
    for label, stroke in ((1, [(140, 40), (140, 240)]), (7, [(70, 50), (210, 50), (120, 240)])):
        page.locator(".st-key-draw_clear button:visible").click()
        wait_for_app(page)
        draw(page, ready_canvas(page), stroke, steps=20)
        shown_prediction(page)
        page.locator(f".st-key-draw_save_{label} button").dblclick()  # a double click saves it once
        expect(page.get_by_text(f"Saved as a {label}")).to_be_visible()
        wait_for_app(page)
    # The 7 again, under another label: refused, as is a stray dot (not offered at all).
    page.locator(".st-key-draw_save_4 button").click()
    expect(page.get_by_text("This drawing is already saved, as a 7")).to_be_visible()
    wait_for_app(page)
    page.locator(".st-key-draw_clear button:visible").click()
    wait_for_app(page)
    draw(page, ready_canvas(page), [(140, 140), (143, 142)], steps=2)
    expect(page.get_by_text("Only a drawing that looks like a digit can be saved")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Save this drawing as")).to_have_count(0)
    saved = drawings.load_drawings(folder)
    assert sorted(saved.labels.tolist()) == [1, 7] and saved.problems == ()
    assert all(image.max() > 200 for image in saved.images)  # the ink as the model saw it

    open_page(page, server, "/Dataset")
    page.locator('[data-testid="stButtonGroup"] button').filter(has_text="my drawings").click()
    wait_for_app(page)
    expect(page.get_by_text("2 drawings of yours")).to_be_visible()
    tiles = thumbnails(page)
    expect(tiles).to_have_count(2)
    tiles.nth(0).click()
    wait_for_app(page)
    page.get_by_role("button", name="Delete this drawing").click()
    wait_for_app(page)
    expect(page.get_by_text("1 drawing of yours")).to_be_visible()
    expect(page.get_by_text(f"The {saved.labels[0]} you deleted is in the trash.")).to_be_visible()
    assert len(drawings.load_drawings(folder)) == 1
    shoot(page, "deleted")
    page.get_by_role("button", name="Undo").click()
    wait_for_app(page)
    expect(page.get_by_text("2 drawings of yours")).to_be_visible()
    assert sorted(drawings.load_drawings(folder).names) == sorted(saved.names)
    no_exception(page)


def test_teach_a_run_my_handwriting_and_see_before_and_after(page: Page, server, finished_runs, shoot):
    """On the Train page, a copy of the quick run is continued for one epoch with my drawings mixed in: the split
    and the drawings' share of an epoch show before the click, the held-out accuracy before and after once it
    has trained. The Robust preset's augmentation preview shows under More settings."""
    from mnist_core import drawings, teaching
    from mnist_core.synthetic import drawn_digits

    folder = server.runs_dir.parent / "drawings"
    images, labels = drawn_digits(30, seed=7)
    for image, label in zip(images, labels, strict=True):
        drawings.save_drawing(image, int(label), root=folder)
    train, held_out = teaching.split(drawings.load_drawings(folder)).counts
    quick, _ = finished_runs
    copy_id = quick.run_id[:-4] + "7eac"
    shutil.copytree(quick.path, server.runs_dir / copy_id)
    open_page(page, server, f"/Train?run={copy_id}")
    page.get_by_text("Teach it your handwriting").click()
    expect(page.get_by_text(f"{train} to train on, {held_out} held out")).to_be_visible()
    epochs = page.get_by_label("Epochs to teach", exact=True)
    epochs.fill("1")
    epochs.press("Enter")
    wait_for_app(page)
    expect(page.get_by_text(re.compile(r"seen \d+ times? an epoch"))).to_be_visible()
    shoot(page, "before")
    page.get_by_role("button", name="Continue with my drawings").click()
    # The copy was finished already: wait for the click to have queued it before waiting for it to finish. The
    # config (the commit point) is written a moment before the status leaves "finished", so wait for the status.
    run = wait_until(
        page,
        lambda: (
            (found := runs.read_run(server.runs_dir / copy_id)).status.get("continued_at_epoch") is not None
            and found.config.drawings_repeat
            and found
        ),
        30,
        "the run to be queued with my drawings",
    )
    assert control.wait_for(run, timeout=TRAINING_TIMEOUT) == runs.FINISHED
    record = runs.get_run(copy_id, server.runs_dir).handwriting
    after = f"{100 * record['after'][-1]['accuracy']:.1f} % after epoch 3"
    expect(page.get_by_text(re.compile(re.escape(after)))).to_be_visible(timeout=20_000)
    expect(page.get_by_text(f"{100 * record['before']:.1f} % before", exact=False)).to_be_visible()
    shoot(page, "after")

    open_page(page, server, "/Train")
    page.get_by_text("Robust to drawings", exact=True).click()
    expect(page.get_by_text("Robust to drawings (augmented CNN)", exact=False)).to_be_visible()  # the switch drawn
    wait_for_app(page)
    page.locator("summary").filter(has_text="More settings").click()
    expect(page.get_by_text("ways training might see it this epoch (drawn)")).to_be_visible()
    preview = page.locator('[data-testid="stImage"] img').first
    expect(preview).to_be_visible()
    shoot(page, "preview")
    no_exception(page)


# ---------------------------------------------------------------- phone layout of the charts

# Every chart's toolbar box (shown on hover) and every title or subplot title box, in page pixels.
CHART_BOXES_JS = """chart => {
  const box = (e) => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
  const bar = chart.querySelector('.modebar');
  const titles = [...chart.querySelectorAll('.gtitle, .gtitle-subtitle, .annotation-text')]
    .filter(t => t.textContent.trim());
  return {chart: box(chart), bar: bar ? box(bar) : null, titles: titles.map(t => [t.textContent, box(t)])};
}"""


@pytest.mark.parametrize("path", ["/Train", "/Compare", "/Dataset"], ids=page_id)
def test_phone_chart_toolbars_leave_titles_readable(context, server, finished_runs, path, shoot):
    """On a 390 px phone, Plotly's toolbar (shown on a tap) covers no chart title, and every title fits."""
    quick, _ = finished_runs
    phone = context.new_page()
    phone.set_viewport_size({"width": 390, "height": 844})
    open_page(phone, server, f"{path}?run={quick.run_id}" if path == "/Train" else path)
    charts = phone.locator(".js-plotly-plot")
    wait_until(phone, lambda: charts.count() >= 2, 30, "the charts")
    checked = 0
    for i in range(charts.count()):
        chart = charts.nth(i)
        chart.scroll_into_view_if_needed()
        chart.hover(position={"x": 20, "y": 20})
        boxes = chart.evaluate(CHART_BOXES_JS)
        if not boxes["bar"] or not boxes["titles"]:
            continue
        left, top, right, bottom = boxes["bar"]
        for text, (t_left, t_top, t_right, t_bottom) in boxes["titles"]:
            assert boxes["chart"][0] - 1 <= t_left and t_right <= boxes["chart"][2] + 1, f"{path}: {text!r} is cut off"
            overlap = min(right, t_right) > max(left, t_left) and min(bottom, t_bottom) > max(top, t_top)
            assert not overlap, f"{path}: the toolbar {boxes['bar']} covers the title {text!r} {[t_left, t_top]}"
        checked += 1
    assert checked, f"{path}: no chart with a title and a toolbar to check"
    shoot(phone, page_id(path))
    no_exception(phone)
    phone.close()


# ---------------------------------------------------------------- every page again, with runs


def with_runs_check(page: Page, path: str, finished_runs) -> None:
    """Check the part of a page that only shows once there are runs."""
    if path == "/":
        expect(page.locator('[data-testid="stDataFrame"]')).to_be_visible()
        finished = page.locator('[data-testid="stMetric"]').filter(has_text="finished")
        assert int(finished.locator('[data-testid="stMetricValue"]').inner_text()) >= len(finished_runs)
    elif path == "/Dataset":
        expect(thumbnails(page)).to_have_count(24)
    elif path == "/Train":
        expect(selectbox(page, "Run")).to_be_visible()
        expect(page.locator(".st-key-train_accuracy_chart .js-plotly-plot")).to_be_visible()
    elif path == "/Compare":
        expect(page.locator(".st-key-compare_accuracy .js-plotly-plot")).to_be_visible()
    elif path == "/Evaluate":
        expect(
            selectbox(page, "Run (its best model by validation accuracy; without validation, its last)")
        ).to_be_visible()
    elif path == "/Draw":
        expect(page.locator("canvas.upper-canvas")).to_be_visible()


@pytest.mark.parametrize("path", PAGES, ids=page_id)
def test_page_with_runs(page: Page, server, finished_runs, path):
    """Each page opens without an exception once there are finished runs, and shows them."""
    open_page(page, server, path)
    expect(page.locator("h1").first).to_contain_text(TITLES[path])
    with_runs_check(page, path, finished_runs)
    no_exception(page)


def test_download_the_model_and_the_run_from_the_train_page(page: Page, server, finished_runs, tmp_path):
    """The downloaded .keras loads on its own (safe mode) and predicts as the run's model does; the zip holds
    the run's plain files."""
    import zipfile

    import keras
    import numpy as np

    from mnist_core.data import load_mnist, to_model_input
    from mnist_core.models import run_predictor

    quick, _ = finished_runs
    open_page(page, server, f"/Train?run={quick.run_id}")
    with page.expect_download() as model_download:
        page.get_by_role("button", name="Model (.keras)").click()
    model_path = tmp_path / model_download.value.suggested_filename
    model_download.value.save_as(model_path)
    assert model_path.name == f"{quick.run_id}-best.keras"
    images = to_model_input(load_mnist().x_test[:100])
    alone = keras.models.load_model(model_path, safe_mode=True, compile=False)
    expected = run_predictor(runs.get_run(quick.run_id, server.runs_dir)).probabilities(images)
    np.testing.assert_allclose(alone.predict(images, verbose=0), expected, atol=1e-6)
    with page.expect_download() as zip_download:
        page.get_by_role("button", name="Run (.zip)").click()
    zip_path = tmp_path / "run.zip"
    zip_download.value.save_as(zip_path)
    names = set(zipfile.ZipFile(zip_path).namelist())
    assert {f"{quick.run_id}/{name}" for name in ("config.json", "epochs.csv", "batches.jsonl", "best.keras")} <= names
    no_exception(page)


def test_label_then_delete_a_run_from_the_train_page_and_undo(page: Page, server, finished_runs, shoot):
    """A name and tags given on the page show in the picker; Delete asks first, moves the run to the trash (gone
    from every list), and Undo brings it back whole."""
    quick, _ = finished_runs
    copy_id = quick.run_id[:-4] + "dead"  # a copy of a finished run, so the other tests keep theirs
    shutil.copytree(quick.path, server.runs_dir / copy_id)
    open_page(page, server, f"/Train?run={copy_id}")
    expect(selectbox(page, "Run")).to_have_value(re.compile(copy_id))
    # A name and tags, from the page: shown in the picker and the table, stored in the run.
    page.get_by_role("button", name="Name, note, tags").click()
    page.locator(f".st-key-train_run_name_{copy_id} input").fill("quick copy")  # the Train page has two "Name"s
    page.get_by_label("Tags", exact=True).fill("demo keep")
    page.locator(".st-key-train_run_label_save button").click()
    wait_for_app(page)
    expect(selectbox(page, "Run")).to_have_value(re.compile(r"quick copy \(dead\) #demo #keep"))
    expect(page.locator('[data-testid="stDataFrame"]')).to_be_visible()
    assert runs.get_run(copy_id, server.runs_dir).labels == {"name": "quick copy", "tags": ["demo", "keep"]}
    page.keyboard.press("Escape")
    folder = server.runs_dir / copy_id
    before = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*.*")}
    page.get_by_role("button", name="Delete run").click()
    expect(page.get_by_text(f"Moves {copy_id} to the trash")).to_be_visible()
    page.locator(".st-key-train_run_delete button").click()
    wait_for_app(page)
    expect(page.get_by_text(f"Run {copy_id} is in the trash.")).to_be_visible()
    assert not (server.runs_dir / copy_id).exists()
    assert copy_id not in [run.run_id for run in runs.list_runs(server.runs_dir)]
    expect(page.locator('[data-testid="stDataFrame"]')).not_to_contain_text(copy_id)
    shoot(page, "deleted")
    page.locator(".st-key-train_run_undo button").click()
    wait_for_app(page)
    expect(page.get_by_text("is in the trash")).to_have_count(0)
    expect(selectbox(page, "Run")).to_have_value(re.compile("quick copy"))  # back, with its name
    after = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*.*")}
    assert after == before, "the run came back changed"
    no_exception(page)
    control.delete_run(copy_id, server.runs_dir)


def test_import_a_model_through_the_file_chooser(page: Page, server, finished_runs, tmp_path, shoot):
    """A model file chosen in the browser's file chooser: a Lambda model is refused in one line (its code never
    runs), a plain one becomes an imported run, opened at once and one click from Evaluate."""
    import keras

    marker = tmp_path / "marker"
    inner = keras.layers.Lambda(eval(f"lambda x: (open({str(marker)!r}, 'w').write('ran'), x)[1]"))
    lambda_model = keras.Sequential([keras.Input((28, 28, 1)), inner, keras.layers.Flatten(), keras.layers.Dense(10)])
    lambda_model.save(tmp_path / "sneaky.keras")
    plain = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(10, "softmax")])
    plain.save(tmp_path / "notebook_mlp.keras")
    marker.unlink(missing_ok=True)
    before = {run.run_id for run in runs.list_runs(server.runs_dir)}

    open_page(page, server, "/Train")
    page.get_by_text("Bring in a model trained elsewhere").click()
    uploader = page.locator(".st-key-train_import_file_0")
    for name in ("sneaky.keras", "notebook_mlp.keras"):
        if name == "notebook_mlp.keras":  # remove the refused file, then choose the next one
            uploader.get_by_role("button", name="Remove sneaky.keras").click()
        with page.expect_file_chooser() as chooser:
            uploader.get_by_role("button", name=re.compile("Browse files|Upload")).click()
        chooser.value.set_files(tmp_path / name)
        expect(uploader).to_contain_text(name)
        if name == "notebook_mlp.keras":
            page.locator(".st-key-train_import_name_0 input").fill("notebook MLP")
        page.locator(".st-key-train_import_button button").click()
        wait_for_app(page)
        if name == "sneaky.keras":
            expect(page.get_by_text("Cannot import sneaky.keras: has a Lambda layer")).to_be_visible()
            shoot(page, "refused")
            assert {run.run_id for run in runs.list_runs(server.runs_dir)} == before and not marker.exists()
    expect(selectbox(page, "Run")).to_have_value(re.compile(r"notebook MLP .* · imported · Imported model"))
    expect(page.get_by_text("From notebook_mlp.keras (keras model) · 7,850 parameters")).to_be_visible()
    expect(page.locator(".st-key-train_import_file_1")).not_to_contain_text("notebook_mlp.keras")  # emptied
    expect(page.locator(".st-key-train_import_button button")).to_be_disabled()
    (new_run,) = [run for run in runs.list_runs(server.runs_dir) if run.run_id not in before]
    assert (new_run.state, new_run.name, new_run.imported["input_shape"]) == (runs.IMPORTED, "notebook MLP", [28, 28])
    assert not marker.exists()
    shoot(page, "imported")
    page.get_by_role("link", name="Evaluate it").click()
    wait_for_app(page)
    expect(selectbox(page, "Run (its best model by validation accuracy; without validation, its last)")).to_have_value(
        re.compile("notebook MLP")
    )
    no_exception(page)
    control.delete_run(new_run.run_id, server.runs_dir)


def test_start_a_sweep_from_the_page_and_watch_it_fill_in(page: Page, server, finished_runs, shoot):
    """A tiny sweep started on the Sweep page: the trials table fills in live, the best trial is starred with
    links to its run, and the parallel-coordinates chart draws one line per complete trial."""
    from mnist_core import sweeps

    open_page(page, server, "/Sweep")
    expect(page.get_by_text("No sweeps yet")).to_be_visible()
    page.locator(".st-key-sweep_new_name input").fill("browser")
    set_number(page, "sweep_new_trials", 4)
    set_number(page, "sweep_new_epochs", 1)
    page.get_by_text("More settings").click()
    set_number(page, "sweep_new_subset", 600)
    page.locator(".st-key-sweep_start button").click()
    wait_for_app(page)
    # Starting imports Optuna and makes the SQLite schema in the server: seconds on a busy machine (CI once took
    # longer than the default 5 s), so wait as long as any page run may take.
    expect(page.get_by_text("browser · mlp")).to_be_visible(timeout=APP_TIMEOUT)
    table = page.locator('[data-testid="stDataFrame"]').first
    expect(table).to_contain_text("complete", timeout=120_000)  # live: the first trial lands without a reload
    expect(page.get_by_text("4 of 4 trials done · finished")).to_be_visible(timeout=300_000)
    wait_for_app(page)
    study, _ = sweeps.load("browser", root=server.runs_dir)
    best = sweeps.best_trial(study)
    expect(page.get_by_text(f"Best: trial {best.number}")).to_be_visible()
    page.get_by_role("tab", name="Parallel coordinates").click()
    chart = page.locator(".st-key-sweep_parallel")
    expect(chart.locator(".js-plotly-plot")).to_be_visible()
    # Optuna 5 draws the axes with scatter traces: one line per complete trial across the searched settings.
    modes = chart.locator(".js-plotly-plot").first.evaluate("g => g._fullData.map(t => t.mode)")
    complete = [trial for trial in study.trials if trial.state.name == "COMPLETE"]
    assert modes.count("lines") == len(complete) >= 2
    shoot(page, "parallel")
    page.get_by_role("tab", name="Curves").click()
    shoot(page, "curves")
    page.get_by_role("link", name="Open on Evaluate").click()
    wait_for_app(page)
    expect(selectbox(page, "Run (its best model by validation accuracy; without validation, its last)")).to_have_value(
        re.compile(f"browser #{best.number}")
    )
    no_exception(page)


# ---------------------------------------------------------------- last: the server's own output


def test_server_log_is_clean(server):
    """After everything above, the server stops cleanly and its log has no traceback, error or warning."""
    code = server.stop()
    server.log_checked = True
    log = server.log()
    assert "You can now view your Streamlit app" in log, f"the server log was not captured:\n{log}"
    assert not server.log_problems(), f"{server.log_path} reports problems:\n{log}"
    assert code == 0, f"streamlit exited with code {code}"
