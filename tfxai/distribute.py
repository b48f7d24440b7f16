"""Data parallelism with TensorFlow's own engine: strategies, ``TF_CONFIG``, sharding, graph checks.

tfxai runs its evaluation and folder-explanation steps through
``strategy.run`` inside compiled `tf.function`\\ s, so every replica of a
`tf.distribute` strategy computes at once and per-method sums are reduced with
``strategy.reduce``:

* ``strategy_from_name("none")``: the default (one-device) strategy;
* ``strategy_from_name("mirrored")``: `tf.distribute.MirroredStrategy` over the
  local GPUs (or the given devices);
* ``strategy_from_name("multi-worker")``: `tf.distribute.MultiWorkerMirroredStrategy`
  built from the ``TF_CONFIG`` environment variable, as TensorFlow defines it::

      TF_CONFIG='{"cluster": {"worker": ["host0:12345", "host1:12345"]},
                  "task": {"type": "worker", "index": 0}}'

  Every worker runs the same command with its own ``task.index``; worker 0 is
  the chief (it writes the outputs). A ``"chief"`` job in the cluster is also
  accepted (it is then worker 0 of the data shards).

:func:`host_round_trips` lists the operations of a traced function (while-loop
bodies included, through the function library) that would bring tensors back
to Python (``py_function``, ``numpy_function``): none may appear in a compiled
step, so the step runs on a GPU without leaving it.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Iterable

import tensorflow as tf

from tfxai.errors import InvalidInputError

STRATEGIES = ("none", "mirrored", "multi-worker")

#: Operations that call back into Python (a host round trip inside a graph).
HOST_OPS = frozenset({"PyFunc", "PyFuncStateless", "EagerPyFunc"})


# ----------------------------------------------------------------------------- TF_CONFIG
def read_tf_config(environ: dict | None = None) -> dict:
    """The parsed and checked ``TF_CONFIG`` (``{"cluster": ..., "task": ...}``).

    Raises:
        InvalidInputError: when ``TF_CONFIG`` is missing, not JSON, or its task
            is not one of the cluster's.
    """
    environ = os.environ if environ is None else environ
    text = environ.get("TF_CONFIG")
    example = (
        'TF_CONFIG=\'{"cluster": {"worker": ["host0:12345", "host1:12345"]}, "task": {"type": "worker", "index": 0}}\''
    )
    if not text:
        raise InvalidInputError(f"--strategy multi-worker needs the TF_CONFIG environment variable on every worker, e.g. {example}.")
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidInputError(f"TF_CONFIG is not valid JSON ({error}); expected e.g. {example}.") from None
    cluster, task = config.get("cluster"), config.get("task")
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise InvalidInputError(f"TF_CONFIG needs a 'cluster' and a 'task' entry; received {text!r}. Example: {example}.")
    kind, index = task.get("type"), task.get("index")
    jobs = {job: list(hosts) for job, hosts in cluster.items() if job in ("chief", "worker")}
    if kind not in jobs or not isinstance(index, int) or not 0 <= index < len(jobs[kind]):
        raise InvalidInputError(
            f"TF_CONFIG task {task!r} is not in its cluster {cluster!r}: 'type' must be 'worker' (or 'chief') and "
            "'index' a position in that job's list of host:port addresses."
        )
    return config


def tf_config_worker(config: dict) -> tuple[int, int]:
    """``(worker index, number of workers)`` of a ``TF_CONFIG``; the chief (if any) is worker 0."""
    cluster, task = config["cluster"], config["task"]
    chiefs = len(cluster.get("chief", []))
    workers = chiefs + len(cluster.get("worker", []))
    index = task["index"] if task["type"] == "chief" else chiefs + task["index"]
    return index, workers


# ----------------------------------------------------------------------------- strategies
def strategy_from_name(name: str | None, devices: Iterable[str] | None = None) -> tf.distribute.Strategy:
    """A strategy from its command-line name (see the module docstring)."""
    name = "none" if name is None else str(name).strip().lower().replace("_", "-")
    if name in ("none", "default"):
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(list(devices) if devices else None)
    if name in ("multi-worker", "multiworker"):
        read_tf_config()  # clear errors before TensorFlow's
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise InvalidInputError(f"Unknown strategy {name!r}; choose from {', '.join(STRATEGIES)}.")


def resolve(strategy: tf.distribute.Strategy | None) -> tf.distribute.Strategy:
    """`strategy`, or TensorFlow's current (default) strategy when None."""
    if strategy is None:
        return tf.distribute.get_strategy()
    if not isinstance(strategy, tf.distribute.Strategy):
        raise InvalidInputError(f"`strategy` must be a tf.distribute.Strategy or None; received {type(strategy).__name__}.")
    return strategy


def strategy_name(strategy: tf.distribute.Strategy) -> str:
    """``"none"``, ``"mirrored"``, ``"multi-worker"`` or the class name of another strategy."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return "multi-worker"
    if isinstance(strategy, tf.distribute.MirroredStrategy):
        return "mirrored"
    if not tf.distribute.has_strategy() and strategy is tf.distribute.get_strategy():
        return "none"
    return type(strategy).__name__


def num_workers(strategy: tf.distribute.Strategy) -> int:
    """Number of worker processes of `strategy` (1 for local strategies)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return 1
    spec = resolver.cluster_spec().as_dict()
    return max(1, len(spec.get("chief", [])) + len(spec.get("worker", [])))


def worker_index(strategy: tf.distribute.Strategy) -> int:
    """This process's worker index (0 = chief) in `strategy`'s cluster."""
    if num_workers(strategy) == 1:
        return 0
    resolver = strategy.cluster_resolver
    spec = resolver.cluster_spec().as_dict()
    if resolver.task_type == "chief":
        return int(resolver.task_id)
    return len(spec.get("chief", [])) + int(resolver.task_id)


def per_replica_batch(strategy: tf.distribute.Strategy, batch_size: int) -> int:
    """Images per replica per step for a global `batch_size` (at least 1; rounded up)."""
    return max(1, math.ceil(batch_size / strategy.num_replicas_in_sync))


def distribute(strategy: tf.distribute.Strategy, dataset: tf.data.Dataset, batch_size: int, shard: bool = True):
    """`dataset` (unbatched) batched per replica and distributed over `strategy`'s replicas.

    With several workers and `shard`, worker ``i`` of ``N`` reads elements ``i,
    i + N, i + 2N, ...`` (each element exactly once, also when the count does
    not divide). Steps stay in lock-step across workers: a worker that runs out
    of data gets empty batches until every worker is done (TensorFlow's
    partial-batch handling), so collective reductions never wait forever.
    """
    per_replica = per_replica_batch(strategy, batch_size)

    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        data = dataset
        if shard and context.num_input_pipelines > 1:
            data = data.shard(context.num_input_pipelines, context.input_pipeline_id)
        return data.batch(per_replica).prefetch(tf.data.AUTOTUNE)

    return strategy.distribute_datasets_from_function(dataset_fn)


def local_results(strategy: tf.distribute.Strategy, value: Any) -> list:
    """This worker's per-replica components of a (nest of) distributed value(s), in replica order."""
    return list(strategy.experimental_local_results(value))


# ----------------------------------------------------------------------------- graph checks
def graph_ops(function: Any) -> list:
    """``[(function name, op type, node name)]`` of a traced function and every function in its library.

    `function` is a concrete function, a `tf.Graph` or a ``GraphDef``; while-loop
    and cond bodies live in the library and are included.
    """
    if hasattr(function, "graph"):
        function = function.graph
    graph_def = function.as_graph_def() if hasattr(function, "as_graph_def") else function
    ops = [("<main>", node.op, node.name) for node in graph_def.node]
    for fdef in graph_def.library.function:
        ops.extend((fdef.signature.name, node.op, node.name) for node in fdef.node_def)
    return ops


def host_round_trips(function: Any) -> list:
    """The Python-callback operations (``py_function``/``numpy_function``) in a traced function, if any."""
    return [op for op in graph_ops(function) if op[1] in HOST_OPS]
