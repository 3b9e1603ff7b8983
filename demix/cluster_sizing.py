"""How many workers a catalogue run starts, and what each asks Ray for.

Kept apart from Ray itself (the driver, :mod:`demix.cluster`, reads the
nodes from ``ray.nodes()``) so the rule is plain to read and test:

* no ``--workers``: one worker per GPU where the run may use GPUs and the
  cluster has them, else one worker per node; each is pinned to its node and
  asks for that node's CPUs (shared among its GPUs' workers), so every CPU
  works and a worker's threads are its node's cores;
* ``--workers N``: N workers, each asking for an equal share of the
  cluster's CPUs (at least one, at most the largest node's, as a worker runs
  on one node) and of its GPUs (at most one), placed by Ray, spread over the
  nodes.

A worker's torch threads are the CPUs Ray gives it
(:meth:`demix.cluster_worker.SeparationWorker.start`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Node:
    """A live node of the cluster and its resources, as ``ray.nodes()`` gives them."""

    node_id: str
    address: str
    cpus: int
    gpus: int


@dataclass(frozen=True)
class WorkerPlace:
    """What one worker asks Ray for: CPUs, GPUs, and its node where it is pinned to one."""

    cpus: int
    gpus: float
    node_id: str | None = None


def nodes_from_ray(entries: list[dict]) -> list[Node]:
    """The live nodes in ``ray.nodes()``'s entries."""
    return [Node(entry["NodeID"], entry.get("NodeManagerAddress", ""),
                 int(entry.get("Resources", {}).get("CPU", 0)), int(entry.get("Resources", {}).get("GPU", 0)))
            for entry in entries if entry.get("Alive")]


def plan_workers(nodes: list[Node], workers: int | None, use_gpus: bool) -> list[WorkerPlace]:
    """The workers to start on ``nodes`` (see the module's docstring)."""
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    if workers is None:
        return _one_per_gpu_or_node(nodes, use_gpus)
    total_cpus = sum(node.cpus for node in nodes)
    largest = max((node.cpus for node in nodes), default=1)
    cpus = max(1, min(largest, total_cpus // workers))
    total_gpus = sum(node.gpus for node in nodes) if use_gpus else 0
    gpus = min(1.0, total_gpus / workers) if total_gpus else 0.0
    return [WorkerPlace(cpus, gpus) for _ in range(workers)]


def _one_per_gpu_or_node(nodes: list[Node], use_gpus: bool) -> list[WorkerPlace]:
    places = []
    with_gpus = use_gpus and any(node.gpus for node in nodes)
    for node in nodes:
        if with_gpus:
            places += [WorkerPlace(max(1, node.cpus // node.gpus) if node.cpus else 0, 1.0, node.node_id)
                       for _ in range(node.gpus)]
        elif node.cpus:
            places.append(WorkerPlace(node.cpus, 0.0, node.node_id))
    return places
