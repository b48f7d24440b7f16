"""Datasets for evaluation: a folder of images with a labels CSV, or a TFDS dataset.

Both yield ``(image, label)`` pairs with ``image`` float32 ``(size, size, 3)``
raw pixels in [0, 255] (the shorter side resized to `resize_to` with
antialiasing, then a centre crop of `size`: the usual ImageNet evaluation
transform) and ``label`` int32. Models that expect another input space must
include their preprocessing (as the EfficientNet-Lite0 asset does) or be given
a `preprocess` function.
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path
from typing import Any, Callable

import tensorflow as tf

from tfxai import _validation
from tfxai.image_ops import center_crop
from tfxai.errors import InvalidInputError


def read_labels(csv_path: str | Path) -> list[dict]:
    """Rows of a labels CSV with at least the columns ``filename`` and ``class_index``."""
    path = Path(csv_path)
    if not path.is_file():
        raise InvalidInputError(f"labels file {str(path)!r} does not exist; expected a CSV with columns filename,class_index.")
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not {"filename", "class_index"} <= set(rows[0]):
        raise InvalidInputError(
            f"labels file {str(path)!r} must have a header with the columns 'filename' and 'class_index' "
            f"(e.g. filename,synset,class_index,class_name); found {list(rows[0]) if rows else 'no rows'}."
        )
    return rows


#: The first bytes of the formats ``tf.io.decode_image`` reads.
IMAGE_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM")


def is_image_file(path: str | Path) -> bool:
    """Whether `path` starts like a JPEG, PNG, GIF or BMP file (its first bytes; the file is not decoded)."""
    with open(path, "rb") as handle:
        head = handle.read(8)
    return head.startswith(IMAGE_SIGNATURES)


def image_folder(
    directory: str | Path,
    labels_csv: str = "labels.csv",
    *,
    size: int = 224,
    resize_to: int = 256,
    num_images: int | None = None,
    shard: tuple[int, int] | None = None,
) -> tf.data.Dataset:
    """A dataset of ``(image, label)`` from image files listed in ``directory/labels_csv``.

    Files are decoded with 3 channels (greyscale JPEGs become RGB). Files that
    are not images (by their first bytes) are skipped with one
    :class:`~tfxai.streaming.UnreadableImagesWarning` naming them. Rows keep the
    CSV order; `num_images` keeps the first rows. ``shard=(index, count)`` keeps
    rows ``index, index + count, ...`` of those (one worker's share, the same
    elements as ``dataset.shard(count, index)``) and decodes only them.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise InvalidInputError(f"`directory` {str(directory)!r} is not a folder of images.")
    size = _validation.check_positive_int(size, "size")
    resize_to = _validation.check_positive_int(resize_to, "resize_to", minimum=size)
    rows = read_labels(directory / labels_csv)
    if num_images is not None:
        rows = rows[: _validation.check_positive_int(num_images, "num_images")]
    if shard is not None:
        index, count = shard
        count = _validation.check_positive_int(count, "shard count")
        if not 0 <= int(index) < count:
            raise InvalidInputError(f"`shard` index must be in [0, {count}); received shard={shard!r}.")
        rows = rows[int(index) :: count]
    missing = [row["filename"] for row in rows if not (directory / row["filename"]).is_file()]
    if missing:
        raise InvalidInputError(f"{len(missing)} files listed in {labels_csv} are missing in {str(directory)!r}: {missing[:5]}.")
    unreadable = [row["filename"] for row in rows if not is_image_file(directory / row["filename"])]
    if unreadable:
        from tfxai.streaming import UnreadableImagesWarning

        warnings.warn(
            f"{len(unreadable)} file(s) listed in {labels_csv} are not images (JPEG, PNG, BMP or GIF) and were skipped: "
            f"{unreadable[:20]}{' ...' if len(unreadable) > 20 else ''}.",
            UnreadableImagesWarning,
            stacklevel=2,
        )
        rows = [row for row in rows if row["filename"] not in set(unreadable)]
        if not rows:
            raise InvalidInputError(f"no image files left in {str(directory)!r} after skipping {unreadable[:5]}.")
    paths = [str(directory / row["filename"]) for row in rows]
    labels = [int(row["class_index"]) for row in rows]

    def load(path: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        return center_crop(image, size, resize_to), tf.cast(label, tf.int32)

    dataset = tf.data.Dataset.from_tensor_slices((tf.constant(paths, tf.string, [len(paths)]), tf.constant(labels, tf.int32, [len(labels)])))
    return dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE)


def tfds_dataset(
    name: str,
    *,
    split: str = "validation",
    manual_dir: str | None = None,
    data_dir: str | None = None,
    size: int = 224,
    resize_to: int = 256,
    num_images: int | None = None,
    image_key: str = "image",
    label_key: str = "label",
    builder: Any = None,
) -> tf.data.Dataset:
    """A TFDS dataset (e.g. ``"imagenet2012"`` with its manually downloaded archives) as ``(image, label)``.

    Args:
        name: TFDS builder name.
        split: the split to read (ImageNet's validation set by default).
        manual_dir: folder holding manually downloaded files (ImageNet's tars);
            the dataset is prepared from it once (no download is attempted).
        data_dir: where TFDS stores prepared data.
        builder: an already constructed builder (overrides `name`; for tests).
    """
    import tensorflow_datasets as tfds

    if builder is None:
        builder = tfds.builder(name, data_dir=data_dir)
    config = tfds.download.DownloadConfig(manual_dir=manual_dir) if manual_dir else None
    builder.download_and_prepare(download_config=config)
    dataset = builder.as_dataset(split=split, shuffle_files=False)
    if num_images is not None:
        dataset = dataset.take(_validation.check_positive_int(num_images, "num_images"))

    def convert(example: dict) -> tuple[tf.Tensor, tf.Tensor]:
        image = example[image_key]
        if image.shape.rank == 3 and image.shape[-1] == 1:
            image = tf.image.grayscale_to_rgb(image)
        return center_crop(image, size, resize_to), tf.cast(example[label_key], tf.int32)

    return dataset.map(convert, num_parallel_calls=tf.data.AUTOTUNE)


def preprocessed(dataset: tf.data.Dataset, preprocess: Callable[[tf.Tensor], tf.Tensor]) -> tf.data.Dataset:
    """Apply ``preprocess(image)`` to every image (for models without built-in preprocessing)."""
    return dataset.map(lambda image, label: (preprocess(image), label), num_parallel_calls=tf.data.AUTOTUNE)
