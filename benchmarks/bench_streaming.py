"""Peak memory (RSS) and speed of streaming folder explanation (``tfxai.streaming.explain_folder``).

Writes N generated images to a temporary folder, explains them in a fresh
process and prints the process's peak resident memory (``ru_maxrss``), so runs
of different sizes can be compared: constant memory means the peak does not
grow with N.

    python benchmarks/bench_streaming.py --num-images 500 5000                    # small CNN, 32x32 images
    python benchmarks/bench_streaming.py --num-images 500 --model efficientnet --methods gradcam   # bundled 224x224 model
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
import tensorflow as tf
import tfxai, keras
from tfxai import streaming
folder, out, model_name, methods, shard_size, batch_size = sys.argv[1:7]
if model_name == "efficientnet":
    from tfxai import models
    model = models.efficientnet_lite0()
    adapter = tfxai.adapt(model)
else:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1")(x)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))
    adapter = tfxai.adapt(model)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
summary = streaming.explain_folder(adapter, folder, out, methods=methods, shard_size=int(shard_size),
                                   batch_size=int(batch_size), progress=False)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print("RESULT" + json.dumps({"images": summary.images, "shards": len(summary.written), "seconds": seconds,
                             "peak_rss_mb": peak / 1024, "rss_before_mb": base / 1024}))
"""


def make_folder(folder: Path, count: int, size: int) -> None:
    import numpy as np
    import tensorflow as tf

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        data = tf.io.encode_png(image) if i % 2 == 0 else tf.io.encode_jpeg(image)
        (folder / f"im{i:06d}.{'png' if i % 2 == 0 else 'jpg'}").write_bytes(data.numpy())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-images", type=int, nargs="+", default=[500, 5000])
    parser.add_argument("--model", choices=("small", "efficientnet"), default="small")
    parser.add_argument("--methods", default="gradcam,vanilla")
    parser.add_argument("--shard-size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    size = 256 if args.model == "efficientnet" else 40
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    with tempfile.TemporaryDirectory() as tmp:
        for count in args.num_images:
            folder = Path(tmp) / f"images{count}"
            make_folder(folder, count, size)
            out = Path(tmp) / f"out{count}"
            done = subprocess.run(
                [sys.executable, "-c", CHILD, str(folder), str(out), args.model, args.methods, str(args.shard_size),
                 str(args.batch_size)], capture_output=True, text=True, env=env, cwd=ROOT,
            )
            lines = [l for l in done.stdout.splitlines() if l.startswith("RESULT")]
            if not lines:
                sys.exit(done.stderr[-3000:])
            result = json.loads(lines[0][6:])
            disk = sum(p.stat().st_size for p in out.iterdir()) / 2**20
            print(
                f"{count:6d} images ({args.model}, {args.methods}, shard {args.shard_size}, batch {args.batch_size}): "
                f"peak RSS {result['peak_rss_mb']:.0f} MB (after imports and model: {result['rss_before_mb']:.0f} MB), "
                f"{result['seconds']:.1f} s ({1000 * result['seconds'] / count:.1f} ms/image), "
                f"{result['shards']} shards, {disk:.0f} MB on disk",
                flush=True,
            )


if __name__ == "__main__":
    main()
