"""The registry: a method is one small class, picked up by the command line and the contract test."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tests import models
from tests.test_contract import check_contract
from tfxai import _registry, cli
from tfxai.explainers.cam import CAM


def test_a_new_cam_variant_is_one_class(tmp_path, capsys):
    class ActivationWeightedCAM(CAM):
        """Each channel weighted by its mean positive gradient times its mean activation (a test-only CAM)."""

        name = "testcam"
        title = "Test-CAM"

        def channel_weights(self, batch):
            return tf.reduce_mean(tf.nn.relu(batch.gradients), axis=(1, 2)) * tf.reduce_mean(batch.activations, axis=(1, 2))

    try:
        assert _registry.METHODS["testcam"] is ActivationWeightedCAM
        assert "testcam" in _registry.parse("default") and _registry.parse("Test-CAM") == ["testcam"]
        model = models.small_cnn((16, 16, 3), num_classes=5, softmax=True, seed=4)
        images = np.random.default_rng(1).uniform(size=(5, 16, 16, 3)).astype("float32")
        check_contract(lambda m, bs: _registry.build("testcam", m, batch_size=bs), model, images)
        # the command line offers it and runs it
        assert "testcam" in cli.methods_help()
        path = tmp_path / "model.keras"
        model.save(path)
        photo = tmp_path / "photo.png"
        tf.io.write_file(str(photo), tf.io.encode_png(tf.constant((images[0] * 255).astype("uint8"))))
        out = tmp_path / "out"
        code = cli.main(["explain", str(photo), "--model", str(path), "--preprocess", "unit", "--methods", "testcam,gradcam",
                         "--out", str(out), "--no-progress"])
        assert code == 0, capsys.readouterr().err
        saved = np.load(out / "maps.npz")
        assert saved["testcam"].shape == (1, 16, 16) and np.ptp(saved["testcam"]) > 0
        assert not np.allclose(saved["testcam"], saved["gradcam"])
    finally:
        _registry.METHODS.pop("testcam", None)


def test_every_registered_method_declares_its_entry():
    for name, cls in _registry.METHODS.items():
        assert cls.name == name and cls.title and isinstance(cls.signed, bool)
        assert isinstance(cls.quick_settings(True), dict) and isinstance(cls.quick_settings(False), dict)
    signed = [n for n, c in _registry.METHODS.items() if c.signed]
    assert "inputxgradient" in signed and not {"vanilla", "gradcam", "tgrad", "fullgrad"} & set(signed)
    assert "scorecam" in _registry.slow() and "gradcam" not in _registry.slow()
