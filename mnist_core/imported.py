"""Bringing in a model trained elsewhere: a .keras model, or a weights file of one of the architectures, becomes
a run in state `imported` (no curves), or is refused with a one-line reason and leaves nothing behind.

Nothing in the file is trusted. Its kind is told by its first bytes, not its name; a .keras model's config is
read as plain JSON and refused if it names a Lambda layer or an object from outside Keras before Keras sees
it, and Keras then loads it with safe_mode=True. The file is staged inside a hidden folder of the runs folder
under a name of ours, and the run folder is renamed into place only once every check has passed.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
import time
import zipfile
import zlib
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path

import numpy as np

from mnist_core import runfiles, storage
from mnist_core.access import Actor
from mnist_core.architectures import ARCHITECTURES, build_model
from mnist_core.control import NAME_LIMIT, locked, now_iso, storage_error
from mnist_core.runs import IMPORTED, Run, RunError, owned_count, read_run, resolve_root
from mnist_core.settings import IMAGE_SIZE, MAX_IMPORT_BYTES, NUM_CLASSES, max_imports_per_owner
from mnist_core.tfimport import import_keras

ZIP_MAGIC = b"PK\x03\x04"  # a .keras file is a zip: config.json, metadata.json, model.weights.h5
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"  # a weights file, or a legacy .h5 full model
KERAS_MEMBERS = ("config.json", "model.weights.h5")
UNPACKED_LIMIT = 4 * MAX_IMPORT_BYTES  # a zip that unpacks to more than this is refused unread (a zip bomb)
CONFIG_LIMIT = 4 * 2**20  # config.json is a few kilobytes; megabytes of it are not a model of ours
# What the studio feeds every model: (N, 28, 28, 1). A (28, 28) model (the walkthrough's MLP) gets a Reshape.
STUDIO_INPUT = (IMAGE_SIZE, IMAGE_SIZE, 1)
ACCEPTED_INPUTS = (STUDIO_INPUT, (IMAGE_SIZE, IMAGE_SIZE))
STALE_STAGING_SECONDS = 3600  # a staging folder this old was left by a killed import: the next one removes it
# The largest layer a digit model needs is far below these (the widest here: 512 units, 128 filters, 5x5 kernels).
LAYER_LIMITS = {"units": 8192, "filters": 2048, "kernel_size": 15}
# The modules whose functions a config may name (an activation, a loss, a metric); any other function, such as
# one that builds a TFSMLayer from a SavedModel, is refused before Keras sees it.
SAFE_FUNCTION_MODULES = ("keras.activations", "keras.losses", "keras.metrics", "keras.src.activations.activations")
PROBABILITY_TOLERANCE = 1e-3  # how far a row of outputs may sum from 1 and still be probabilities
STAGED_KERAS = "incoming.keras"  # the names a staged file gets (Keras tells formats by the file's ending)
STAGED_WEIGHTS = "incoming.weights.h5"  # Keras 3's weights format
STAGED_LEGACY_WEIGHTS = "incoming.h5"  # tf.keras 2's (model.save_weights("x.h5")): attribute layer_names


class ImportRefused(RunError):
    """The file is not a model the studio can take; the message is 'cannot import FILE: the reason'."""


@contextmanager
def _refusals_name(source: str):
    """Let ImportRefused raised inside say which file could not be imported."""
    try:
        yield
    except ImportRefused as error:
        raise ImportRefused(f"cannot import {source}: {error}") from error.__cause__


def import_file(
    path: Path | str,
    name: str | None = None,
    architecture: str | None = None,
    root: Path | str | None = None,
    actor: Actor | None = None,
) -> Run:
    """Return the new imported run made from the model or weights file at `path` (ImportRefused with the
    reason when it cannot be taken; StorageError when the disk refuses)."""
    path = Path(path)
    with _refusals_name(path.name), staging_folder(resolve_root(root)) as staging:
        try:
            _check_size(path.stat().st_size)
        except OSError as error:
            raise ImportRefused(f"it cannot be read ({error.strerror})") from error
        with open(path, "rb") as handle:
            head = handle.read(len(HDF5_MAGIC))
        staged = staging / _staged_name(head)
        try:
            shutil.copyfile(path, staged)
        except OSError as error:  # named by the reason alone: the file named in it would be the one read
            raise storage_error(OSError(error.errno, error.strerror), f"import {path.name}") from error
        return _finish(staging, staged, path.name, name, architecture, actor)


def import_bytes(
    data: bytes,
    file_name: str,
    name: str | None = None,
    architecture: str | None = None,
    root: Path | str | None = None,
    actor: Actor | None = None,
) -> Run:
    """Return the new imported run made from an uploaded file's bytes; `file_name` is only shown, never a path."""
    shown = _display_name(file_name)
    with _refusals_name(shown), staging_folder(resolve_root(root)) as staging:
        _check_size(len(data))
        staged = staging / _staged_name(data[: len(HDF5_MAGIC)])
        try:
            staged.write_bytes(data)
        except OSError as error:
            raise storage_error(error, f"import {shown}") from error
        return _finish(staging, staged, shown, name, architecture, actor)


def _check_size(size: int) -> None:
    """Raise ImportRefused for an empty file or one over MAX_IMPORT_BYTES."""
    if size == 0:
        raise ImportRefused("the file is empty")
    if size > MAX_IMPORT_BYTES:
        raise ImportRefused(f"the file is {size / 2**20:.1f} MB, over the {MAX_IMPORT_BYTES / 2**20:.0f} MB limit")


def _display_name(file_name: str) -> str:
    """Return an uploaded file's name as text to show: its last part, one line, at most NAME_LIMIT characters."""
    last = str(file_name).replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(ch for ch in " ".join(last.split()) if ch.isprintable())[:NAME_LIMIT] or "upload"


def _staged_name(head: bytes) -> str:
    """Return the name to stage a file under, told by its first bytes; ImportRefused when it is no model file."""
    if head.startswith(ZIP_MAGIC):
        return STAGED_KERAS
    if head.startswith(HDF5_MAGIC):
        return STAGED_WEIGHTS  # which of the two weights formats is told by its contents (_load_weights)
    raise ImportRefused("neither a .keras model nor a .weights.h5 weights file (damaged or another format)")


@contextmanager
def staging_folder(root: Path):
    """Yield a fresh hidden folder in the runs folder, removed with everything in it unless it became a run."""
    staging = root / f"{runfiles.CREATING_PREFIX}import-{secrets.token_hex(4)}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        _sweep_stale_staging(root)
        staging.mkdir()
    except OSError as error:
        raise storage_error(error, "import the model") from error
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone after a refusal; after success it was renamed


def _sweep_stale_staging(root: Path) -> None:
    """Remove the staging folders of imports killed over STALE_STAGING_SECONDS ago."""
    now = time.time()
    for folder in [*root.glob(f"{runfiles.CREATING_PREFIX}import-*"), *root.glob(f"{runfiles.CREATING_PREFIX}fetch-*")]:
        with suppress(OSError):
            if now - folder.stat().st_mtime > STALE_STAGING_SECONDS:
                shutil.rmtree(folder, ignore_errors=True)


def _finish(staging: Path, staged: Path, source: str, name: str | None, architecture: str | None, actor) -> Run:
    """Check and load the staged file, save it as the run's model and move the run into place; return it."""
    data = staged.read_bytes()
    record = {"source": source, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    if staged.name == STAGED_KERAS:
        model, found, kind = _load_keras(staged), None, "keras model"
    else:
        (model, found), kind = _load_weights(staged, architecture), "weights"
    try:
        input_shape = _check_shapes(model)
        model = _as_studio_model(model, input_shape)
    except ImportRefused:
        raise
    except Exception as error:  # an unbuilt model has no inputs, and Keras says so in many ways
        raise ImportRefused(f"its shape cannot be read ({_first_line(error)})") from error
    _check_probabilities(model)
    for incoming in staging.glob("incoming*"):  # only the model as the studio saves it goes into the run
        incoming.unlink()
    record.update(
        format=kind,
        architecture=found,
        parameters=int(model.count_params()),
        input_shape=list(input_shape),
        imported=now_iso(),
    )
    return place(staging, model, record, name if name is not None else _stem(source), actor)


def _load_keras(path: Path):
    """Return the model in a .keras file, loaded with safe_mode=True once its config passed inspection."""
    config = _keras_config(path)
    too_big = oversized_layer(config)
    if too_big:
        raise ImportRefused(too_big)
    lambdas, foreign = foreign_objects(config)
    if lambdas:
        raise ImportRefused("has a Lambda layer (Python code inside the file), which the studio never runs")
    if foreign:
        names = ", ".join(sorted(foreign)[:3])
        raise ImportRefused(f"uses custom objects ({names}) that are not part of Keras")
    keras = import_keras()
    try:
        return keras.models.load_model(path, safe_mode=True, compile=False)
    except Exception as error:  # Keras raises anything from ValueError to OSError for a bad file
        raise ImportRefused(f"Keras cannot load it ({_first_line(error)})") from error


def _keras_config(path: Path) -> dict:
    """Return the config.json of a .keras file; ImportRefused when the zip is damaged or not a Keras model."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = {info.filename: info for info in archive.infolist()}
            missing = [member for member in KERAS_MEMBERS if member not in members]
            if missing:
                raise ImportRefused(f"a zip but not a Keras model (no {', '.join(missing)})")
            if sum(info.file_size for info in members.values()) > UNPACKED_LIMIT:
                raise ImportRefused(f"unpacks to more than {UNPACKED_LIMIT / 2**20:.0f} MB")
            if members["config.json"].file_size > CONFIG_LIMIT:
                raise ImportRefused("its config.json is too large for a model")
            config = json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError, NotImplementedError, zlib.error) as error:
        raise ImportRefused(f"damaged or truncated ({_first_line(error)})") from error
    except RecursionError as error:
        raise ImportRefused("its config.json nests too deeply to be a model's") from error
    if not isinstance(config, dict):
        raise ImportRefused("its config.json is not a model's config")
    return config


def oversized_layer(config) -> str | None:
    """Return why a config declares a layer too large to build (Keras allocates it before it reads a weight: a
    few bytes of JSON could ask for gigabytes), None when every width and kernel is within bounds."""
    for value in _config_objects(config):
        for key, limit in LAYER_LIMITS.items():
            numbers = value.get(key)
            numbers = numbers if isinstance(numbers, list) else [numbers]
            if any(isinstance(n, int) and not isinstance(n, bool) and n > limit for n in numbers):
                return f"a layer declares {key} {value[key]}, more than the {limit:,} the studio builds"
    return None


def foreign_objects(config) -> tuple[bool, set[str]]:
    """Return (whether a serialized Keras config names a Lambda layer or a Python function, the names of its
    objects that are not Keras's own), from the JSON alone."""
    lambdas, foreign = False, set()
    for value in _config_objects(config):
        class_name = value.get("class_name")
        if class_name in ("Lambda", "__lambda__"):
            lambdas = True
        elif class_name == "function" and value.get("module") not in SAFE_FUNCTION_MODULES:
            foreign.add(f"function {value.get('config')!s:.40}")  # a function by name: only Keras's plain ones
        elif isinstance(class_name, str) and "config" in value:
            module = value.get("module")
            builtin = isinstance(module, str) and (module == "keras" or module.startswith("keras."))
            if not builtin or value.get("registered_name") not in (None, class_name):
                foreign.add(str(value.get("registered_name") or class_name))
    return lambdas, foreign


def _config_objects(config):
    """Yield every JSON object (dict) inside a serialized Keras config, at any depth."""
    stack = [config]
    while stack:
        value = stack.pop()
        if isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, dict):
            yield value
            stack.extend(value.values())


def _load_weights(path: Path, architecture: str | None):
    """Return (an architecture's model with the weights in `path`, its key): the architecture given, else the
    one of the registry whose variables the file fills exactly. ImportRefused when none does."""
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            full_model, legacy = "model_config" in handle.attrs, "layer_names" in handle.attrs
    except OSError as error:
        raise ImportRefused(f"damaged or truncated ({_first_line(error)})") from error
    if legacy and not full_model:
        path = path.rename(path.with_name(STAGED_LEGACY_WEIGHTS))
    if full_model:
        raise ImportRefused(
            "a legacy .h5 full model, which the studio does not load; "
            "open it in Keras and save it as .keras (model.save('model.keras'))"
        )
    if architecture is not None and architecture not in ARCHITECTURES:
        raise ImportRefused(f"unknown architecture {architecture!r} (choose one of {', '.join(ARCHITECTURES)})")
    candidates = [architecture] if architecture else list(ARCHITECTURES)
    for key in candidates:
        model = build_model(key)
        try:
            model.load_weights(path)
        except Exception:  # noqa: BLE001 - Keras raises many kinds for a mismatch: not this architecture
            continue
        return model, key
    wanted = f"the {architecture} architecture" if architecture else "any of the architectures"
    raise ImportRefused(f"its weights do not fit {wanted} ({', '.join(candidates)})")


def _check_shapes(model) -> tuple[int, ...]:
    """Return the model's input shape (without the batch); ImportRefused unless it takes one 28x28(x1) image
    and gives 10 classes."""
    inputs, outputs = list(model.inputs or []), list(model.outputs or [])
    if len(inputs) != 1 or len(outputs) != 1:
        counts = f"{len(inputs)} inputs and {len(outputs)} outputs"
        raise ImportRefused(f"has {counts}; a digit model has one of each")
    input_shape, output_shape = tuple(inputs[0].shape[1:]), tuple(outputs[0].shape[1:])
    if input_shape not in ACCEPTED_INPUTS:
        raise ImportRefused(f"takes input {_shape(input_shape)}, not 28x28 or 28x28x1 images")
    if output_shape != (NUM_CLASSES,):
        raise ImportRefused(f"gives output {_shape(output_shape)}, not the 10 digit classes")
    return input_shape


def _as_studio_model(model, input_shape: tuple[int, ...]):
    """Return the model taking (N, 28, 28, 1) images: itself, or behind a Reshape for a (28, 28) model."""
    if input_shape == STUDIO_INPUT:
        return model
    keras = import_keras()
    return keras.Sequential([keras.Input(STUDIO_INPUT), keras.layers.Reshape(input_shape), model])


def _check_probabilities(model) -> None:
    """Raise ImportRefused unless the model's outputs on a few images are probabilities (>= 0, rows sum to 1)."""
    images = np.random.default_rng(0).random((8, *STUDIO_INPUT), dtype=np.float32)
    try:
        outputs = import_keras().ops.convert_to_numpy(model(images, training=False))
    except Exception as error:
        raise ImportRefused(f"fails on a 28x28 image ({_first_line(error)})") from error
    sums = outputs.sum(axis=1)
    if not np.all(np.isfinite(outputs)) or outputs.min() < 0 or np.abs(sums - 1).max() > PROBABILITY_TOLERANCE:
        raise ImportRefused("its outputs are not probabilities (end the model with a softmax)")


def place(staging: Path, model, record: dict, name: str, actor: Actor | None, kind: str = "imported") -> Run:
    """Write the run's model, record, labels and status into `staging`, rename it into place (its id says
    `kind`: imported, ensemble); return the run."""
    root = staging.parent
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    final = root / f"{stamp}-{kind}-{secrets.token_hex(2)}"
    status = {"state": IMPORTED, "error": None, "pid": None, "created": record["imported"], "epochs_done": 0}
    try:
        storage.save_model_atomic(model, staging / runfiles.BEST_MODEL)
        storage.write_json_atomic(staging / runfiles.IMPORTED, record)
        labels = {"name": _display_name(name)} if name.strip() else {}
        storage.write_json_atomic(staging / runfiles.LABELS, labels)
        storage.write_json_atomic(staging / runfiles.STATUS, {**status, "owner": actor.id if actor else None})
        with locked(root):
            _check_imports_quota(root, actor)  # under the lock: two tabs of one session cannot both pass
            staging.rename(final)
    except OSError as error:
        raise storage_error(error, f"import {record['source']}") from error
    return read_run(final)


def _check_imports_quota(root: Path, actor: Actor | None) -> None:
    """Raise ImportRefused when `actor` (not an admin) keeps as many imported models as one session may."""
    if actor is None or actor.admin:
        return
    kept = owned_count(root, actor.id, (IMPORTED,))
    if kept >= max_imports_per_owner():
        raise ImportRefused(f"this session keeps {kept} imported models, the most one may; delete one first")


def _stem(file_name: str) -> str:
    """Return a file name without its model ending: 'cnn' for cnn.keras, cnn.weights.h5 or cnn.h5."""
    for ending in (".keras", ".weights.h5", ".h5"):
        if file_name.endswith(ending) and len(file_name) > len(ending):
            return file_name[: -len(ending)]
    return file_name


def _shape(shape: tuple) -> str:
    """Return a shape as '32x32x3' ('?' for a free dimension)."""
    return "x".join("?" if dim is None else str(dim) for dim in shape) or "a scalar"


def _first_line(error: Exception) -> str:
    """Return the first line of an error's message, at most 160 characters."""
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:160]
