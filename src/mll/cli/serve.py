"""``mll serve`` (the hub over HTTP), ``mll token`` (the API tokens it accepts) and ``mll user``
(the web UI's password accounts)."""

from __future__ import annotations

from pathlib import Path

import click

from ..labels.executors import executors
from ..serve import settings as defaults
from ._options import emit_json, hub_option, json_option
from .hub import _open, db_option


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--public", is_flag=True,
              help="Let anyone read without a token (writes always need one).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(0, 64),
              help="Worker processes labelling uploads ('mll worker' runs more elsewhere).")
@click.option("--executor", type=click.Choice(executors.list()), default="local",
              show_default=True, help="Where the workers label (as 'mll label --executor').")
@click.option("--max-upload-mb", default=1024, show_default=True, type=click.IntRange(1),
              help="Largest model file an upload may send.")
@click.option("--uploads-per-minute", default=defaults.DEFAULT_UPLOADS_PER_MINUTE, show_default=True, type=click.FloatRange(0),
              help="Uploads each token (or anonymous address) may make a minute; 0: no limit.")
@click.option("--upload-burst", default=defaults.DEFAULT_UPLOAD_BURST, show_default=True, type=click.IntRange(1),
              help="Uploads one may make at once before --uploads-per-minute applies.")
@click.option("--solves-per-minute", default=defaults.DEFAULT_SOLVES_PER_MINUTE, show_default=True, type=click.FloatRange(0),
              help="Solves each token (or anonymous address) may ask a minute; 0: no limit.")
@click.option("--solve-burst", default=defaults.DEFAULT_SOLVE_BURST, show_default=True, type=click.IntRange(1),
              help="Solves one may ask at once before --solves-per-minute applies.")
@click.option("--concurrent-selects", default=0, show_default=True, type=click.IntRange(0),
              help="Selections computed at once; more wait their turn so reads stay fast "
                   "(0: three per core).")
@click.option("--keep-solves", default=50, show_default=True, type=click.IntRange(1),
              help="Solved tasks whose report and predictor stay downloadable.")
@hub_option
@db_option
def serve(host: str, port: int, public: bool, workers: int, executor: str, max_upload_mb: int,
          uploads_per_minute: float, upload_burst: int, solves_per_minute: float,
          solve_burst: int, concurrent_selects: int, keep_solves: int, hub: Path,
          db: str | None) -> None:
    """Serve the hub's HTTP API (OpenAPI schema at /openapi.json, interactive docs at /docs)."""
    from ..errors import MissingDependencyError, NotBuiltError
    from ..serve import ServeSettings, create_app

    try:
        import uvicorn
    except ImportError:
        raise MissingDependencyError("mll serve needs uvicorn; install mll[serve]") from None
    app = create_app(hub, db, ServeSettings(
        public=public, max_upload_bytes=max_upload_mb * 1024**2,
        upload_per_minute=uploads_per_minute, upload_burst=upload_burst,
        solve_per_minute=solves_per_minute, solve_burst=solve_burst,
        concurrent_selects=concurrent_selects, keep_solves=keep_solves))
    try:  # load the labels now, so the first requests do not wait for them
        app.state.service.warm()
    except NotBuiltError as exc:
        click.echo(f"Warning: {exc}; model and token endpoints work, the others answer 503",
                   err=True)
    reads = "anyone may read" if public else "reads need a reader token ('mll token create')"
    click.echo(f"serving {app.state.service.hub.root} on http://{host}:{port} (web pages at /, "
               f"API docs at /docs); {reads}", err=True)
    pool = _WorkerPool(app.state.service.hub.root, db, workers, executor)
    try:
        uvicorn.run(app, host=host, port=port, log_level="info")
    finally:
        pool.stop()


class _WorkerPool:
    """``mll worker`` processes beside the server, restarted when one exits while it runs.

    The database URL reaches them in the environment (MLL_DB), not on a command line others can
    read. A worker killed mid-job leaves its job to be claimed again when its lease expires.
    """

    def __init__(self, hub: Path, db: str | None, n: int, executor: str) -> None:
        import os
        import sys
        import threading

        self.cmd = [sys.executable, "-m", "mll", "worker", "--hub", str(hub),
                    "--executor", executor, "--with-parent", str(os.getpid())]
        self.env = dict(os.environ, MLL_NO_PROGRESS="1") | ({"MLL_DB": db} if db else {})
        self.procs = [self._start() for _ in range(n)]
        self._stop = threading.Event()
        self._watch = threading.Thread(target=self._restart, daemon=True, name="workers")
        if n:
            click.echo(f"started {n} worker(s): pids {', '.join(str(p.pid) for p in self.procs)}",
                       err=True)
            self._watch.start()

    def _start(self):
        import subprocess

        return subprocess.Popen(self.cmd, env=self.env, stdin=subprocess.DEVNULL)

    def _restart(self) -> None:
        while not self._stop.wait(2.0):
            for i, proc in enumerate(self.procs):
                if proc.poll() is not None and not self._stop.is_set():
                    click.echo(f"worker {proc.pid} exited ({proc.returncode}); restarting it",
                               err=True)
                    self.procs[i] = self._start()

    def stop(self) -> None:
        import subprocess

        self._stop.set()
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@click.command("worker")
@click.option("--executor", type=click.Choice(executors.list()), default="local",
              show_default=True, help="Where labelling runs (as 'mll label --executor').")
@click.option("--address", default=None, help="Ray cluster address (default: a local cluster).")
@click.option("--batch", default=64, show_default=True, type=click.IntRange(1),
              help="Sample images per shard: what a job re-claimed after a crash resumes from.")
@click.option("--lease", default=defaults.DEFAULT_SOLVES_PER_MINUTE, show_default=True, type=click.FloatRange(1.0),
              help="Seconds a claimed job stays this worker's without renewal; a job whose "
                   "worker died is claimed again after it.")
@click.option("--poll", default=1.0, show_default=True, type=click.FloatRange(0.05),
              help="Seconds between looks for a new job when the queue is empty.")
@click.option("--max-jobs", default=None, type=click.IntRange(1),
              help="Exit after this many jobs (default: run until stopped).")
@click.option("--nice", default=10, show_default=True, type=click.IntRange(0, 19),
              help="Run at this lower CPU priority, so labelling takes only what the server's "
                   "requests leave (0: as the shell).")
@click.option("--with-parent", type=int, default=None, hidden=True,
              help="Exit (after the job in hand) once this process is gone: 'mll serve' passes "
                   "its pid, so its workers do not outlive it.")
@hub_option
@db_option
def worker(executor: str, address: str | None, batch: int, lease: float, poll: float,
           max_jobs: int | None, nice: int, with_parent: int | None, hub: Path,
           db: str | None) -> None:
    """Run the hub's background jobs (uploads to check and label) until stopped.

    Run any number, on any machine that reaches the hub directory and database; each claims one
    job at a time.
    """
    import os
    import signal
    import threading

    from ..serve.worker import Worker

    if nice and hasattr(os, "nice"):
        os.nice(nice)  # labelling is batch work; requests are waited for by people

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())  # finish the job in hand, then exit
    if with_parent is not None:
        threading.Thread(target=_watch_parent, args=(with_parent, stop), daemon=True).start()
    w = Worker(hub, db, executor=executor, address=address, batch=batch, lease=lease, poll=poll)
    click.echo(f"worker {w.name} on {w.hub.root}", err=True)
    try:
        ran = w.run(stop, max_jobs)
    except KeyboardInterrupt:
        ran = None
    finally:
        w.close()
    if ran is not None:
        click.echo(f"worker {w.name}: {ran} job(s) run", err=True)


def _watch_parent(pid: int, stop) -> None:
    """Set ``stop`` once this process's parent is no longer ``pid`` (it exited or was killed)."""
    import os

    while not stop.wait(1.0):
        if os.getppid() != pid:
            stop.set()


@click.group("token")
def token() -> None:
    """API tokens of 'mll serve': create (shown once), list, revoke."""


@token.command("create")
@click.option("--role", required=True, type=click.Choice(["reader", "uploader", "admin"]),
              help="Roles nest: reader < uploader < admin. Reading needs reader, uploading a "
                   "model uploader, removing one admin.")
@click.option("--name", default="", help="Who or what the token is for.")
@hub_option
@db_option
@json_option
def create(role: str, name: str, hub: Path, db: str | None, as_json: bool) -> None:
    """Create a token; it is printed once and only its hash is stored."""
    from ..serve.tokens import TokenStore

    with _open(hub, db) as h:
        info, secret = TokenStore(h.store).create(role, name)
    if as_json:
        emit_json(info.to_dict() | {"token": secret})
        return
    click.echo(secret)
    click.echo(f"{info.role} token {info.id}{f' ({info.name})' if info.name else ''}: shown "
               "once, keep it safe; revoke with 'mll token revoke " + info.id + "'", err=True)


@token.command("list")
@hub_option
@db_option
@json_option
def list_(hub: Path, db: str | None, as_json: bool) -> None:
    """Every token: id, role, name, when created and revoked (never the secret)."""
    from ..serve.tokens import TokenStore

    with _open(hub, db) as h:
        infos = TokenStore(h.store).list()
    if as_json:
        emit_json([i.to_dict() for i in infos])
        return
    click.echo(f"{'id':12}  {'role':8}  {'created':25}  {'revoked':25}  name")
    for i in infos:
        click.echo(f"{i.id:12}  {i.role:8}  {i.created_at:25}  {i.revoked_at or '-':25}  {i.name}")


@token.command("revoke")
@click.argument("token_id")
@hub_option
@db_option
@json_option
def revoke(token_id: str, hub: Path, db: str | None, as_json: bool) -> None:
    """Revoke a token by its id (or a prefix of 4 or more characters); it is refused at once."""
    from ..serve.tokens import TokenStore

    with _open(hub, db) as h:
        info = TokenStore(h.store).revoke(token_id)
    if as_json:
        emit_json(info.to_dict())
    else:
        click.echo(f"revoked {info.id}  {info.role}  {info.name}")


@click.group("user")
def user() -> None:
    """Password accounts of the web UI: create, list, remove (API tokens log in too)."""


@user.command("create")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(["reader", "uploader", "admin"]),
              help="As for tokens: reader < uploader < admin.")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from the first line of stdin instead of a prompt.")
@hub_option
@db_option
@json_option
def user_create(name: str, role: str, password_stdin: bool, hub: Path, db: str | None,
                as_json: bool) -> None:
    """Create a user; only an argon2id hash of the password is stored."""
    import sys

    from ..serve.accounts import Accounts, check_name, check_password

    check_name(name)  # before asking for a password
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True,
                                err=True)
    check_password(password)
    with _open(hub, db) as h:
        info = Accounts(h.store).create_user(name, role, password)
    if as_json:
        emit_json(info.to_dict())
    else:
        click.echo(f"created {info.role} user {info.name}")


@user.command("list")
@hub_option
@db_option
@json_option
def user_list(hub: Path, db: str | None, as_json: bool) -> None:
    """Every user: name, role, when created (never the password hash)."""
    from ..serve.accounts import Accounts

    with _open(hub, db) as h:
        infos = Accounts(h.store).users()
    if as_json:
        emit_json([i.to_dict() for i in infos])
        return
    click.echo(f"{'name':24}  {'role':8}  created")
    for i in infos:
        click.echo(f"{i.name:24}  {i.role:8}  {i.created_at}")


@user.command("remove")
@click.argument("name")
@hub_option
@db_option
@json_option
def user_remove(name: str, hub: Path, db: str | None, as_json: bool) -> None:
    """Remove a user; its web sessions end at once."""
    from ..serve.accounts import Accounts

    with _open(hub, db) as h:
        info = Accounts(h.store).remove_user(name)
    if as_json:
        emit_json({"removed": info.to_dict()})
    else:
        click.echo(f"removed {info.role} user {info.name}")


commands = [serve, worker, token, user]
