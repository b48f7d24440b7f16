"""tfxai.plot: every figure builds headless, has the documented panels, and handles image ranges."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import re

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from tfxai import plot  # noqa: E402
from tfxai.errors import InvalidInputError  # noqa: E402
from tfxai.plot import _core  # noqa: E402

RNG = np.random.default_rng(0)
IMAGE01 = RNG.uniform(0, 1, (16, 16, 3)).astype("float32")


def test_to_rgb_detects_ranges():
    uint8 = (IMAGE01 * 255).round().astype(np.uint8)
    np.testing.assert_allclose(_core.to_rgb(uint8), uint8 / 255.0)
    np.testing.assert_allclose(_core.to_rgb(IMAGE01 * 255.0), IMAGE01, atol=1e-6)
    np.testing.assert_allclose(_core.to_rgb(IMAGE01), IMAGE01, atol=1e-7)
    signed = IMAGE01 * 2 - 1  # MobileNetV2-style [-1, 1]
    out = _core.to_rgb(signed)
    assert out.min() == pytest.approx(0.0) and out.max() == pytest.approx(1.0)
    assert _core.to_rgb(IMAGE01[..., 0]).shape == (16, 16, 3)  # grayscale
    assert _core.to_rgb(IMAGE01[None]).shape == (16, 16, 3)  # batch of one
    with pytest.raises(InvalidInputError, match="`image` must be one image"):
        _core.to_rgb(np.zeros((2, 16, 16, 3)))
    with pytest.raises(InvalidInputError, match="NaN"):
        _core.to_rgb(np.full((4, 4, 3), np.nan))


@pytest.mark.parametrize("image", [IMAGE01, IMAGE01 * 255.0, (IMAGE01 * 255).astype(np.uint8)])
def test_overlay_is_rgb_safe(image):
    heat = np.zeros((8, 8))
    heat[2:4, 2:4] = 1.0
    figure = plot.overlay(image, heat, alpha=0.5, title="cat 0.9")
    assert isinstance(figure, Figure)
    ax = figure.axes[0]
    assert ax.get_title() == "cat 0.9"
    shown = ax.images[0].get_array()
    assert shown.shape == (16, 16, 3)
    assert 0.0 <= shown.min() and shown.max() <= 1.0
    # alpha = 0 shows exactly the image in [0, 1] whatever its input range
    plain = plot.overlay(image, heat, alpha=0.0).axes[0].images[0].get_array()
    np.testing.assert_allclose(plain, IMAGE01, atol=1 / 255.0 + 1e-6)
    figure.canvas.draw()  # renders on Agg without a display


def test_overlay_signed_map_is_symmetric_and_zero_keeps_the_image():
    heat = np.zeros((16, 16))
    heat[:4] = 2.0
    heat[-4:] = -1.0
    figure = plot.overlay(IMAGE01, heat, signed=True, clip_percentile=None, colorbar=True)
    bar = figure.axes[-1]  # the colour bar axes
    assert len(figure.axes) == 2
    low, high = bar.get_ylim()
    assert low == pytest.approx(-high) and high == pytest.approx(2.0)
    shown = figure.axes[0].images[0].get_array()
    grey = IMAGE01 @ np.array([0.299, 0.587, 0.114])
    np.testing.assert_allclose(shown[6:10], np.repeat(grey[6:10, :, None], 3, -1), atol=1e-7)  # zero: the photo in grey
    assert not np.allclose(shown[:4], IMAGE01[:4])
    # red for positive, blue for negative under RdBu_r
    assert shown[0, 0, 0] > shown[0, 0, 2]
    assert shown[-1, 0, 2] > shown[-1, 0, 0]


def test_norm_percentile_clipping():
    values = np.arange(101, dtype=float).reshape(1, -1)
    norm = _core.map_norm(values, False, 90.0)
    assert (norm.vmin, norm.vmax) == (0.0, 90.0)
    with pytest.raises(InvalidInputError, match="clip_percentile"):
        _core.map_norm(values, False, 0.0)


def test_overlay_errors_name_the_argument():
    with pytest.raises(InvalidInputError, match="`heatmap` must be one 2-D map"):
        plot.overlay(IMAGE01, np.zeros((2, 8, 8)))
    with pytest.raises(InvalidInputError, match="`alpha`"):
        plot.overlay(IMAGE01, np.zeros((8, 8)), alpha=2.0)


def test_method_grid_shape_and_titles():
    images = RNG.uniform(0, 255, (3, 16, 16, 3))
    maps = {"Grad-CAM": RNG.uniform(size=(3, 4, 4)), "IxG": RNG.normal(size=(3, 16, 16))}
    figure = plot.method_grid(images, maps, labels=["tabby 91%", "dog 50%", "car 12%"], signed=["IxG"], colorbar=False)
    assert len(figure.axes) == 3 * 3
    with_bars = plot.method_grid(images, maps, signed=["IxG"])
    assert len(with_bars.axes) == 3 * 3 + 3 * 2  # one colour bar per map
    bars = with_bars.axes[9:]
    signed_bar = bars[1]  # the IxG bar of the first image: symmetric around 0 (diverging scale)
    low, high = signed_bar.get_ylim()
    assert low == pytest.approx(-high) and high > 0
    titles = [ax.get_title() for ax in figure.axes]
    assert titles[:3] == ["tabby 91%", "Grad-CAM", "IxG"]
    assert titles[3] == "dog 50%" and titles[6] == "car 12%"
    figure.canvas.draw()
    with pytest.raises(InvalidInputError, match="maps\\['IxG'\\]"):
        plot.method_grid(images, {"IxG": np.zeros((2, 16, 16))})
    with pytest.raises(InvalidInputError, match="`labels` and `images`"):
        plot.method_grid(images, maps, labels=["a"])


def test_ig_figures():
    image = RNG.uniform(0, 255, (16, 16, 3))
    attributions = RNG.normal(size=(16, 16, 3))
    figure = plot.ig_summary(image, np.zeros_like(image), attributions, title="fireboat")
    assert [ax.get_title() for ax in figure.axes] == ["Baseline image", "Original image", "Attribution mask", "Overlay"]
    mask = figure.axes[2].images[0].get_array()
    np.testing.assert_allclose(mask, np.abs(attributions).sum(-1))

    alphas = np.linspace(0, 1, 6)
    path = alphas[:, None, None, None] * image[None]
    strip = plot.interpolation_strip(path, alphas)
    assert [ax.get_title() for ax in strip.axes] == [f"alpha: {a:.1f}" for a in alphas]
    # a common scale: alpha 0 is black, the last panel is the image
    np.testing.assert_allclose(strip.axes[0].images[0].get_array(), 0.0)
    np.testing.assert_allclose(strip.axes[-1].images[0].get_array(), image / 255.0)

    curves = plot.alpha_curves(alphas, alphas**0.2, gradients=path, class_name="fireboat")
    assert len(curves.axes) == 2
    assert curves.axes[0].get_xlabel() == "alpha" and "fireboat" in curves.axes[0].get_ylabel()
    np.testing.assert_allclose(curves.axes[0].lines[0].get_ydata(), alphas**0.2)
    assert len(plot.alpha_curves(alphas, alphas).axes) == 1

    names = ["black", "white", "uniform", "gaussian"]
    comparison = plot.baseline_comparison(
        image, {n: np.zeros_like(image) for n in names}, {n: attributions for n in names}
    )
    assert len(comparison.axes) == 2 * 5
    assert comparison.axes[1].get_title() == "black baseline"
    assert comparison.axes[5 + 4].get_title() == "IG (gaussian)"
    with pytest.raises(InvalidInputError, match="same names"):
        plot.baseline_comparison(image, {"black": image}, {"white": attributions})
    for fig in (figure, strip, curves, comparison):
        fig.canvas.draw()


def test_layer_maps_panels_and_scores():
    maps = {"input": np.ones((16, 16)), "conv1": RNG.uniform(size=(8, 8)), "conv2": RNG.uniform(size=(4, 4))}
    figure = plot.layer_maps(maps, scores=[1.5, 0.25, 0.0], image=IMAGE01, combined=RNG.uniform(size=(16, 16)), cols=3)
    assert len(figure.axes) == 6  # 2 x 3: image, combined, 3 layers, 1 hidden
    titles = [ax.get_title() for ax in figure.axes]
    assert titles[0] == "image" and titles[1] == "combined map"
    assert titles[2] == "input\nscore 1.5" and titles[3] == "conv1\nscore 0.25"
    assert figure.axes[3].images[0].get_array().shape == (8, 8)  # shown at its own resolution
    figure.canvas.draw()
    with pytest.raises(InvalidInputError, match="`scores` and `maps`"):
        plot.layer_maps(maps, scores=[1.0])


def test_fgsm_triptych_titles():
    image = RNG.uniform(0, 255, (16, 16, 3))
    sign = np.sign(RNG.normal(size=(16, 16, 3)))
    figure = plot.fgsm_triptych(image, sign, np.clip(image + 2 * sign, 0, 255), labels=("panda", "gibbon"),
                                confidences=(0.577, 0.993), epsilon=0.007)
    titles = [ax.get_title() for ax in figure.axes]
    assert len(titles) == 3
    assert "panda" in titles[0] and "57.7%" in titles[0]
    assert "gibbon" in titles[2] and "99.3%" in titles[2]
    assert "0.007" in titles[1]
    middle = figure.axes[1].images[0].get_array()
    assert set(np.unique(middle)) <= {0.0, 1.0}
    assert "x + eps" in titles[2] and titles[1].startswith("sign(grad_x J(x, y))")
    figure.canvas.draw()
    targeted = plot.fgsm_triptych(image, -sign, np.clip(image - 2 * sign, 0, 255), targeted=True)
    titles = [ax.get_title() for ax in targeted.axes]
    assert titles[1].startswith("-sign(grad_x J(x, t))") and titles[2].startswith("x - eps")


def test_insertion_deletion_curves_auc_in_legend():
    steps = np.linspace(0, 1, 11)
    figure = plot.insertion_deletion_curves(insertion={"T-Grad": steps}, deletion={"T-Grad": np.stack([1 - steps, 1 - steps])})
    assert [ax.get_title() for ax in figure.axes] == ["Insertion", "Deletion"]
    labels = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert labels == ["T-Grad (AUC 0.500)"]
    assert figure.axes[1].get_xlabel() == "fraction of pixels deleted"
    figure.canvas.draw()
    with pytest.raises(InvalidInputError, match="both are None"):
        plot.insertion_deletion_curves()


def test_method_grid_wraps_long_rows_and_keeps_class_names():
    """17 methods on one photo: at most 6 panels a row (issue 18: a 3672x216 strip before), every panel titled."""
    image = RNG.uniform(0, 255, (1, 16, 16, 3))
    maps = {f"method {k}": RNG.uniform(size=(1, 16, 16)) for k in range(17)}
    figure = plot.method_grid(image, maps, labels=["tabby (91%)"])
    panels = [ax for ax in figure.axes if ax.get_title()]
    assert len(panels) == 18
    figure.canvas.draw()
    columns = {ax.get_subplotspec().colspan.start for ax in panels}
    rows = {ax.get_subplotspec().rowspan.start for ax in panels}
    assert len(columns) == 6 and len(rows) == 3
    width, height = figure.get_size_inches()
    assert width / height < 2.5  # not a strip
    assert panels[0].get_title() == "tabby (91%)" and [ax.get_title() for ax in panels[1:]] == list(maps)
    two = plot.method_grid(np.concatenate([image, image]), {k: np.concatenate([v, v]) for k, v in maps.items()},
                           labels=["tabby", "espresso"])
    assert len([ax for ax in two.axes if ax.get_title()]) == 36
    with pytest.raises(InvalidInputError, match="max_columns"):
        plot.method_grid(image, maps, max_columns=1)


def test_colour_bar_labels_are_compact_without_an_offset_multiplier():
    heat = RNG.normal(size=(16, 16)) * 1e-10
    figure = plot.method_grid(IMAGE01[None], {"tiny": np.abs(heat)[None], "signed": heat[None]}, signed=["signed"],
                              clip_percentile=None)
    figure.canvas.draw()
    bars = [ax for ax in figure.axes if not ax.get_title()]
    assert len(bars) == 2
    for bar in bars:
        assert bar.yaxis.get_offset_text().get_text() == ""  # no "1e-10" above the bar, over the next title
        labels = [t.get_text() for t in bar.get_yticklabels()]
        assert all(re.fullmatch(r"-?\d(\.\d)?e-\d+|0", text) for text in labels), labels
    assert [t.get_text() for t in bars[1].get_yticklabels()][1] == "0"  # the signed bar marks zero
    assert _core.short_number(0.25) == "0.25" and _core.short_number(1234.0) == "1.2e3"
    assert _core.short_number(-3.45e-5) == "-3.5e-5" or _core.short_number(-3.45e-5) == "-3.4e-5"


def test_signed_heavy_tailed_maps_are_visible_over_the_photo():
    """A gradient-like map (a few large values, most small): most pixels visibly coloured, zero stays grey."""
    heat = RNG.standard_t(2, size=(32, 32))  # heavy tails, like Input x Gradient
    image = np.full((32, 32, 3), 0.5)
    blended, norm, _ = _core.blend(image, heat, alpha=0.5, cmap=None, signed=True, clip_percentile=99.0)
    change = np.abs(blended - 0.5).max(axis=-1)
    assert np.median(change) > 0.1, np.median(change)  # was ~0.02 with an opacity linear in |map|
    assert norm.vmin == -norm.vmax
    zero = _core.blend(image, np.zeros((32, 32)), alpha=0.5, cmap=None, signed=True, clip_percentile=99.0)[0]
    np.testing.assert_allclose(zero, 0.5)


def test_sanity_grid_names_the_spearman_correlation():
    """A small Greek rho at 6 points reads as "p=" (a p-value): the titles say "Spearman"."""
    from types import SimpleNamespace

    maps = {layer: RNG.uniform(size=(1, 8, 8)) for layer in range(2)}
    result = SimpleNamespace(layers=["dense", "conv"], maps=maps, original_maps=RNG.uniform(size=(1, 8, 8)),
                             spearman=np.array([[0.91], [0.12]]))
    figure = plot.plot_sanity_grid(IMAGE01, {"Grad-CAM": result})
    titles = [ax.get_title() for ax in figure.axes]
    assert "dense\nSpearman 0.91" in titles and "conv\nSpearman 0.12" in titles
    assert not any("ρ" in t or "p=" in t for t in titles)
