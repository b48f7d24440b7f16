"""ROAD: RemOve And Debias (Rong, Leemann, Borisov, Kasneci, Kasneci 2022).

Perturbation curves like deletion/insertion, but removed pixels are *imputed*
from their neighbours instead of being set to a substrate, so the class
information does not leak through the shape of the removed region.

**Noisy linear imputation** (the authors' ``NoisyLinearImputer``): every
removed pixel ``i`` takes the weighted mean of its 8 neighbours that lie in
the image, edge neighbours with weight 1/6 and diagonal ones 1/12::

    D_i x_i - sum_{j removed} w_ij x_j = sum_{j kept} w_ij v_j,   D_i = sum_{j in image} w_ij

one sparse linear system per image, channel and removal fraction, whose
unknowns are the removed pixels. It is symmetric and, as long as some pixel is
kept, positive definite (every connected removed region touches a kept pixel),
so tfxai solves it in TensorFlow with conjugate gradients, matrix-free (the
neighbour sum is two 3-tap passes), preconditioned by one geometric multigrid
V-cycle (:func:`multigrid`), until the relative residual ``||b - A x|| /
||b||`` of every system is below `tolerance` (or `max_iterations`; the largest
residual reached is returned). At the default ``1e-5`` on 224x224 images in
[0, 1] (9 percentages, MoRF and LeRF of a smooth map) the imputed pixels are
within 6e-4 of the exact solution after about 70 iterations (Jacobi
preconditioning: about 580 iterations, 3x the time), below the added noise.
Then Gaussian noise of standard deviation ``noise * (high - low)`` of the
adapter's input range is added to the imputed pixels. The authors add
``0.01 * N(0, 1)`` to ImageNet-normalised images (std ~0.225), about
``0.0025`` of the ``[0, 1]`` range: the default.

**Orders**: MoRF removes the given percentage of most relevant pixels (low
curve = good map), LeRF the least relevant ones (high curve = good map).
Pixels are ranked as in :func:`tfxai.metrics.pixel_ranks` (stable sort, ties in
row-major order); ``round(percent / 100 * H * W)`` pixels are removed.

Relation to pytorch-grad-cam's ``metrics/road.py`` (a copy of the authors'
imputer): its ``ROADMostRelevantFirst(percentile)`` *keeps* the pixels below
the ``percentile``-th percentile (it removes ``100 - percentile`` percent),
returns the change of the raw model output (usually a logit) with respect to
the clean image, and ``ROADCombined = (LeRF - MoRF) / 2`` averaged over
percentiles 10..90. tfxai returns the scores themselves (probability by
default), indexed by the removed percentage, and the same combination in
:attr:`ROADResult.combined` (differences of averages cancel the clean score).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np
import tensorflow as tf

from tfxai import _batching, _runtime, _validation
from tfxai.adapter import adapt
from tfxai.errors import InvalidInputError, InvalidTypeError
from tfxai.metrics.perturbation import pixel_ranks
from tfxai.metrics._common import check_maps

ORDERS = ("morf", "lerf")
#: (dy, dx) -> weight of the neighbours (the authors' ``neighbors_weights``).
NEIGHBOUR_WEIGHTS = np.array([[1 / 12, 1 / 6, 1 / 12], [1 / 6, 0.0, 1 / 6], [1 / 12, 1 / 6, 1 / 12]])


class ROADResult(NamedTuple):
    """ROAD curves of a batch of maps.

    Attributes:
        percentages: ``(P,)`` removed percentages.
        morf: ``(N, P)`` target score after removing the most relevant pixels (None if not asked).
        lerf: ``(N, P)`` target score after removing the least relevant pixels (None if not asked).
        morf_auc: ``(N,)`` mean of the MoRF curve over the percentages (lower is better).
        lerf_auc: ``(N,)`` mean of the LeRF curve (higher is better).
        combined: ``(N,)`` ``(lerf_auc - morf_auc) / 2`` (higher is better), when both orders are computed.
        targets: ``(N,)`` explained classes.
        residual: the largest relative residual of the imputation solves.
    """

    percentages: np.ndarray
    morf: np.ndarray | None
    lerf: np.ndarray | None
    morf_auc: np.ndarray | None
    lerf_auc: np.ndarray | None
    combined: np.ndarray | None
    targets: np.ndarray
    residual: float


def _neighbour_sum(x: tf.Tensor) -> tf.Tensor:
    """``sum_j w_ij x_j`` over the in-image 8-neighbours of every pixel of ``(R, H, W, C)``.

    The weights are separable: ``([1, 2, 1]^T [1, 2, 1] - 4 delta) / 12``, two
    3-tap passes over the zero-padded image (out-of-image neighbours count 0).
    """
    padded = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
    rows = padded[:, :-2] + 2.0 * padded[:, 1:-1] + padded[:, 2:]
    both = rows[:, :, :-2] + 2.0 * rows[:, :, 1:-1] + rows[:, :, 2:]
    return (both - 4.0 * x) / 12.0


def linear_imputation(images: tf.Tensor, removed: tf.Tensor, *, tolerance: float = 1e-5,
                      max_iterations: int | None = None) -> tuple[tf.Tensor, tf.Tensor]:
    """Fill the `removed` pixels of `images` by the linear system of the module docstring (no noise).

    Args:
        images: ``(R, H, W, C)`` float images.
        removed: ``(R, H, W)`` booleans, True where a pixel is removed.
        tolerance: stop when every system's relative residual is below it.
        max_iterations: conjugate-gradient iterations at most (default ``4 * (H + W) + 100``).

    Returns:
        ``(imputed images (R, H, W, C), relative residuals (R, C))``. Pure TensorFlow.
    """
    hole = tf.cast(removed, images.dtype)[..., None]  # (R, H, W, 1)
    x, residual, _ = conjugate_gradients(images, hole, tf.zeros_like(images), tolerance, max_iterations)
    return (1.0 - hole) * images + hole * x, residual


def _apply(x: tf.Tensor, hole: tf.Tensor, degree: tf.Tensor) -> tf.Tensor:
    """``A x`` on the removed pixels (`x` is 0 on the kept ones)."""
    return hole * (degree * x - _neighbour_sum(x))


def _degree(height: int, width: int, dtype: tf.DType) -> tf.Tensor:
    """``(1, H, W, 1)`` sum of the weights of each pixel's in-image neighbours."""
    return _neighbour_sum(tf.ones([1, height, width, 1], dtype))


def _jacobi(r: tf.Tensor, e: tf.Tensor, hole: tf.Tensor, degree: tf.Tensor, sweeps: int) -> tf.Tensor:
    for _ in range(sweeps):
        e = e + hole * (r - _apply(e, hole, degree)) / degree
    return e


def multigrid(r: tf.Tensor, hole: tf.Tensor, sweeps: int = 1) -> tf.Tensor:
    """One V-cycle for ``A e = r``: an approximate inverse of ``A``, symmetric positive definite.

    Jacobi smoothing (`sweeps` before and after; 1 was fastest at 224x224), the residual summed over
    2x2 blocks to the grid of half the size (a coarse pixel is unknown when
    any of its pixels is removed; the same 8-neighbour system there, which for
    smooth errors equals the Galerkin product ``P^T A P``), the correction
    repeated back over each block (``P``, so the restriction is ``P^T``); below
    8 pixels, 20 Jacobi sweeps. Used as the conjugate-gradient preconditioner.
    """
    height, width = int(r.shape[1]), int(r.shape[2])
    degree = _degree(height, width, r.dtype)
    if min(height, width) < 8:
        return _jacobi(r, tf.zeros_like(r), hole, degree, 20)
    e = _jacobi(r, tf.zeros_like(r), hole, degree, sweeps)
    residual = hole * (r - _apply(e, hole, degree))
    pad = [[0, 0], [0, height % 2], [0, width % 2], [0, 0]]
    coarse_r = 4.0 * tf.nn.avg_pool2d(tf.pad(residual, pad), 2, 2, "VALID")
    coarse_hole = tf.nn.max_pool2d(tf.pad(hole, pad), 2, 2, "VALID")
    coarse_e = multigrid(coarse_r, coarse_hole, sweeps)
    fine = tf.repeat(tf.repeat(coarse_e, 2, axis=1), 2, axis=2)[:, :height, :width]
    e = e + hole * fine
    return _jacobi(r, e, hole, degree, sweeps)


def conjugate_gradients(images: tf.Tensor, hole: tf.Tensor, start: tf.Tensor, tolerance: float,
                        max_iterations: int | None, preconditioner: str = "multigrid",
                        ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Preconditioned CG for the removed pixels (`hole` ``(R, H, W, 1)``, 1 = removed) from `start`.

    `preconditioner`: ``"multigrid"`` (one :func:`multigrid` V-cycle, tens of
    iterations at 224x224) or ``"jacobi"`` (``1 / D``, hundreds).
    Returns ``(x on the removed pixels (0 elsewhere), relative residuals (R, C), iterations)``.
    """
    height, width = int(images.shape[1]), int(images.shape[2])
    if max_iterations is None:
        max_iterations = 4 * (height + width) + 100
    degree = _degree(height, width, images.dtype)

    def apply(x: tf.Tensor) -> tf.Tensor:
        return _apply(x, hole, degree)

    def precondition(r: tf.Tensor) -> tf.Tensor:
        return multigrid(r, hole) if preconditioner == "multigrid" else r / degree

    def dot(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
        return tf.reduce_sum(a * b, axis=[1, 2], keepdims=True)  # (R, 1, 1, C)

    b = hole * _neighbour_sum((1.0 - hole) * images)
    b_norm = tf.sqrt(dot(b, b))

    def residual(r: tf.Tensor) -> tf.Tensor:
        return tf.math.divide_no_nan(tf.sqrt(dot(r, r)), b_norm)

    x = hole * start
    r = b - apply(x)
    z = precondition(r)
    p = z
    rz = dot(r, z)

    def cond(i, x, r, p, rz, norm):
        return (i < max_iterations) & tf.reduce_any(norm > tolerance)

    def body(i, x, r, p, rz, norm):
        active = norm > tolerance  # converged systems are frozen (no 0/0 once r vanishes)
        ap = apply(p)
        alpha = tf.where(active, tf.math.divide_no_nan(rz, dot(p, ap)), 0.0)
        x = x + alpha * p
        r = r - alpha * ap
        z = precondition(r)
        rz_new = dot(r, z)
        p = z + tf.math.divide_no_nan(rz_new, rz) * p  # frozen systems: alpha = 0 keeps x, r and rz
        return i + 1, x, r, p, rz_new, residual(r)

    iterations, x, _, _, _, _ = tf.while_loop(cond, body, (tf.constant(0), x, r, p, rz, residual(r)))
    true_residual = residual(b - apply(x))  # recomputed, not the recursion's estimate
    return x, true_residual[:, 0, 0, :], iterations


def noisy_linear_imputation(images: tf.Tensor, removed: tf.Tensor, noise_std: float, seeds: tf.Tensor, *,
                            tolerance: float = 1e-5, max_iterations: int | None = None) -> tuple[tf.Tensor, tf.Tensor]:
    """:func:`linear_imputation` plus ``noise_std * N(0, 1)`` on the removed pixels; `seeds` ``(R, 2)`` int32."""
    imputed, residual = linear_imputation(images, removed, tolerance=tolerance, max_iterations=max_iterations)
    shape = tf.shape(images)[1:]
    noise = tf.map_fn(lambda s: tf.random.stateless_normal(shape, s, dtype=images.dtype), seeds,
                      fn_output_signature=images.dtype)
    return imputed + noise_std * tf.cast(removed, images.dtype)[..., None] * noise, residual


def road(
    model: Any,
    images: Any,
    maps: Any,
    targets: Any = None,
    *,
    percentages: Sequence[float] = (10, 20, 30, 40, 50, 60, 70, 80, 90),
    orders: Sequence[str] = ORDERS,
    noise: float = 0.0025,
    tolerance: float = 1e-5,
    max_iterations: int | None = None,
    output: str = "probability",
    seed: int = 0,
    batch_size: int = 32,
) -> ROADResult:
    """ROAD curves (MoRF and/or LeRF) of `maps` at the removed `percentages` (see the module docstring).

    Args:
        model: the classifier or a :class:`~tfxai.adapter.ModelAdapter` (never modified).
        images: ``(N, H, W, C)`` in the model's input space.
        maps: ``(N, H, W)`` saliency maps (smaller maps are upsampled bilinearly).
        targets: None (each image's predicted class), an int or N ints.
        percentages: removed percentages, each in (0, 100).
        orders: ``("morf", "lerf")`` or one of them.
        noise: noise standard deviation as a fraction of the input range (0: no noise).
        tolerance: relative residual of the imputation solves.
        max_iterations: conjugate-gradient iterations at most (default ``4 (H + W) + 100``).
        output: ``"probability"`` (default) or ``"logit"``.
        seed: seed of the imputation noise (row ``(order, percentage)`` draws depend only on it).
        batch_size: imputed images per model call (and per linear solve).

    Returns:
        :class:`ROADResult`.
    """
    adapter = adapt(model)
    runtime = adapter.runtime(_validation.check_positive_int(batch_size, "batch_size"))
    images = runtime.images(images)
    output = _validation.check_choice(output, "output", _runtime.OUTPUTS)
    if isinstance(orders, str):
        orders = (orders,)
    orders = tuple(_validation.check_choice(o, "orders", ORDERS) for o in orders)
    if not orders:
        raise InvalidInputError("`orders` is empty; pass ('morf', 'lerf') or one of them.")
    try:
        percents = np.asarray(percentages, np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise InvalidTypeError(f"`percentages` must be numbers in (0, 100). Received: {percentages!r}.") from None
    if percents.size == 0 or np.any(~np.isfinite(percents)) or np.any((percents <= 0) | (percents >= 100)):
        raise InvalidInputError(f"`percentages` must be numbers strictly between 0 and 100. Received: {percentages!r}.")
    noise = _validation.check_non_negative_float(noise, "noise")
    tolerance = _validation.check_non_negative_float(tolerance, "tolerance")
    if max_iterations is not None:
        max_iterations = _validation.check_positive_int(max_iterations, "max_iterations")
    seed = _validation.check_seed(seed) or 0
    n, height, width = int(images.shape[0]), int(images.shape[1]), int(images.shape[2])
    maps = check_maps(maps, images)
    parsed = runtime.targets(targets, n)
    counts, scores_fn = road_scores_fn(adapter, (height, width), percentages=percents, orders=orders, noise=noise,
                                       tolerance=tolerance, max_iterations=max_iterations, output=output,
                                       batch_size=batch_size)

    def body(images: tf.Tensor, maps: tf.Tensor, targets: tf.Tensor, seed_pair: tf.Tensor) -> Any:
        targets = runtime.resolve(images, targets)
        scores, residual = scores_fn(images, maps, targets, seed_pair)
        return scores, residual, targets

    key = ("road", tuple(counts.tolist()), orders, noise, tolerance, max_iterations, output)
    fn = runtime.compiled(key, body, images, maps, tf.constant(parsed), seed=True)
    scores, residual, resolved = fn(images, maps, tf.constant(parsed), runtime.seed(seed))
    scores = scores.numpy().astype(np.float64).reshape(n, len(orders), len(counts))
    curves = {o: scores[:, i] for i, o in enumerate(orders)}
    morf, lerf = curves.get("morf"), curves.get("lerf")
    morf_auc = None if morf is None else morf.mean(axis=1)
    lerf_auc = None if lerf is None else lerf.mean(axis=1)
    combined = None if morf is None or lerf is None else (lerf_auc - morf_auc) / 2
    return ROADResult(percents, morf, lerf, morf_auc, lerf_auc, combined, resolved.numpy(), float(residual))


__all__ = ["road", "ROADResult", "linear_imputation", "noisy_linear_imputation", "conjugate_gradients", "multigrid",
           "NEIGHBOUR_WEIGHTS"]


def road_scores_fn(adapter: Any, size: tuple, *, percentages: Sequence[float], orders: Sequence[str], noise: float,
                   tolerance: float, max_iterations: int | None, output: str, batch_size: int) -> tuple:
    """The in-graph ROAD core: ``(counts, fn)``, ``fn(images, maps, targets, seed_pair) -> (scores, worst residual)``.

    `targets` are resolved class indices; ``scores`` is ``(N, len(orders) * len(percentages))``, row
    ``k`` of an image being order ``k // P`` and percentage ``k % P``. Shared by :func:`road` and the
    evaluation runner (which runs it inside its compiled, distributed score step).
    """
    height, width = size
    counts = np.round(np.asarray(percentages, np.float64) / 100.0 * height * width).astype(np.int32)
    row_counts = tf.constant(np.tile(counts, len(orders)), tf.int32)
    row_lerf = tf.constant(np.repeat([o == "lerf" for o in orders], len(counts)))
    rows_per_image = len(orders) * len(counts)
    low, high = adapter.input_range
    noise_std = noise * (high - low)

    def fn(images: tf.Tensor, maps: tf.Tensor, targets: tf.Tensor, seed_pair: tf.Tensor) -> tuple:
        ranks = tf.reshape(pixel_ranks(maps), [-1, height, width])

        def row(image_index: tf.Tensor, k: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            count = tf.gather(row_counts, k)[:, None, None]
            rank = tf.gather(ranks, image_index)
            removed = tf.where(tf.gather(row_lerf, k)[:, None, None], rank >= height * width - count, rank < count)
            seeds = tf.map_fn(lambda j: _runtime.row_seed(seed_pair, j), k)
            imputed, residual = noisy_linear_imputation(
                tf.gather(images, image_index), removed, noise_std, seeds, tolerance=tolerance,
                max_iterations=max_iterations,
            )
            score = adapter.scores(adapter.logits(imputed), tf.gather(targets, image_index), output)
            onehot = tf.one_hot(k, rows_per_image, dtype=images.dtype)
            worst = tf.reduce_max(residual, axis=-1)
            return onehot * score[:, None], onehot * tf.cast(worst, images.dtype)[:, None]

        spec = (tf.TensorSpec([rows_per_image], images.dtype), tf.TensorSpec([rows_per_image], images.dtype))
        scores, residuals = _batching.accumulate_rows(row, tf.shape(images)[0], rows_per_image, batch_size, spec)
        return scores, tf.reduce_max(residuals)

    return counts, fn
