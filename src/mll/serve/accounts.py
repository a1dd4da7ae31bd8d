"""Web UI accounts: password users and login sessions, in the hub database.

The web UI logs in with an API token or with a user name and password. Passwords are stored only
as argon2id hashes (``users``, migration ``users_0001``), created by ``mll user create``. A login
starts a session: a random id sent once in an HttpOnly cookie, of which the database keeps only
the SHA-256 (``ui_sessions``), so a copy of the database cannot be replayed as a cookie. Each
session has its own CSRF token, checked on every form post. The role is read again from the user
or token on every request, so removing a user or revoking a token ends its sessions at once.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property

from sqlalchemy import DateTime, Index, String, delete, select
from sqlalchemy.orm import Mapped, mapped_column

from ..errors import InvalidParameterError, UnknownNameError
from ..hub.records import Base
from ..hub.store import Store, json_value
from .tokens import TokenRow, _hasher, check_role

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # argon2 hashes any length; a bound keeps a login request cheap
SESSION_HOURS = 12.0


class UserRow(Base):
    """One password account; columns match the migration ``users_0001``."""

    __tablename__ = "users"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SessionRow(Base):
    """One login session: the SHA-256 of its id, who it is (a user name or a token id), its CSRF
    token and when it ends."""

    __tablename__ = "ui_sessions"
    __table_args__ = (Index("ix_ui_sessions_expires", "expires_at"),)

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    subject: Mapped[str] = mapped_column(String(64))
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class UserInfo:
    """What may be shown about a user: never the password hash."""

    name: str
    role: str
    created_at: str

    def to_dict(self) -> dict:
        return {"name": self.name, "role": self.role, "created_at": self.created_at}


@dataclass(frozen=True)
class Session:
    """A live session: who, with which role, and the CSRF token its forms carry."""

    kind: str  # "user" or "token"
    subject: str  # user name or token id
    role: str
    csrf: str
    expires_at: datetime

    @property
    def label(self) -> str:
        return self.subject if self.kind == "user" else f"token {self.subject}"

    def allows(self, role: str) -> bool:
        from .tokens import ROLES

        return ROLES.index(self.role) >= ROLES.index(role)


def _sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _aware(when: datetime) -> datetime:
    """SQLite returns naive datetimes for timezone columns: they were written in UTC."""
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidParameterError(
            f"user name must be 1-64 letters, digits or . _ @ - (starting with a letter or "
            f"digit), got {name[:40]!r}")
    return name


def check_password(password: str) -> str:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidParameterError(f"password must be {MIN_PASSWORD} to {MAX_PASSWORD} "
                                    "characters")
    return password


class Accounts:
    """Users and sessions in the hub database: ``Accounts(hub.store)``."""

    def __init__(self, store: Store, session_hours: float = SESSION_HOURS) -> None:
        self.store = store
        self.session_hours = session_hours

    @cached_property
    def _dummy(self) -> str:
        """A hash to check when the user does not exist, so a login takes as long for an unknown
        name as for a wrong password (user names are not revealed by timing)."""
        return _hasher().hash(secrets.token_urlsafe(16))

    # -- users ----------------------------------------------------------------------------------
    def create_user(self, name: str, role: str, password: str) -> UserInfo:
        """A new password account (an existing name is refused, not overwritten)."""
        check_name(name)
        check_role(role)
        check_password(password)
        row = UserRow(name=name, role=role, password_hash=_hasher().hash(password),
                      created_at=datetime.now(UTC))
        with self.store.write() as s:
            if s.get(UserRow, name) is not None:
                raise InvalidParameterError(f"user {name!r} exists; remove it first "
                                            f"('mll user remove {name}')")
            s.add(row)
        logger.info("created %s user %s", role, name)
        return UserInfo(name, role, json_value(row.created_at))

    def users(self) -> list[UserInfo]:
        """Every user, by name."""
        with self.store.read() as s:
            return [UserInfo(r.name, r.role, json_value(r.created_at))
                    for r in s.scalars(select(UserRow).order_by(UserRow.name))]

    def remove_user(self, name: str) -> UserInfo:
        """Remove a user and end its sessions."""
        with self.store.write() as s:
            row = s.get(UserRow, name)
            if row is None:
                raise UnknownNameError("user", name, hint="see 'mll user list'")
            info = UserInfo(row.name, row.role, json_value(row.created_at))
            s.delete(row)
            s.execute(delete(SessionRow).where(SessionRow.kind == "user",
                                               SessionRow.subject == name))
        logger.info("removed user %s", name)
        return info

    def check_password(self, name: str, password: str) -> UserInfo | None:
        """The user when ``password`` is theirs; None otherwise (never saying which part failed)."""
        from argon2.exceptions import InvalidHashError, VerificationError

        if not isinstance(password, str) or len(password) > MAX_PASSWORD:
            return None
        with self.store.read() as s:
            row = s.get(UserRow, name) if _NAME.match(name or "") else None
            stored = row.password_hash if row is not None else self._dummy
            info = None if row is None else UserInfo(row.name, row.role,
                                                     json_value(row.created_at))
        try:
            _hasher().verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        return info

    # -- sessions -------------------------------------------------------------------------------
    def start(self, kind: str, subject: str) -> str:
        """A new session for a user name or token id; returns the cookie value (shown once)."""
        session_id = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        with self.store.write() as s:
            s.execute(delete(SessionRow).where(SessionRow.expires_at < now))  # tidy as we go
            s.add(SessionRow(id_hash=_sha(session_id), kind=kind, subject=subject,
                             csrf=secrets.token_urlsafe(32), created_at=now,
                             expires_at=now + timedelta(hours=self.session_hours)))
        return session_id

    def get(self, session_id: str | None) -> Session | None:
        """The live session with this cookie value, with its subject's current role; None when
        unknown, expired, or its user or token is gone."""
        if not session_id or len(session_id) > 100:
            return None
        with self.store.read() as s:
            row = s.get(SessionRow, _sha(session_id))
            if row is None or _aware(row.expires_at) < datetime.now(UTC):
                return None
            if row.kind == "user":
                owner = s.get(UserRow, row.subject)
                role = None if owner is None else owner.role
            else:
                token = s.get(TokenRow, row.subject)
                role = None if token is None or token.revoked_at is not None else token.role
            if role is None:
                return None
            return Session(row.kind, row.subject, role, row.csrf, _aware(row.expires_at))

    def end(self, session_id: str | None) -> None:
        """Log out: the session's row is deleted, so its cookie is worthless from now on."""
        if session_id:
            with self.store.write() as s:
                s.execute(delete(SessionRow).where(SessionRow.id_hash == _sha(session_id)))


def same_token(expected: str, given: str | None) -> bool:
    """Constant-time comparison of a CSRF token."""
    return bool(given) and hmac.compare_digest(expected.encode(), str(given).encode())
