"""Independent tasks that write their own result files, spread over local
worker processes or a Ray cluster: what ``python -m evaluation run`` (one
task per method and track) and ``slicq-search`` (one per transform) share.

Locally, the workers are spawned processes, each with its share of the CPUs
(torch's threads and the BLAS libraries' through the environment, so that
numpy's BSSEval work does not oversubscribe the machine either). On Ray,
each task takes one CPU; every node must see the data, the models and the
output folder at the same paths (a shared file system) and have this project
installed. A failing task is reported and costs no other.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable, Sequence

import tqdm

from demix.errors import first_line

#: A task: a label for messages, a module-level function (picklable) and its arguments.
Task = tuple[str, Callable[..., Any], tuple]


def run_tasks(tasks: Sequence[Task], workers: int, ray_address: str | None, done_line: Callable[[Any], str],
              unit: str, log=tqdm.tqdm.write) -> list[str]:
    """Run every task in ``workers`` local processes, or on the Ray cluster at
    ``ray_address``; log ``label: done_line(result)`` as each ends. Returns the
    failures, one line each (``label: Error: message``)."""
    if not tasks:
        return []
    if ray_address:
        return _on_ray(tasks, ray_address, done_line, unit, log)
    from demix.compute import available_cpus

    failures: list[str] = []
    workers = max(1, min(workers, len(tasks)))
    threads = max(1, available_cpus() // workers)
    with _thread_limits(threads), ProcessPoolExecutor(workers, mp_context=get_context("spawn"),
                                                      initializer=_init_worker, initargs=(threads,)) as pool, \
            tqdm.tqdm(total=len(tasks), desc=f"{unit}s", unit=unit) as bar:
        futures = {pool.submit(function, *args): label for label, function, args in tasks}
        for future in as_completed(futures):
            _report(futures[future], future.result, done_line, failures, log)
            bar.update()
    return failures


def _on_ray(tasks: Sequence[Task], address: str, done_line, unit: str, log) -> list[str]:
    import ray

    project = str(Path(__file__).resolve().parents[1])
    ray.init(address=address, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": project, "OMP_NUM_THREADS": "1"}})
    try:
        remote: dict = {}
        pending = {}
        for label, function, args in tasks:
            remote.setdefault(function, ray.remote(num_cpus=1)(function))
            pending[remote[function].remote(*args)] = label
        failures: list[str] = []
        with tqdm.tqdm(total=len(pending), desc=f"{unit}s (ray)", unit=unit) as bar:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                _report(pending.pop(done[0]), lambda: ray.get(done[0]), done_line, failures, log)
                bar.update()
        return failures
    finally:
        ray.shutdown()


def _report(label: str, result: Callable[[], Any], done_line, failures: list[str], log) -> None:
    try:
        log(f"{label}: {done_line(result())}")
    except Exception as error:  # one bad task must not cost the others
        failures.append(f"{label}: {type(error).__name__}: {first_line(error)}")
        log(f"failed: {failures[-1]}")


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


@contextmanager
def _thread_limits(threads: int):
    """BSSEval's numpy/scipy work is multithreaded too: each worker process
    (started while these are set) gets its share of the CPUs, so workers do
    not oversubscribe the machine."""
    names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update({name: str(threads) for name in names})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
