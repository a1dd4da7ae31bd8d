"""A Ray cluster of several nodes on this machine, for tests and the labelling benchmark.

Each node is its own ``ray start --block`` process (its own raylet, object store and worker
processes) in its own session, so a node can be killed alone, as a machine would be lost, and
stopping the cluster kills exactly the processes it started, never another user's Ray. Every port
is chosen free, so clusters of several runs can exist side by side, and the cluster is closed to
other clients by a token of its own (Ray's token authentication): a driver connects with
:attr:`LocalRayCluster.env` in its environment and ``address`` as ``--ray-address``.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ExternalServiceError, InvalidParameterError, MissingDependencyError

logger = logging.getLogger(__name__)

#: Seconds a node may take to start and register before the cluster gives up on it.
START_TIMEOUT = 90.0
#: Starts of one worker node before giving up (Ray gives a raylet 30 s to register).
START_ATTEMPTS = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray_cli() -> str:
    """The ``ray`` command of this interpreter's environment."""
    path = Path(sys.executable).with_name("ray")
    if path.is_file():
        return str(path)
    found = shutil.which("ray")
    if found is None:
        raise MissingDependencyError("the 'ray' command is not installed; install mll[ray] "
                                     "(pip install 'ray[default]')")
    return found


def _session(sid: int) -> list[int]:
    """Pids of the processes in session ``sid`` (what one node started)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[3]) == sid and fields[0] != "Z":  # fields: state ppid pgrp session
            pids.append(int(entry.name))
    return pids


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            errors="replace")
    except OSError:
        return ""


@dataclass
class RayNode:
    """One node: its ``ray start`` process (the leader of its session) and its CPUs."""

    name: str
    cpus: int
    proc: subprocess.Popen
    log: Path
    node_id: str = ""
    killed: bool = field(default=False)

    @property
    def manager_port(self) -> int:
        """The raylet's port: with the machine's address, the node's name in Ray's lists."""
        args = self.proc.args
        return int(args[args.index("--node-manager-port") + 1])

    def pids(self) -> list[int]:
        return _session(self.proc.pid)

    def raylet(self) -> int | None:
        return next((p for p in self.pids() if _comm(p) == "raylet"), None)

    def running(self, function: str) -> int:
        """How many of this node's worker processes are running a task of ``function`` now
        (Ray titles a busy worker ``ray::<function>``)."""
        return sum(_cmdline(p).startswith(f"ray::{function}") for p in self.pids())


class LocalRayCluster:
    """``with LocalRayCluster(cpus=[1, 1]) as c:`` a head node and one worker node, 1 CPU each.

    ``cpus[0]`` is the head's CPUs (0: it schedules no tasks, only the driver's bookkeeping), each
    further entry one worker node. ``env`` holds what a driver needs to connect (the cluster's
    token); ``address`` is the head's ``host:port``.
    """

    def __init__(self, cpus: list[int], *, object_store_mb: int = 200,
                 workdir: Path | None = None) -> None:
        if not cpus or any(c < 0 for c in cpus) or sum(cpus) < 1:
            raise InvalidParameterError(f"cluster cpus must be non-negative per node with at "
                                        f"least one CPU in all, got {cpus}")
        self.cpus = list(cpus)
        self.object_store_mb = object_store_mb
        self.root = Path(tempfile.mkdtemp(prefix="mll-ray-", dir=workdir))
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
                    "RAY_USAGE_STATS_ENABLED": "0"}
        self.nodes: list[RayNode] = []

    # -- lifetime -------------------------------------------------------------------------------
    def __enter__(self) -> LocalRayCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start the head, then each worker node once the one before it is up (starting them
        together on a loaded machine overruns Ray's 30 s start-up limit), and learn their ids."""
        self._start_node("head", self.cpus[0], ["--head", "--port", str(self.port),
                                                  "--include-dashboard", "false",
                                                  "--temp-dir", str(self.root / "ray")])
        self._wait_for_port()
        self._wait_started(self.nodes[0])
        for i, c in enumerate(self.cpus[1:], 1):
            for attempt in range(START_ATTEMPTS):
                node = self._start_node(f"node{i}", c, ["--address", self.address])
                if self._wait_started(node, last=attempt == START_ATTEMPTS - 1):
                    break
                logger.warning("Ray node %s did not start (attempt %d); starting it again",
                               node.name, attempt + 1)
                self._kill_session(node)
                self.nodes.remove(node)
        self._wait_for_nodes()

    def _wait_started(self, node: RayNode, last: bool = True) -> bool:
        """Whether ``node``'s ``ray start`` reported its node up; raises on the last attempt."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if "Ray runtime started" in node.log.read_text(errors="replace"):
                return True
            if node.proc.poll() is not None:
                break
            time.sleep(0.2)
        if last:
            tail = node.log.read_text(errors="replace").strip().splitlines()[-2:]
            raise ExternalServiceError(f"Ray node {node.name} did not start: "
                                       + " | ".join(tail))
        return False

    def _start_node(self, name: str, cpus: int, extra: list[str]) -> RayNode:
        ports = [(opt, str(_free_port())) for opt in (
            "--node-manager-port", "--object-manager-port", "--dashboard-agent-listen-port",
            "--dashboard-agent-grpc-port", "--runtime-env-agent-port", "--metrics-export-port")]
        log = self.root / f"{name}-{len(self.nodes)}.log"
        cmd = [_ray_cli(), "start", "--block", "--num-cpus", str(cpus), "--node-ip-address",
               "127.0.0.1", "--disable-usage-stats", "--object-store-memory",
               str(self.object_store_mb << 20), *[x for p in ports for x in p], *extra]
        with open(log, "wb") as fh:  # the child keeps its own descriptor
            proc = subprocess.Popen(cmd, env={**os.environ, **self.env}, stdout=fh,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        node = RayNode(name, cpus, proc, log)
        self.nodes.append(node)
        logger.info("started Ray node %s (%d CPU, pid %d)", name, cpus, proc.pid)
        return node

    def _check_alive(self) -> None:
        for node in self.nodes:
            if node.proc.poll() is not None:
                tail = node.log.read_text(errors="replace").strip().splitlines()[-3:]
                raise ExternalServiceError(f"Ray node {node.name} exited while starting: "
                                           + " | ".join(tail))

    def _wait_for_port(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                socket.create_connection(("127.0.0.1", self.port), 1).close()
                return
            except OSError:
                time.sleep(0.2)
        raise ExternalServiceError(f"the Ray head did not open port {self.port} within "
                                   f"{START_TIMEOUT:.0f} s; see {self.nodes[0].log}")

    def _wait_for_nodes(self) -> None:
        """Wait until every node's raylet is registered, and learn each node's Ray id."""
        alive = self.alive_nodes(wait_for=len(self.nodes))
        self._check_alive()
        if len(alive) < len(self.nodes):
            raise ExternalServiceError(f"only {len(alive)} of {len(self.nodes)} Ray nodes "
                                       f"registered within {START_TIMEOUT:.0f} s; see the logs "
                                       f"in {self.root}")
        for node in self.nodes:  # Ray's node ids matched to ours by the raylet's port
            node.node_id = alive.get(node.manager_port, "")

    def alive_nodes(self, wait_for: int = 0) -> dict[int, str]:
        """Node manager port -> Ray node id of every live node, asked of the head in a separate
        driver process (so this one stays free to connect as it likes); with ``wait_for``, asks
        until that many are alive or ``START_TIMEOUT`` passes."""
        code = ("import json, sys, time, ray\n"
                f"ray.init(address={self.address!r}, log_to_driver=False, "
                "logging_level='error')\n"
                f"end = time.monotonic() + {START_TIMEOUT}\n"
                "while True:\n"
                "    alive = [(n['NodeManagerPort'], n['NodeID']) for n in ray.nodes() "
                "if n['Alive']]\n"
                f"    if len(alive) >= {wait_for} or time.monotonic() > end:\n"
                "        break\n"
                "    time.sleep(0.3)\n"
                "print(json.dumps(alive))\n")
        try:
            out = subprocess.run([sys.executable, "-c", code], env={**os.environ, **self.env},
                                 capture_output=True, text=True, timeout=START_TIMEOUT + 60)
        except subprocess.TimeoutExpired:
            return {}
        lines = out.stdout.strip().splitlines()
        if out.returncode != 0 or not lines:
            logger.warning("asking the Ray head for its nodes failed: %s",
                           out.stderr.strip().splitlines()[-1:] or out.returncode)
            return {}
        return {int(port): nid for port, nid in json.loads(lines[-1])}

    def node_names(self) -> dict[str, str]:
        """Ray node id -> our name for it (head, node1, ...)."""
        return {n.node_id: n.name for n in self.nodes if n.node_id}

    def kill(self, name: str) -> None:
        """SIGKILL a node's raylet, as if its machine were lost; its workers die with it."""
        node = next((n for n in self.nodes if n.name == name), None)
        if node is None:
            raise InvalidParameterError(f"no Ray node named {name!r} in this cluster")
        pid = node.raylet()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
        node.killed = True
        logger.info("killed the raylet of Ray node %s (pid %s)", name, pid)

    @staticmethod
    def _kill_session(node: RayNode) -> None:
        """SIGKILL every process of ``node``'s session and reap its ``ray start``."""
        for _ in range(3):  # workers may be forked while we kill: look again
            pids = node.pids()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.2)
        try:
            node.proc.wait(10)
        except subprocess.TimeoutExpired:
            logger.warning("Ray node %s (pid %d) did not exit", node.name, node.proc.pid)

    def stop(self) -> None:
        """Kill every process the nodes started (by session: never another cluster's), then
        remove the cluster's directory."""
        for node in reversed(self.nodes):
            self._kill_session(node)
        self.nodes = []
        shutil.rmtree(self.root, ignore_errors=True)
