"""Every private Keras call tfxai makes, in one module.

Keras 3 runs a functional graph with private methods only (its own public
``keras.models.clone_model`` is built on them). tfxai reads and replays graphs
through the few functions below and nowhere else; ``tests/test_keras_graph.py``
exercises each on the installed Keras, and ``setup.cfg`` pins the versions they
were checked on (``keras>=3.10,<3.17``; ``tests/test_keras_graph.py``,
``test_surgery.py``, ``test_decomposition.py`` and ``test_adapter.py`` pass on
Keras 3.10.0 and 3.15.1). A Keras release that renames one of them breaks that
test, not a user's explanation.

* :func:`functional_graph`: the functional graph behind a Sequential
  (``model._functional``) or functional model (``_nodes_by_depth`` and
  ``_run_through_graph``).
* :func:`nodes_in_order`: the graph's operation nodes in execution order
  (``_nodes_by_depth``).
* :func:`node_inputs`, :func:`node_outputs`: a node's input and output
  KerasTensors (``Node.input_tensors``, ``Node.outputs``).
* :func:`run_through_graph`: run a graph, calling a function for every
  operation (``_run_through_graph``).
* :func:`takes_training`: whether a layer's ``call`` takes ``training``
  (``_call_has_training_arg``, with the call signature as the fallback).

The activation-free view of a layer (:func:`tfxai.surgery.linear_view`) needs
no private call: it runs the layer class's own ``call`` on a proxy whose
``activation`` is linear.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Iterator

import keras


def functional_graph(model: Any) -> Any:
    """The functional graph of `model`: itself (functional), ``_functional`` (Sequential), else None.

    A Sequential model without an input shape has no graph yet: ``None`` is
    returned for it too; :func:`is_unbuilt_sequential` tells the two apart.
    """
    if isinstance(model, keras.Sequential):
        return getattr(model, "_functional", None)
    if isinstance(model, keras.Model) and hasattr(model, "_nodes_by_depth") and hasattr(model, "_run_through_graph"):
        return model
    return None


def is_unbuilt_sequential(model: Any) -> bool:
    """True for a Sequential model that has no functional graph yet (no input shape)."""
    return isinstance(model, keras.Sequential) and getattr(model, "_functional", None) is None


def nodes_in_order(graph: Any) -> Iterator[Any]:
    """The operation nodes of `graph` in execution order (input nodes left out)."""
    for depth in sorted(graph._nodes_by_depth, reverse=True):
        for node in graph._nodes_by_depth[depth]:
            if node.operation is not None and not node.is_input:
                yield node


def node_inputs(node: Any) -> list:
    """The KerasTensors `node` consumes, flattened in call order."""
    return list(node.input_tensors)


def node_outputs(node: Any) -> list:
    """The KerasTensors `node` produces, flattened."""
    return list(node.outputs)


def run_through_graph(graph: Any, inputs: Any, call_fn: Callable[..., Any]) -> Any:
    """Run `graph` on `inputs`, calling ``call_fn(operation, *args, **kwargs)`` for each operation node."""
    return graph._run_through_graph(inputs, operation_fn=lambda op: op, call_fn=call_fn)


def takes_training(layer: Any) -> bool:
    """Whether ``layer.call`` accepts a ``training`` argument."""
    flag = getattr(layer, "_call_has_training_arg", None)
    if isinstance(flag, bool):
        return flag
    try:
        return "training" in inspect.signature(layer.call).parameters
    except (TypeError, ValueError, AttributeError):  # pragma: no cover - not a Keras layer
        return False
