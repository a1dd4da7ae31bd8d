"""The hub's metadata store: SQLAlchemy 2 typed ORM over SQLite (default) or any URL.

The schema is versioned with Alembic from the first release; opening a store upgrades it to the
newest revision under a lock, so two processes opening a fresh hub at once do not race.

Opening checks the URL before anything is created: a malformed URL, an unknown driver, a server
that cannot be reached, a directory that does not exist, or a file that is not an SQLite database
(an empty one included: that is a lost database, not a new hub) is a one-line :class:`StoreError`
naming the URL with its password masked. A database in a directory this process cannot write
(a read-only mount, another user's hub) is opened read-only, so reading commands still work.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    create_engine,
    event,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DatabaseError,
    IntegrityError,
    NoSuchModuleError,
    OperationalError,
)
from sqlalchemy.orm import (
    Mapped,
    Session,
    mapped_column,
    relationship,
    selectinload,
)
from sqlalchemy.pool import StaticPool

from .._io import writable
from ..errors import MissingDependencyError, NotBuiltError, StoreError, first_line
from .records import Base, LabelSummary, label_summaries
from .spec import HeadClass, InputSpec, ModelInfo

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
_PG_LOCK_KEY = 0x6D6C6C  # "mll": advisory lock id for migrations on PostgreSQL
_SQLITE_MAGIC = b"SQLite format 3\x00"
_URL_EXAMPLES = "sqlite:////path/to/mll.db or postgresql+psycopg://user@host/dbname"
_PG_CONNECT_TIMEOUT = 10  # seconds; a server that does not answer is reported, not waited for


class ModelRow(Base):
    __tablename__ = "models"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    family: Mapped[str] = mapped_column(String(40))
    source: Mapped[str] = mapped_column(Text)
    license: Mapped[str] = mapped_column(String(100))
    n_params: Mapped[int] = mapped_column(BigInteger)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    input_size: Mapped[int] = mapped_column(Integer)
    input_channels: Mapped[int] = mapped_column(Integer)
    input_mean: Mapped[list[float]] = mapped_column(JSON)
    input_std: Mapped[list[float]] = mapped_column(JSON)
    backbone: Mapped[str | None] = mapped_column(String(80), index=True)
    artifact_digest: Mapped[str] = mapped_column(String(64), index=True)
    artifact_bytes: Mapped[int] = mapped_column(BigInteger)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    classes: Mapped[list[ClassRow]] = relationship(
        order_by="ClassRow.idx", cascade="all, delete-orphan", passive_deletes=True)


class ClassRow(Base):
    __tablename__ = "model_classes"

    model_id: Mapped[str] = mapped_column(String(16), ForeignKey("models.id", ondelete="CASCADE"),
                                          primary_key=True)
    idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    wnid: Mapped[str | None] = mapped_column(String(16), index=True)
    score: Mapped[float | None] = mapped_column(Float)
    confirmed: Mapped[bool] = mapped_column(Boolean)


def version_locations() -> list[Path]:
    """Every stage's migration directory (``mll/<stage>/migrations/versions``)."""
    package = Path(__file__).resolve().parents[1]
    return sorted(p for p in package.glob("*/migrations/versions") if p.is_dir())


def _alembic_config(connection: Connection):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", os.pathsep.join(map(str, version_locations())))
    cfg.attributes["connection"] = connection
    return cfg


def parse_url(url: str) -> URL:
    """The parsed database URL, or a :class:`StoreError` saying what a valid one looks like."""
    try:
        return make_url(url)
    except (ArgumentError, ValueError):
        raise StoreError(f"malformed database URL {url!r}; give e.g. {_URL_EXAMPLES}") from None


def masked(url: str | URL) -> str:
    """The URL as it may be shown to a user: any password replaced by ``***``."""
    try:
        return (url if isinstance(url, URL) else make_url(url)).render_as_string(
            hide_password=True)
    except (ArgumentError, ValueError):
        return "<malformed URL>"


def _sqlite_file(url: URL) -> Path | None:
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def _sqlite_header_problem(path: Path) -> str | None:
    """Why ``path`` is not an SQLite database file, or None when its header says it is one."""
    with open(path, "rb") as fh:
        head = fh.read(len(_SQLITE_MAGIC))
    if not head:
        return "is empty (0 bytes)"
    if head != _SQLITE_MAGIC:
        return "is not an SQLite database"
    return None


class Store:
    """Model metadata behind one object: ``Store("sqlite:///hub/mll.db")``.

    Reads use ordinary transactions; writes go through :meth:`write`, which on SQLite takes the
    write lock up front (``BEGIN IMMEDIATE``) so concurrent writers queue instead of failing.
    """

    def __init__(self, url: str, *, migrate: bool = True, create: bool = True) -> None:
        """Open the store at ``url``; ``create=False`` refuses a SQLite file that does not exist.

        Reading commands pass ``create=False`` so a mistyped path is an error, not a new hub.
        """
        self.url = url
        self._url = parse_url(url)
        self.shown = masked(self._url)
        self._file = _sqlite_file(self._url)
        self.read_only = False
        if self._file is not None:
            self.read_only = self._check_file(create)
        self.engine = self._make_engine(url)
        if migrate:
            self.migrate()

    # -- engine and migrations ------------------------------------------------------------------
    def _recovery(self) -> str:
        return ("restore it from a backup, or move it away to start a new hub there "
                f"(mv {self._file} {self._file}.broken)")

    def _check_file(self, create: bool) -> bool:
        """Validate the SQLite file before anything is created; True when it must be read-only.

        An empty file is only accepted under the migration lock (see :meth:`migrate`): another
        process may be creating the hub right now.
        """
        path, directory = self._file, self._file.parent
        if not directory.is_dir():
            raise StoreError(f"cannot open database {self.shown}: directory {directory} does not "
                             "exist; create it first or give another --db")
        if path.is_dir():
            raise StoreError(f"cannot open database {self.shown}: {path} is a directory")
        can_write = writable(path)
        if not path.exists():
            if not create:
                raise NotBuiltError(f"no hub database at {path}; build a hub with 'mll starter "
                                    "--quick' or 'mll hub add', or pass the right --hub/--db")
            if not can_write:
                raise StoreError(f"cannot create database {path}: directory {directory} is not "
                                 "writable")
            return False
        try:
            problem = _sqlite_header_problem(path)
        except OSError as exc:
            raise StoreError(f"cannot read database {path}: {exc.strerror}") from None
        if problem and (problem != "is empty (0 bytes)" or not can_write):
            raise StoreError(f"database {path} {problem}; {self._recovery()}")
        return not can_write

    def _make_engine(self, url: str) -> Engine:
        try:
            if self._url.get_backend_name() != "sqlite":
                args = ({"connect_timeout": _PG_CONNECT_TIMEOUT}
                        if self._url.get_backend_name() == "postgresql"
                        and "connect_timeout" not in self._url.query else {})
                return create_engine(self._url, pool_pre_ping=True, connect_args=args)
            if self._file is None:
                engine = create_engine(url, connect_args={"check_same_thread": False},
                                       poolclass=StaticPool)
            elif self.read_only:
                engine = create_engine("sqlite://", creator=self._read_only_connection)
            else:
                engine = create_engine(url, connect_args={"timeout": 120})
        except NoSuchModuleError:
            raise StoreError(f"unknown database driver {self._url.drivername!r} in {self.shown}; "
                             f"give e.g. {_URL_EXAMPLES}") from None
        except ImportError as exc:
            raise MissingDependencyError(
                f"the driver for {self.shown} is not installed ({exc.name or exc}); for "
                "PostgreSQL install mll[postgres]") from None
        _sqlite_events(engine, wal=self._file is not None and not self.read_only)
        return engine

    def _read_only_connection(self) -> sqlite3.Connection:
        """A read-only connection; ``immutable`` when WAL's shared-memory file cannot be made.

        A WAL database normally needs ``mll.db-shm`` beside it; in a directory nobody may write
        (a read-only mount) it cannot exist, and nobody can be changing the file either.
        """
        from urllib.parse import quote

        base = f"file:{quote(str(self._file.resolve()))}?mode=ro"
        try:
            con = sqlite3.connect(base, uri=True, timeout=120, check_same_thread=False)
            con.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return con
        except sqlite3.OperationalError:
            return sqlite3.connect(base + "&immutable=1", uri=True, check_same_thread=False)

    def migrate(self) -> str:
        """Upgrade the schema to the newest revision (a no-op when current); return it."""
        from alembic import command

        try:
            if self.read_only:
                with self.engine.connect() as conn:
                    current = self._current(conn)
                if current != self._heads():
                    raise StoreError(
                        f"database {self._file} is read-only here and "
                        + ("holds no hub" if not current else "needs a schema upgrade")
                        + "; open it once from an account that may write its directory")
                return self.revision()
            with self._migration_lock(), self.engine.begin() as conn:
                if self.engine.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
                if self._current(conn) != self._heads():
                    logger.info("migrating %s", self.shown)
                    command.upgrade(_alembic_config(conn), "heads")
            return self.revision()
        except DatabaseError as exc:  # OperationalError included: unreachable, locked, corrupt
            self.engine.dispose()
            raise StoreError(f"cannot open database {self.shown}: {_first_line(exc)}; "
                             + (self._recovery() if self._file is not None else
                                "check that the server is running and the URL is right")
                             ) from None

    @contextmanager
    def _migration_lock(self) -> Iterator[None]:
        if self._file is None:
            yield
            return
        with open(self._file.with_name(self._file.name + ".lock"), "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                # under the lock an empty file is no hub being created: it is a lost database
                problem = self._file.exists() and _sqlite_header_problem(self._file)
                if problem:
                    raise StoreError(f"database {self._file} {problem}; {self._recovery()}")
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    @staticmethod
    def _heads() -> set[str]:
        """The newest revisions as ``alembic_version`` lists them once upgraded: a revision that
        another one depends on (``depends_on``) is not listed there, so it is left out here too."""
        from alembic.script import ScriptDirectory

        script = ScriptDirectory.from_config(_alembic_config(None))
        return set(script.get_heads(consider_depends_on=True))

    @staticmethod
    def _current(conn: Connection) -> set[str]:
        if not inspect(conn).has_table("alembic_version"):
            return set()
        return {r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))}

    def revision(self) -> str:
        """The applied revision(s), comma-separated."""
        with self.engine.connect() as conn:
            return ",".join(sorted(self._current(conn)))

    # -- sessions -------------------------------------------------------------------------------
    @contextmanager
    def read(self) -> Iterator[Session]:
        try:
            with Session(self.engine, expire_on_commit=False) as session:
                yield session
        except DatabaseError as exc:
            raise StoreError(f"database {self.shown} failed a read: {_first_line(exc)}") from exc

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One write transaction; committed when the block succeeds, rolled back otherwise."""
        engine = self.engine.execution_options(mll_write=True)
        try:
            with Session(engine, expire_on_commit=False) as session, session.begin():
                yield session
        except OperationalError as exc:
            if self.read_only:
                raise StoreError(f"database {self._file} is read-only here (its directory is not "
                                 "writable); this command needs write access") from None
            raise StoreError(f"database {self.shown} refused a write: {_first_line(exc)}") from exc

    # -- models ---------------------------------------------------------------------------------
    def insert(self, row: ModelRow, before_commit: Callable[[], None] | None = None) -> bool:
        """Insert a model; False when a model with the same content hash is already there.

        ``before_commit`` runs inside the transaction, after the row is flushed (the hub uses it to
        make sure the artifact the row references is in place).
        """
        try:
            with self.write() as s:
                if s.scalar(select(ModelRow.id).where(ModelRow.content_hash == row.content_hash)):
                    return False
                s.add(row)
                s.flush()
                if before_commit is not None:
                    before_commit()
        except IntegrityError:
            if self.find_hash(row.content_hash) is None:
                raise StoreError(f"model id {row.id} collides with another model") from None
            return False
        return True

    def find_hash(self, content_hash: str) -> str | None:
        with self.read() as s:
            return s.scalar(select(ModelRow.id).where(ModelRow.content_hash == content_hash))

    def resolve(self, ref: str) -> str:
        """A model id from a full id, an unambiguous id prefix (>= 4 chars) or a unique name."""
        from ..errors import AmbiguousNameError, UnknownNameError

        with self.read() as s:
            if s.get(ModelRow, ref) is not None:
                return ref
            by_name = list(s.scalars(select(ModelRow.id).where(ModelRow.name == ref)))
            by_prefix = (list(s.scalars(select(ModelRow.id).where(ModelRow.id.startswith(ref))))
                         if len(ref) >= 4 else [])
            names = list(s.scalars(select(ModelRow.name)))
        found = by_name or by_prefix
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise AmbiguousNameError(f"{ref!r} names {len(found)} models ({', '.join(sorted(found))}); "
                             "use the id")
        raise UnknownNameError("model", ref, names, hint="see 'mll hub list'")

    def get(self, model_id: str) -> ModelInfo:
        return self.infos([model_id])[0]

    def infos(self, ids: list[str] | None = None) -> list[ModelInfo]:
        """Model records (all, in the order added, or the given ids in that order)."""
        query = select(ModelRow).options(selectinload(ModelRow.classes))
        with self.read() as s:
            if ids is not None:
                rows = {r.id: r for r in s.scalars(query.where(ModelRow.id.in_(ids)))}
                found = [rows[i] for i in ids if i in rows]
            else:
                found = list(s.scalars(query.order_by(ModelRow.created_at, ModelRow.id)))
            labels = label_summaries(s, [r.id for r in found])
        return [_info(r, labels.get(r.id)) for r in found]

    def delete(self, model_id: str, on_orphan: Callable[[str], None] | None = None) -> bool:
        """Delete a model; False if it is not there.

        ``on_orphan(digest)`` runs inside the transaction when no other model references the
        model's artifact, so an artifact is never removed under a concurrent add that reuses it.
        """
        with self.write() as s:
            row = s.get(ModelRow, model_id)
            if row is None:
                return False
            digest = row.artifact_digest
            s.delete(row)
            s.flush()
            shared = s.scalar(select(ModelRow.id).where(ModelRow.artifact_digest == digest))
            if not shared and on_orphan is not None:
                on_orphan(digest)
        return True

    def referenced(self, digest: str) -> bool:
        with self.read() as s:
            return s.scalar(select(ModelRow.id).where(ModelRow.artifact_digest == digest)) is not None

    def update_classes(self, model_id: str, classes: list[HeadClass]) -> None:
        with self.write() as s:
            row = s.get(ModelRow, model_id)
            by_idx = {c.idx: c for c in row.classes}
            for c in classes:
                target = by_idx[c.index]
                target.wnid, target.score, target.confirmed = c.wnid, c.score, c.confirmed


def _first_line(exc: DatabaseError) -> str:
    """The driver's own message, first line only (SQLAlchemy appends the SQL and a link)."""
    return first_line(exc.orig if exc.orig is not None else exc)


def json_value(value: Any) -> Any:
    """JSON-ready values: datetimes as ISO text in UTC (SQLite returns them naive; the hub always
    writes UTC), anything else as it is."""
    if not isinstance(value, datetime):
        return value
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def _info(row: ModelRow, summary: LabelSummary | None) -> ModelInfo:
    spec = InputSpec(row.input_size, row.input_channels, tuple(row.input_mean),
                     tuple(row.input_std))
    classes = tuple(HeadClass(c.idx, c.name, c.wnid, c.score, c.confirmed) for c in row.classes)
    label = None if summary is None else summary.to_dict()
    labelled = summary is not None and summary.complete
    return ModelInfo(id=row.id, name=row.name, kind=row.kind, family=row.family,
                     source=row.source, license=row.license, n_params=row.n_params,
                     latency_ms=row.latency_ms, input_spec=spec, backbone=row.backbone,
                     content_hash=row.content_hash, artifact_digest=row.artifact_digest,
                     artifact_bytes=row.artifact_bytes, config=row.config, metrics=row.metrics,
                     created_at=json_value(row.created_at), classes=classes, labelled=labelled,
                     labels=label)


def _sqlite_events(engine: Engine, wal: bool) -> None:
    """Foreign keys on, WAL for file databases, and explicit BEGIN (IMMEDIATE for writes)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        dbapi_conn.isolation_level = None  # let the "begin" hook below emit BEGIN
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        if wal:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("mll_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
