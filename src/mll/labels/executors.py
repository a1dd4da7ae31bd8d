"""Executors run labelling jobs (model id, image ids) through :func:`label_shard`.

``local`` runs them in this process, one model at a time (torch uses every core); ``ray`` ships
each job as a task to a Ray cluster (a local one by default), each worker writing its own shards.
Both leave exactly the same files.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from .._io import progress
from .._registry import Registry
from .kernel import label_shard

logger = logging.getLogger(__name__)

Jobs = list[tuple[str, list[str]]]  # (model id, image ids)
executors: Registry[Callable[..., Callable[..., None]]] = Registry(
    "executor")


@executors.register("local")
def local_executor(address: str | None = None):
    """in this process, one model at a time"""
    def run(hub_dir: str, db: str | None, jobs: Jobs, show_progress: bool | None,
            corpus_version: str) -> dict[str, float]:
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
        total = sum(len(ids) for _, ids in jobs)
        bar = progress(range(total), f"labelling {len(jobs)} batches", total=total,
                       disable=None if show_progress is None else not show_progress)
        seconds: dict[str, float] = {}
        for model_id, ids in sorted(jobs):
            _, took = label_shard(hub_dir, db, model_id, ids, corpus_version)
            seconds[model_id] = seconds.get(model_id, 0.0) + took
            for _ in range(len(ids)):
                next(bar, None)
        for _ in bar:
            pass
        return seconds

    return run


@executors.register("ray")
def ray_executor(address: str | None = None):
    """as tasks on a Ray cluster (--address, or a local one)"""
    def run(hub_dir: str, db: str | None, jobs: Jobs, show_progress: bool | None,
            corpus_version: str) -> dict[str, float]:
        if not jobs:
            return {}
        import ray

        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        started = not ray.is_initialized()
        if started:
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False,
                         log_to_driver=False, _node_ip_address="127.0.0.1")
        try:
            task = ray.remote(num_cpus=1, max_retries=2)(label_shard)
            refs = {task.remote(hub_dir, db, m, ids, corpus_version): m for m, ids in jobs}
            pending, seconds = list(refs), {}
            for _ in progress(range(len(pending)), f"labelling {len(jobs)} batches on Ray",
                              disable=None if show_progress is None else not show_progress):
                done, pending = ray.wait(pending, num_returns=1)
                _, took = ray.get(done[0])
                seconds[refs[done[0]]] = seconds.get(refs[done[0]], 0.0) + took
            return seconds
        finally:
            if started:
                ray.shutdown()

    return run


def get_executor(name: str, address: str | None = None):
    return executors.get(name)(address=address)
