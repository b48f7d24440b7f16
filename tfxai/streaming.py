"""Streaming explanation of image folders of any size, in shards, resumable, on one or many devices.

    import tfxai.streaming
    summary = tfxai.streaming.explain_folder(model, "photos/", "maps/", methods="gradcam,tgrad")
    for shard in tfxai.streaming.read_shards("maps/"):
        shard["files"], shard["gradcam"]          # (n,) names, (n, H, W) maps

or on the command line ``python -m tfxai explain photos/ --model model.keras --out maps/``.

* **Streaming**: file names are listed once (recursively, sorted; JPEG, PNG,
  BMP, GIF); `tf.data` reads, decodes and resizes them (shorter side to
  ``size / 0.875``, centre crop, as ``explain`` does for single photos), so at
  most a few batches and one shard of maps are in memory, however many images
  the folder holds.
* **Shards**: images ``k * shard_size ... (k + 1) * shard_size - 1`` (in sorted
  order) go to ``shard-0000k.npz`` with the arrays ``files`` (names relative to
  the folder), ``index`` (positions in the sorted list), ``targets`` (explained
  classes), ``probabilities`` (of the target), ``skipped`` (unreadable names)
  and one ``(n, H, W)`` float32 array of maps per method. ``manifest.json``
  records the settings, every shard and its state; ``files.txt`` the sorted list.
* **Resume**: a shard is written to a temporary file and renamed into place
  (atomic), so a shard file is either complete or absent. Rerunning the same
  command after an interruption skips the shards already written and produces
  the same result as an uninterrupted run. A run with other settings in the
  same ``out`` folder is refused, naming what differs: the folder's files, the
  model's *weights* (a fingerprint of their values), the preprocessing (by
  its output on a probe image), the input range, every method's settings and
  the options (:class:`FolderSettings`). A damaged or foreign shard file is
  named in a clear error.
* **Unreadable files** (not an image, truncated, unreadable) are *skipped*: one
  warning names them (:class:`UnreadableImagesWarning`), the shard and the
  manifest list them, and the run goes on (``on_error="raise"`` stops instead
  with an error naming them).
* **Strategies**: each step is one :class:`tfxai._runtime.Step` of the model's
  runtime (:meth:`tfxai._runtime.Runtime.step`), run through ``strategy.run``
  (every method, every replica at once). With a
  ``MultiWorkerMirroredStrategy`` worker ``i`` of ``N`` explains shards
  ``i, i + N, ...`` into the same (shared) ``out`` folder.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import time
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import tensorflow as tf

from tfxai import _runtime, _validation, distribute
from tfxai.errors import InvalidInputError, InvalidTypeError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
CROP_FRACTION = 0.875
MANIFEST = "manifest.json"
FILES = "files.txt"
RESERVED = ("files", "index", "targets", "probabilities", "skipped")
FORMAT_VERSION = 2


class UnreadableImagesWarning(UserWarning):
    """Some files of the folder could not be read or decoded as images and were skipped."""


@dataclass
class FolderSummary:
    """What :func:`explain_folder` did (on this worker)."""

    out: Path
    num_files: int
    num_shards: int
    written: list = field(default_factory=list)
    already_done: list = field(default_factory=list)
    skipped_files: list = field(default_factory=list)
    images: int = 0
    seconds: float = 0.0
    worker: int = 0
    workers: int = 1


# ----------------------------------------------------------------------------- listing
def list_images(folder: str | os.PathLike, recursive: bool = True) -> list[str]:
    """Image file names under `folder` (relative POSIX paths, sorted), by extension."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InvalidInputError(f"{str(folder)!r} is not a folder of images.")
    pattern = "**/*" if recursive else "*"
    names = [
        p.relative_to(folder).as_posix()
        for p in folder.glob(pattern)
        if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
    ]
    return sorted(names)


def read_shards(out: str | os.PathLike) -> Iterator[dict]:
    """Every written shard of an output folder, in order, as a dict of arrays (one shard in memory at a time)."""
    out = Path(out)
    manifest = _read_manifest(out)
    for shard in manifest["shards"]:
        path = out / shard["file"]
        if path.is_file():
            yield _read_shard(path)


def load_all(out: str | os.PathLike) -> dict:
    """Every shard concatenated (for small folders and tests: this holds every map in memory)."""
    parts: dict[str, list] = {}
    for shard in read_shards(out):
        for key, value in shard.items():
            parts.setdefault(key, []).append(value)
    return {key: np.concatenate(values) for key, values in parts.items()}


# ----------------------------------------------------------------------------- the library function
@dataclass(frozen=True)
class FolderSettings:
    """Every setting of :func:`explain_folder` but the model and the folders (checked when built).

    Attributes:
        methods: registry names (``"gradcam,tgrad"``, a list, ``"default"``, ``"all"``),
            built with :func:`tfxai._registry.build`; ignored when `explainers` is given.
        explainers: ``{name: explainer}`` to use instead of `methods`.
        targets: a class index or class name explained for every image (default: each image's predicted class).
        batch_size: images per step, split between the strategy's replicas.
        shard_size: images per shard file. Memory holds about one shard of maps:
            ``shard_size x methods x H x W x 4`` bytes.
        size: model input size (default: the model's).
        preprocess: a TensorFlow function applied to the raw [0, 255] pixels
            before the model (e.g. ``keras.applications.mobilenet_v2.preprocess_input``).
        quick, layer: settings passed to the registry's explainers.
        strategy: a `tf.distribute` strategy (None: the default one).
        on_error: ``"skip"`` (default: unreadable files are skipped with one
            :class:`UnreadableImagesWarning` naming them) or ``"raise"``.
        recursive: search the folder recursively.
        progress: a tqdm bar with the number of images to explain.
        jit_compile: compile the replica step with XLA.
        max_shards: stop after writing this many shards (a later call resumes).
    """

    methods: Any = "default"
    explainers: dict | None = None
    targets: Any = None
    batch_size: int = 16
    shard_size: int = 256
    size: Any = None
    preprocess: Callable[[tf.Tensor], tf.Tensor] | None = None
    quick: bool = False
    layer: Any = None
    strategy: Any = None
    on_error: str = "skip"
    recursive: bool = True
    progress: bool = True
    jit_compile: bool = False
    max_shards: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "batch_size", _validation.check_positive_int(self.batch_size, "batch_size"))
        object.__setattr__(self, "shard_size", _validation.check_positive_int(self.shard_size, "shard_size"))
        _validation.check_choice(self.on_error, "on_error", ("skip", "raise"))
        if self.max_shards is not None:
            object.__setattr__(self, "max_shards", _validation.check_positive_int(self.max_shards, "max_shards"))


def explain_folder(model: Any, folder: str | os.PathLike, out: str | os.PathLike, settings: FolderSettings | None = None,
                   **options: Any) -> FolderSummary:
    """Explain every image of `folder` and write the maps to `out` in shards (see the module docstring).

    Args:
        model: a Keras classifier or its adapter (``tfxai.adapt(model, input_range=...)``).
        folder: a folder of images (searched recursively unless `recursive` is False).
        out: the output folder (created; an existing run there with the same settings is resumed).
        settings: a :class:`FolderSettings` (default: its defaults).
        **options: any field of :class:`FolderSettings` as a keyword (``methods=``,
            ``targets=``, ``batch_size=``, ``preprocess=``, ...), replacing the value of `settings`.

    Returns:
        :class:`FolderSummary`.

    Example::

        summary = explain_folder(model, "photos/", "maps/", methods="gradcam", targets="tabby")
    """
    from tfxai import _registry
    from tfxai.adapter import adapt
    from tfxai.evaluation.runner import _settings

    settings = _settings(FolderSettings, settings, options, "explain_folder")
    adapter = adapt(model)
    strategy = distribute.resolve(settings.strategy)
    shard_size = settings.shard_size
    folder, out = Path(folder), Path(out)
    height, width = _input_size(adapter, settings.size)
    channels = _channels(adapter)
    explainers = settings.explainers
    if explainers is None:
        explainers = {name: _registry.build(name, adapter, quick=settings.quick, layer=settings.layer)
                      for name in _registry.parse(settings.methods)}
    if not explainers:
        raise InvalidInputError("no methods to run.")
    for name in explainers:
        if name in RESERVED:
            raise InvalidInputError(f"method name {name!r} is reserved in the shard files; rename it.")
    targets = _folder_target(settings.targets, adapter)

    names = list_images(folder, settings.recursive)
    if not names:
        raise InvalidInputError(f"no image files ({', '.join(IMAGE_EXTENSIONS)}) in {str(folder)!r}.")
    workers, worker = distribute.num_workers(strategy), distribute.worker_index(strategy)
    num_shards = -(-len(names) // shard_size)
    run = {
        "format": FORMAT_VERSION,
        "model": adapter.name,
        "model_weights": weights_fingerprint(adapter.model),
        "input_range": list(adapter.input_range),
        "methods": {name: _method_settings(e) for name, e in explainers.items()},
        "quick": bool(settings.quick),
        "size": [height, width],
        "channels": channels,
        "shard_size": shard_size,
        "num_files": len(names),
        "files_sha256": hashlib.sha256("\n".join(names).encode()).hexdigest(),
        "targets": "predicted" if targets is None else targets,
        "preprocess": _preprocess_fingerprint(settings.preprocess, (height, width, channels)),
    }
    out.mkdir(parents=True, exist_ok=True)
    _check_or_write_manifest(out, run, names, num_shards)

    mine = [k for k in range(num_shards) if k % workers == worker]
    done = [k for k in mine if (out / _shard_file(k)).is_file()]
    for k in done:  # a damaged or foreign shard is named now, not met as a BadZipFile later
        _read_shard(out / _shard_file(k), keys=(*RESERVED, *explainers), load=False)
    todo = [k for k in mine if k not in done]
    if settings.max_shards is not None:
        todo = todo[: settings.max_shards]
    pending = np.concatenate([np.arange(k * shard_size, min((k + 1) * shard_size, len(names))) for k in todo] or [np.zeros(0, np.int64)])
    summary = FolderSummary(out, len(names), num_shards, already_done=done, worker=worker, workers=workers)

    paths = np.asarray([str(folder / n) for n in names])
    dataset = _dataset(paths, pending, (height, width), settings.preprocess, channels)
    distributed = distribute.distribute(strategy, dataset, settings.batch_size, shard=False)
    step = _FolderStep(adapter, explainers, strategy, distributed.element_spec, targets, settings.jit_compile)
    bar = _progress(len(pending), settings.progress, worker, workers)
    buffer = _ShardBuffer(out, names, shard_size, list(explainers), todo)
    start = time.perf_counter()
    checked = False
    for indices, images in distributed:
        if not checked:  # the range warning of the explainers' eager path, once
            sample = next((x for x in distribute.local_results(strategy, images) if int(tf.shape(x)[0]) > 0), None)
            if sample is not None:
                adapter.check_range(tf.cast(sample, adapter.dtype))
                checked = True
        result = step(indices, images)
        buffer.add(result)
        count = len(result["index"])
        summary.images += count
        if bar is not None:
            bar.update(count)
        for shard, skipped in buffer.flush(complete_below=buffer.max_seen + 1):
            _report(shard, skipped, summary, settings.on_error, folder)
    for shard, skipped in buffer.flush(complete_below=None):
        _report(shard, skipped, summary, settings.on_error, folder)
    if bar is not None:
        bar.close()
    summary.seconds = time.perf_counter() - start
    if summary.skipped_files:
        warnings.warn(
            f"{len(summary.skipped_files)} file(s) of {str(folder)!r} could not be read as images and were skipped: "
            f"{summary.skipped_files[:20]}{' ...' if len(summary.skipped_files) > 20 else ''} (listed in "
            f"{str(out / MANIFEST)!r}).",
            UnreadableImagesWarning,
            stacklevel=2,
        )
    _update_manifest(out)
    return summary


def weights_fingerprint(model: Any) -> str:
    """SHA-256 of the values (with shapes and dtypes) of every weight of `model`, in order: the same model, not the same name."""
    digest = hashlib.sha256()
    for weight in model.weights:
        value = np.ascontiguousarray(np.asarray(weight.numpy() if hasattr(weight, "numpy") else weight))
        digest.update(f"{value.dtype.str}{value.shape}".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def _preprocess_fingerprint(preprocess: Any, shape: tuple) -> Any:
    """The preprocessing by value: a hash of its output on a fixed probe image (None without preprocessing)."""
    if preprocess is None:
        return None
    probe = tf.reshape(tf.cast(tf.range(int(np.prod(shape))) % 256, tf.float32), shape)
    try:
        value = np.asarray(preprocess(probe), np.float64)
    except Exception:  # noqa: BLE001 - a function that cannot run eagerly is known by its name only
        return getattr(preprocess, "__qualname__", repr(preprocess))
    return hashlib.sha256(np.round(value, 5).tobytes()).hexdigest()


def _method_settings(explainer: Any) -> str:
    """An explainer's class and settings (its repr, without memory addresses)."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(explainer))


def _folder_target(targets: Any, adapter: Any) -> int | None:
    """The one class explained for every image (an index or a class name), checked by the runtime's parser."""
    if targets is None:
        return None
    if isinstance(targets, (list, tuple, np.ndarray)) or tf.is_tensor(targets):
        raise InvalidTypeError(
            f"`targets` of a folder must be one class (an index or a name) for every image, or None for each image's "
            f"predicted class; received {targets!r}."
        )
    return int(_runtime.parse_targets(targets, 1, adapter.num_classes, adapter)[0])


# ----------------------------------------------------------------------------- pieces
def _input_size(adapter: Any, size: Any) -> tuple[int, int]:
    shape = adapter.model.inputs[0].shape
    if size is not None:
        height, width = (size, size) if isinstance(size, int) else tuple(size)
    else:
        height, width = shape[1], shape[2]
    if height is None or width is None:
        raise InvalidInputError(f"model {adapter.name!r} accepts any image size; pass `size` (e.g. 224).")
    return int(height), int(width)


def _channels(adapter: Any) -> int:
    """The model's input channels (files are decoded with as many: greyscale, RGB or RGBA)."""
    channels = adapter.model.inputs[0].shape[-1]
    if channels not in (1, 3, 4):
        raise InvalidInputError(
            f"model {adapter.name!r} takes {channels} input channels; image files decode to 1 (grey), 3 (RGB) or 4 "
            "(RGBA) channels. Explain such inputs with the library API on arrays."
        )
    return int(channels)


def _dataset(paths: np.ndarray, pending: np.ndarray, size: tuple[int, int], preprocess: Any, channels: int = 3) -> tf.data.Dataset:
    """``(index, image)`` for every pending file; unreadable files are dropped (found later by their index)."""
    from tfxai.image_ops import center_crop

    table = tf.constant(paths, tf.string)
    height, width = size

    def load(index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        data = tf.io.read_file(tf.gather(table, index))
        image = tf.io.decode_image(data, channels=channels, expand_animations=False)
        image = tf.clip_by_value(center_crop(image, (height, width), max(height, width) / CROP_FRACTION), 0.0, 255.0)
        if preprocess is not None:
            image = tf.cast(preprocess(image), tf.float32)
        return index, image

    data = tf.data.Dataset.from_tensor_slices(tf.constant(pending, tf.int64))
    return data.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).ignore_errors()


class _FolderStep:
    """The stream's one step (a :class:`tfxai._runtime.Step`): targets, every method's maps and the target probability."""

    def __init__(self, adapter, explainers, strategy, spec, targets, jit_compile):
        from tfxai.metrics import _common, confidence

        self.strategy = strategy
        self.explainers = explainers
        runtime = adapter.runtime(64)
        fixed = bool(jit_compile)
        probability = confidence.target_probability_fn(_common.score_fn(adapter, "probability"), 64, fixed)
        dtype = adapter.dtype
        given = _runtime.PREDICTED if targets is None else int(targets)

        def replica(indices, images, seeds):
            images = tf.cast(images, dtype)
            n = tf.shape(images)[0]
            chosen = runtime.resolve(images, tf.fill([n], given), fixed=fixed)
            maps = {}
            for name, explainer in explainers.items():
                edtype = explainer.adapter.dtype
                maps[name] = tf.cond(
                    n > 0,
                    lambda e=explainer, s=seeds[name], d=edtype: tf.cast(e.explain_batch(tf.cast(images, d), chosen, s), tf.float32),
                    lambda: tf.zeros(tf.shape(images)[:3], tf.float32),
                )
            return {"index": indices, "targets": chosen, "probabilities": tf.cast(probability(images, chosen), tf.float32),
                    "maps": maps}

        index_spec, image_spec = spec
        seed_specs = {name: tf.TensorSpec([2], tf.int32) for name in explainers}
        self.step = runtime.step(
            ("explain_folder", tuple(explainers), object()), replica, [index_spec, image_spec, seed_specs],
            strategy=strategy, jit=jit_compile, guard=lambda out: out["maps"], hint="Check the inputs and settings.",
        )

    def __call__(self, indices, images) -> dict:
        out = self.step(indices, images, {name: _runtime.explainer_seed(e) for name, e in self.explainers.items()})
        local = lambda value: np.concatenate([np.asarray(v) for v in distribute.local_results(self.strategy, value)])  # noqa: E731
        return {
            "index": local(out["index"]),
            "targets": local(out["targets"]),
            "probabilities": local(out["probabilities"]),
            "maps": {name: local(value) for name, value in out["maps"].items()},
        }


class _ShardBuffer:
    """Rows of the shards being filled; writes each shard atomically once every one of its images has passed."""

    def __init__(self, out: Path, names: list, shard_size: int, methods: list, todo: list):
        self.out, self.names, self.shard_size, self.methods = out, names, shard_size, methods
        self.todo = list(todo)
        self.rows: dict[int, list] = {k: [] for k in todo}
        self.max_seen = -1

    def add(self, result: dict) -> None:
        for row in range(len(result["index"])):
            index = int(result["index"][row])
            self.max_seen = max(self.max_seen, index)
            self.rows[index // self.shard_size].append(
                (index, int(result["targets"][row]), float(result["probabilities"][row]),
                 {m: result["maps"][m][row] for m in self.methods})
            )

    def flush(self, complete_below: int | None) -> list:
        """Write every shard whose images all lie below `complete_below` (None: every remaining shard)."""
        written = []
        while self.todo:
            shard = self.todo[0]
            end = min((shard + 1) * self.shard_size, len(self.names))
            if complete_below is not None and end > complete_below:
                break
            written.append((shard, self._write(shard, end)))
            self.todo.pop(0)
        return written

    def _write(self, shard: int, end: int) -> list:
        rows = sorted(self.rows.pop(shard), key=lambda r: r[0])
        start = shard * self.shard_size
        seen = {r[0] for r in rows}
        skipped = [self.names[i] for i in range(start, end) if i not in seen]
        arrays = {
            "files": np.asarray([self.names[r[0]] for r in rows], dtype=str),
            "index": np.asarray([r[0] for r in rows], np.int64),
            "targets": np.asarray([r[1] for r in rows], np.int32),
            "probabilities": np.asarray([r[2] for r in rows], np.float32),
            "skipped": np.asarray(skipped, dtype=str),
        }
        for method in self.methods:
            arrays[method] = np.stack([r[3][method] for r in rows]).astype(np.float32) if rows else np.zeros((0, 0, 0), np.float32)
        final = self.out / _shard_file(shard)
        temporary = final.with_name(f".{final.name}.{os.getpid()}.tmp")
        with open(temporary, "wb") as handle:
            np.savez(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final)  # atomic: the shard is complete or absent
        return skipped


def _report(shard: int, skipped: list, summary: FolderSummary, on_error: str, folder: Path) -> None:
    summary.written.append(shard)
    summary.skipped_files.extend(skipped)
    if skipped and on_error == "raise":
        raise InvalidInputError(
            f"{len(skipped)} file(s) of {str(folder)!r} could not be read as images: {skipped[:20]}. Remove or fix them, "
            "or skip them with on_error='skip' (--on-error skip)."
        )


def _shard_file(shard: int) -> str:
    return f"shard-{shard:05d}.npz"


def _atomic_write(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def _read_manifest(out: Path) -> dict:
    path = out / MANIFEST
    try:
        manifest = json.loads(path.read_text())
        manifest["settings"], manifest["shards"]  # noqa: B018 - the keys every manifest has
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InvalidInputError(
            f"{str(path)!r} is not a tfxai manifest ({type(error).__name__}: {str(error)[:100]}); delete the folder "
            f"{str(out)!r} or choose another output folder (--out)."
        ) from None
    return manifest


def _read_shard(path: Path, keys: tuple = (), load: bool = True) -> dict:
    """A shard's arrays (or only a check that it opens and holds `keys`); a clear error naming a damaged file."""
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in keys if k not in data.files]
            if missing:
                raise KeyError(f"no array {missing[0]!r}")
            return {key: data[key] for key in data.files} if load else {}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        what = error.args[0] if isinstance(error, KeyError) else "not a readable NumPy .npz archive"
        raise InvalidInputError(
            f"shard file {str(path)!r} is damaged or not from this run ({what}); "
            "delete it (it is recomputed on the next run) or choose another output folder (--out)."
        ) from None


def _check_or_write_manifest(out: Path, settings: dict, names: list, num_shards: int) -> None:
    path = out / MANIFEST
    if path.is_file():
        existing = _read_manifest(out).get("settings", {})
        existing = existing if isinstance(existing, dict) else {}
        if existing != settings:
            changed = sorted(k for k in set(settings) | set(existing) if settings.get(k) != existing.get(k))
            details = "; ".join(f"{k}: {_short(existing.get(k))} in the folder, {_short(settings.get(k))} now" for k in changed)
            raise InvalidInputError(
                f"{str(out)!r} holds a run with other settings ({', '.join(changed)} differ: {details}). Resume it with "
                "the same folder, model weights, preprocessing and options, or write to a new output folder (--out) "
                "or delete this one."
            )
        return
    stray = sorted(p.name for p in out.glob("shard-*.npz"))
    if stray:
        raise InvalidInputError(f"{str(out)!r} holds shard files but no {MANIFEST}; choose an empty output folder.")
    _atomic_write(out / FILES, "\n".join(names) + "\n")
    shards = [{"file": _shard_file(k), "start": k * settings["shard_size"],
               "count": min(settings["shard_size"], len(names) - k * settings["shard_size"]), "done": False}
              for k in range(num_shards)]
    _atomic_write(path, json.dumps({"settings": settings, "shards": shards, "complete": False, "skipped": []}, indent=1))


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    if re.fullmatch(r"[0-9a-f]{64}", text):  # a fingerprint
        return text[:12] + "..."
    return text if len(text) <= 80 else text[:77] + "..."


def _update_manifest(out: Path) -> None:
    """Mark the written shards (from the files themselves) and list the skipped files."""
    path = out / MANIFEST
    manifest = _read_manifest(out)
    skipped = []
    for shard in manifest["shards"]:
        file = out / shard["file"]
        shard["done"] = file.is_file()
        if shard["done"]:
            shard["skipped"] = _read_shard(file, keys=("skipped",))["skipped"].tolist()
            skipped.extend(shard["skipped"])
    manifest["complete"] = all(s["done"] for s in manifest["shards"])
    manifest["skipped"] = skipped
    _atomic_write(path, json.dumps(manifest, indent=1))


def _progress(total: int, enabled: bool, worker: int, workers: int) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="img", desc="explain" if workers == 1 else f"explain (worker {worker} of {workers})")


# ----------------------------------------------------------------------------- command line
def run_folder(args: argparse.Namespace) -> int:
    """``python -m tfxai explain FOLDER --model M --out DIR``: stream a folder (``args.images == [FOLDER]``)."""
    strategy = distribute.strategy_from_name(getattr(args, "strategy", "none"))  # before anything else runs
    import tfxai
    from tfxai._cli_common import input_range_of, load_model, preprocess_function, writable_folder

    folder = Path(args.images[0])
    if len(args.images) != 1 or not folder.is_dir():
        raise InvalidInputError("explain takes one folder, or image files; not a mix.")
    writable_folder(args.out)
    with strategy.scope():
        model, preprocess = load_model(args.model, getattr(args, "weights", "imagenet"))
    if getattr(args, "preprocess", "auto") != "auto":
        preprocess = preprocess_function(args.preprocess)
    adapter = tfxai.adapt(model, input_range=getattr(args, "input_range", None) or input_range_of(preprocess))
    targets = None
    if getattr(args, "targets", None):
        if len([t for t in args.targets.split(",") if t.strip()]) != 1:
            raise InvalidInputError("--targets takes one class (index or name) for a folder.")
        targets = int(_runtime.targets_from_text(args.targets, 1, adapter)[0])
    def numpy_preprocess(image: tf.Tensor) -> tf.Tensor:  # keras.applications functions are NumPy-based
        out = tf.numpy_function(
            lambda x: np.asarray(preprocess(np.array(x, copy=True)), np.float32), [image], tf.float32, stateful=False
        )
        return tf.ensure_shape(out, image.shape)  # the data pipeline's static shape, for the compiled step

    tf_preprocess = None if preprocess is None else numpy_preprocess
    from tfxai import _registry

    overrides = {"scorecam": {"num_channels": args.scorecam_channels}} if getattr(args, "scorecam_channels", None) else {}
    explainers = {
        name: _registry.build(name, adapter, quick=getattr(args, "quick", False), **overrides.get(name, {}))
        for name in _registry.parse(args.methods)
    }
    summary = explain_folder(
        adapter, folder, args.out, explainers=explainers, targets=targets, batch_size=getattr(args, "batch_size", 16),
        shard_size=getattr(args, "shard_size", 256), size=getattr(args, "size", None), preprocess=tf_preprocess,
        strategy=strategy, on_error=getattr(args, "on_error", "skip"), progress=not getattr(args, "no_progress", False),
        jit_compile=getattr(args, "jit_compile", False), quick=getattr(args, "quick", False),
    )
    print(
        f"worker {summary.worker} of {summary.workers}: {summary.images} images, {len(summary.written)} shard(s) written, "
        f"{len(summary.already_done)} already done, {len(summary.skipped_files)} unreadable file(s) skipped; "
        f"maps in {summary.out}",
        flush=True,
    )
    return 0
