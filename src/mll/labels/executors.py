"""Executors run labelling jobs (model id, image ids) through :func:`label_shard`.

``local`` runs them in this process, one model at a time (torch uses every core); ``ray`` ships
each job as a task to a Ray cluster, each worker writing its own shard. The cluster is the one at
``address`` (``--ray-address``, else ``RAY_ADDRESS``): any number of nodes started with ``ray start``
that reach the hub directory and database; without an address, a single-node cluster in this
process. Tasks are spread over the nodes, one CPU each. A task whose worker or node dies is
retried elsewhere by Ray (``TASK_RETRIES`` times); a shard already written is never recomputed,
since the engine only queues images without outputs. Both executors leave exactly the same files.

A model that fails (a damaged artifact, a graph onnxruntime cannot run) is recorded with its
reason and the run goes on with the others: one broken upload must not stop a hub's labelling.
Each executor returns the seconds spent per model and the failure per failed model.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from .._io import progress
from .._registry import Registry
from ..errors import (
    ExternalServiceError,
    InvalidParameterError,
    MissingDependencyError,
    MLLError,
    first_line,
)
from .kernel import label_shard

logger = logging.getLogger(__name__)

Jobs = list[tuple[str, list[str]]]  # (model id, image ids)
#: Times Ray runs a task again after its worker process or node died (not after a model's error).
TASK_RETRIES = 3


@dataclass
class Outcome:
    """What an executor did: seconds per model, the reason per failed model, work per node."""

    seconds: dict[str, float] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    #: node name -> {"tasks": shards written there, "images": sample images they held}
    nodes: dict[str, dict[str, int]] = field(default_factory=dict)

    def done(self, model_id: str, took: float, node: str, images: int) -> None:
        self.seconds[model_id] = self.seconds.get(model_id, 0.0) + took
        count = self.nodes.setdefault(node, {"tasks": 0, "images": 0})
        count["tasks"] += 1
        count["images"] += images


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
        out = Outcome()
        for model_id, ids in sorted(jobs):
            if model_id not in out.failed:  # a failed model's other batches would fail alike
                try:
                    _, took = label_shard(hub_dir, db, model_id, ids, corpus_version)
                    out.done(model_id, took, "local", len(ids))
                except Exception as exc:  # noqa: BLE001 - any model failure is reported, not fatal
                    out.failed[model_id] = failure_reason(exc)
            for _ in range(len(ids)):
                next(bar, None)
        for _ in bar:
            pass
        return out

    return run


def ray_address(address: str | None) -> str | None:
    """The Ray cluster to use: ``address``, else ``RAY_ADDRESS``, else None (start one here);
    a malformed address is refused before connecting."""
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address is None or address == "auto":
        return address
    if not re.fullmatch(r"(ray://)?[A-Za-z0-9._-]+:[0-9]{1,5}", address):
        raise InvalidParameterError(f"--ray-address must be HOST:PORT (the head's GCS port, as "
                                    f"'ray start --head' prints), 'auto' or ray://HOST:PORT, got "
                                    f"{address!r}")
    return address


def _shard_on_node(hub_dir: str, db: str | None, model_id: str, image_ids: list[str],
                   corpus_version: str) -> tuple[str, float, str]:
    """:func:`label_shard` as a Ray task: also says which node ran it."""
    import ray

    path, took = label_shard(hub_dir, db, model_id, image_ids, corpus_version)
    return path, took, ray.get_runtime_context().get_node_id()


def _connect(address: str | None) -> None:
    """Join the cluster at ``address``, or start a single-node one in this process."""
    import ray

    with _sigterm_kept():
        _init(ray, address)


@contextlib.contextmanager
def _sigterm_kept():
    """Put back this process's SIGTERM handler after Ray's calls: ``ray.init`` replaces it with
    an immediate exit and ``ray.shutdown`` leaves the signal at its default, and ``mll worker``
    must still finish the job in hand when asked to stop."""
    main = threading.current_thread() is threading.main_thread()
    handler = signal.getsignal(signal.SIGTERM) if main else None
    try:
        yield
    finally:
        if handler is not None:
            signal.signal(signal.SIGTERM, handler)


def _init(ray, address: str | None) -> None:
    """``ray.init`` for ``address`` (None: a cluster in this process), its refusals one line."""
    try:
        if address is None:
            ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False,
                     log_to_driver=False, _node_ip_address="127.0.0.1")
        else:
            ray.init(address=address, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:  # Ray's ways of saying "no"
        raise ExternalServiceError(
            f"could not join the Ray cluster at {address}: {first_line(exc)}; start one with "
            "'ray start --head' (and set RAY_AUTH_TOKEN if the cluster uses token "
            "authentication)") from None


@executors.register("ray")
def ray_executor(address: str | None = None):
    """as tasks on a Ray cluster (--ray-address or RAY_ADDRESS; else a local one)"""
    address = ray_address(address)

    def run(hub_dir: str, db: str | None, jobs: Jobs, show_progress: bool | None,
            corpus_version: str) -> Outcome:
        if not jobs:
            return Outcome()
        try:
            import ray
        except ImportError:
            raise MissingDependencyError("the Ray executor needs Ray: pip install 'mll[ray]'"
                                         ) from None

        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        # Ray's driver prints cluster events (a node that died) on stdout: keep stdout for
        # the report ('mll label --json')
        with contextlib.redirect_stdout(sys.stderr):
            return _run_on_ray(ray, address, hub_dir, db, jobs, show_progress, corpus_version)

    return run


def _run_on_ray(ray, address: str | None, hub_dir: str, db: str | None, jobs: Jobs,
                show_progress: bool | None, corpus_version: str) -> Outcome:
    """Ship every job as a task (one CPU, spread over the nodes) and gather the outcomes."""
    started = not ray.is_initialized()
    if started:
        _connect(address)
    try:
        # SPREAD: tasks go round the nodes rather than filling the driver's node first
        task = ray.remote(num_cpus=1, max_retries=TASK_RETRIES,
                          scheduling_strategy="SPREAD")(_shard_on_node)
        refs = {task.remote(hub_dir, db, m, ids, corpus_version): (m, len(ids))
                for m, ids in jobs}
        names = _node_names()
        pending, out = list(refs), Outcome()
        for _ in progress(range(len(pending)), f"labelling {len(jobs)} batches on Ray",
                          disable=None if show_progress is None else not show_progress):
            done, pending = ray.wait(pending, num_returns=1)
            model_id, n = refs[done[0]]
            try:
                _, took, node = ray.get(done[0])
            except Exception as exc:  # noqa: BLE001 - any model failure is reported, not fatal
                out.failed.setdefault(model_id,
                                      failure_reason(getattr(exc, "cause", None) or exc))
                continue
            if node not in names:  # a node that joined during the run
                names = _node_names()
            out.done(model_id, took, names.get(node, node[:12]), n)
        return out
    finally:
        if started:
            with _sigterm_kept():
                ray.shutdown()


def _node_names() -> dict[str, str]:
    """Ray node id -> a readable name: ``host:port`` of its raylet (unique per node, also when
    several nodes share a machine)."""
    import ray

    return {n["NodeID"]: f"{n['NodeManagerAddress']}:{n['NodeManagerPort']}" for n in ray.nodes()}


def get_executor(name: str, address: str | None = None):
    """The ``run`` function of executor ``name`` (an unknown name is refused with suggestions)."""
    return executors.get(name)(address=address)
