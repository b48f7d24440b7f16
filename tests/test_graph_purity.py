"""The compiled explain step runs in TensorFlow alone: no Python callbacks (host round trips) in its graph."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import tfxai
from tests import models
from tests.reference import decomposition as reference_decomposition

#: Ops that call back into Python: tf.py_function (EagerPyFunc), tf.numpy_function and
#: tf.compat.v1.py_func (PyFunc, PyFuncStateless).
HOST_OPS = {"PyFunc", "PyFuncStateless", "EagerPyFunc", "NumpyFunction"}


def _tf_functions(value, seen=None):
    """Every tf.function reachable from an explainer's attributes (dicts, lists and nested objects)."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return []
    seen.add(id(value))
    if isinstance(value, tf.types.experimental.PolymorphicFunction):
        return [value]
    if isinstance(value, dict):
        children = list(value.values())
    elif isinstance(value, (list, tuple)):
        children = list(value)
    elif isinstance(value, (tfxai.decomposition.Decomposition, tfxai.explainers.base.Explainer, tfxai._runtime.Runtime)):
        children = list(vars(value).values())
    else:
        return []
    found = []
    for child in children:
        found.extend(_tf_functions(child, seen))
    return found


def op_types(concrete) -> dict:
    """``{op type: [node names]}`` of a concrete function's graph and of every function in its library.

    The library holds the bodies of while loops and conds (and functions they
    call), so nested ops are included.
    """
    types: dict = {}
    for op in concrete.graph.get_operations():
        types.setdefault(op.type, []).append(op.name)
    for function in concrete.graph.as_graph_def().library.function:
        for node in function.node_def:
            types.setdefault(node.op, []).append(f"{function.signature.name}/{node.name}")
    return types


def _explainers():
    small = models.small_cnn()
    return {
        "GradCAM": (lambda: tfxai.GradCAM(small, batch_size=2), (16, 16, 3), "float32"),
        "InputXGradient": (lambda: tfxai.InputXGradient(small, batch_size=2), (16, 16, 3), "float32"),
        # BatchNormalization, ReLU6 and conv+ReLU sites: every path of the site statistics
        "TGrad": (lambda: tfxai.TGrad(reference_decomposition.small_bn_cnn(), batch_size=2), (12, 12, 3), "float64"),
        "FullGrad": (lambda: tfxai.FullGrad(reference_decomposition.small_bn_cnn(), batch_size=2), (12, 12, 3), "float64"),
    }


@pytest.mark.parametrize("name", ["GradCAM", "InputXGradient", "TGrad", "FullGrad"])
def test_explain_step_has_no_host_round_trip(float64, name):
    build, shape, dtype = _explainers()[name]
    explainer = build()
    images = np.random.default_rng(0).uniform(-1, 1, size=(3, *shape)).astype(dtype)
    explainer(images)  # trace the explain step
    functions = _tf_functions(explainer)
    assert functions, "no compiled function found on the explainer"
    checked = 0
    for function in functions:
        for concrete in [function.get_concrete_function()]:  # explain steps have an input signature
            types = op_types(concrete)
            assert "While" in types or "StatelessWhile" in types or any("while" in n for v in types.values() for n in v)
            host = {t: types[t] for t in HOST_OPS if t in types}
            assert not host, f"{name}: ops that call Python: {host}"
            checked += 1
    assert checked >= 1


def test_checker_finds_a_numpy_function_inside_a_while_loop():
    """Positive control: a numpy_function nested in a while body is found."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def impure(x):
        return tf.while_loop(
            lambda i, v: i < 2,
            lambda i, v: (i + 1, tf.reshape(tf.numpy_function(lambda a: a * 2, [v], tf.float32), tf.shape(v))),
            (tf.constant(0), x),
        )[1]

    concrete = impure.get_concrete_function()
    assert not HOST_OPS & {op.type for op in concrete.graph.get_operations()}  # only in the loop body
    assert HOST_OPS & set(op_types(concrete))
