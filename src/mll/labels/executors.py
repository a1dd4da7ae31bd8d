"""Executors run labelling jobs (model id, image ids) through :func:`label_shard`.

``local`` runs them in this process, one model at a time (torch uses every core); ``ray`` ships
each job as a task to a Ray cluster (a local one by default), each worker writing its own shards.
Both leave exactly the same files.

A model that fails (a damaged artifact, a graph onnxruntime cannot run) is recorded with its
reason and the run goes on with the others: one broken upload must not stop a hub's labelling.
Each executor returns the seconds spent per model and the failure per failed model.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from .._io import progress
from .._registry import Registry
from ..errors import MLLError, first_line
from .kernel import label_shard

logger = logging.getLogger(__name__)

Jobs = list[tuple[str, list[str]]]  # (model id, image ids)
Outcome = tuple[dict[str, float], dict[str, str]]  # seconds per model, reason per failed model
executors: Registry[Callable[..., Callable[..., Outcome]]] = Registry("executor")


def failure_reason(exc: BaseException) -> str:
    """One line for a model's failure: mll's own message, or the exception's kind and first line.

    The full traceback goes to the debug log (``mll -vv label``), where a bug in mll shows itself.
    """
    logger.debug("labelling failed", exc_info=exc)
    if isinstance(exc, MLLError) or not str(exc).strip():
        return first_line(exc)
    return f"{type(exc).__name__}: {first_line(exc)}"


@executors.register("local")
def local_executor(address: str | None = None):
    """in this process, one model at a time"""
    def run(hub_dir: str, db: str | None, jobs: Jobs, show_progress: bool | None,
            corpus_version: str) -> Outcome:
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
        total = sum(len(ids) for _, ids in jobs)
        bar = progress(range(total), f"labelling {len(jobs)} batches", total=total,
                       disable=None if show_progress is None else not show_progress)
        seconds: dict[str, float] = {}
        failed: dict[str, str] = {}
        for model_id, ids in sorted(jobs):
            if model_id not in failed:  # a failed model's other batches would fail the same way
                try:
                    _, took = label_shard(hub_dir, db, model_id, ids, corpus_version)
                    seconds[model_id] = seconds.get(model_id, 0.0) + took
                except Exception as exc:  # noqa: BLE001 - any model failure is reported, not fatal
                    failed[model_id] = failure_reason(exc)
            for _ in range(len(ids)):
                next(bar, None)
        for _ in bar:
            pass
        return seconds, failed

    return run


@executors.register("ray")
def ray_executor(address: str | None = None):
    """as tasks on a Ray cluster (--address, or a local one)"""
    def run(hub_dir: str, db: str | None, jobs: Jobs, show_progress: bool | None,
            corpus_version: str) -> Outcome:
        if not jobs:
            return {}, {}
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
            pending, seconds, failed = list(refs), {}, {}
            for _ in progress(range(len(pending)), f"labelling {len(jobs)} batches on Ray",
                              disable=None if show_progress is None else not show_progress):
                done, pending = ray.wait(pending, num_returns=1)
                model_id = refs[done[0]]
                try:
                    _, took = ray.get(done[0])
                except Exception as exc:  # noqa: BLE001 - any model failure is reported, not fatal
                    failed.setdefault(model_id, failure_reason(getattr(exc, "cause", None) or exc))
                    continue
                seconds[model_id] = seconds.get(model_id, 0.0) + took
            return seconds, failed
        finally:
            if started:
                ray.shutdown()

    return run


def get_executor(name: str, address: str | None = None):
    return executors.get(name)(address=address)
