"""Regenerate the sample photos shipped in ``tfxai/data/photos/`` from their upstream files.

    pip download --no-deps -d /tmp/skimage scikit-image     # a wheel is enough, no install
    unzip -q /tmp/skimage/scikit_image-*.whl 'skimage/data/*' -d /tmp/skimage
    python benchmarks/bundle_photos.py --skimage-data /tmp/skimage/skimage/data

Sources (licences and details in ``tfxai/data/photos/SOURCES.md``): ``grace_hopper.jpg``
from the installed matplotlib's ``mpl-data/sample_data/``; ``chelsea.png``,
``coffee.png``, ``camera.png`` and ``rocket.jpg`` from scikit-image's
``skimage/data/`` (scikit-image 0.26.0 was used). Each photo is resized
(antialiased bilinear) so that its shorter side is at most ``--max-side``
pixels (never enlarged) and saved as a JPEG (quality 95); greyscale photos stay one channel.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib
import tensorflow as tf

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tfxai" / "data" / "photos"

#: shipped name -> (upstream package, file name in that package's sample-data folder)
PHOTOS = {
    "grace_hopper": ("matplotlib", "grace_hopper.jpg"),
    "chelsea": ("scikit-image", "chelsea.png"),
    "coffee": ("scikit-image", "coffee.png"),
    "camera": ("scikit-image", "camera.png"),
    "rocket": ("scikit-image", "rocket.jpg"),
}


def shrink(path: Path, max_side: int) -> tf.Tensor:
    """The image at `path` (uint8, 1 or 3 channels) with its shorter side reduced to at most `max_side`."""
    image = tf.io.decode_image(tf.io.read_file(str(path)), expand_animations=False)
    if image.shape[-1] == 4:
        image = image[..., :3]
    height, width = image.shape[:2]
    scale = max_side / min(height, width)
    if scale >= 1:
        return image
    size = (round(height * scale), round(width * scale))
    resized = tf.image.resize(tf.cast(image, tf.float32), size, antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skimage-data", type=Path, required=True, help="the skimage/data folder of a scikit-image wheel or install")
    parser.add_argument("--max-side", type=int, default=320, help="largest shorter side in pixels (default 320)")
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality (default 95)")
    args = parser.parse_args()
    folders = {"matplotlib": Path(matplotlib.get_data_path()) / "sample_data", "scikit-image": args.skimage_data}
    OUT.mkdir(parents=True, exist_ok=True)
    for name, (package, filename) in PHOTOS.items():
        source = folders[package] / filename
        if not source.is_file():
            raise SystemExit(f"{source} not found; pass the skimage/data folder with --skimage-data")
        image = shrink(source, args.max_side)
        target = OUT / f"{name}.jpg"
        target.write_bytes(tf.io.encode_jpeg(image, quality=args.quality, optimize_size=True).numpy())
        print(f"{target.relative_to(ROOT)}: {image.shape[1]}x{image.shape[0]}x{image.shape[2]}, {target.stat().st_size / 1e3:.0f} kB (from {package} {filename})")


if __name__ == "__main__":
    main()
