"""API tokens of ``mll serve``: who may read the hub over HTTP, and who may write to it.

A token is ``mll_<id>_<secret>``. Only an argon2 hash of the secret is stored (``api_tokens``
in the hub database, created by this stage's migration), so the token is shown once, when it is
created, and cannot be read back. Each token has one role; a role allows what the roles before it
allow: ``reader`` < ``uploader`` < ``admin``. Revoking keeps the row (who had access, and until
when) and refuses the token from then on.

Checking a secret with argon2 is deliberately slow (tens of milliseconds and 64 MiB); a server
remembers the SHA-256 of tokens it has verified, so each one costs that once per process, and
still reads the row on every request, so a revocation takes effect at once.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import DateTime, String, select
from sqlalchemy.orm import Mapped, mapped_column

from ..errors import InvalidParameterError, MissingDependencyError, UnknownNameError
from ..hub.records import Base
from ..hub.store import Store, json_value

logger = logging.getLogger(__name__)

ROLES = ("reader", "uploader", "admin")
_TOKEN = re.compile(r"^mll_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})$")
MAX_NAME = 200


class TokenRow(Base):
    """One API token; columns match the serve stage's migration (``serve_0001``)."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class TokenInfo:
    """What may be shown about a token: never its secret or hash."""

    id: str
    name: str
    role: str
    created_at: str
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def allows(self, role: str) -> bool:
        """Whether this token's role includes ``role``."""
        return self.active and ROLES.index(self.role) >= ROLES.index(role)

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "role": self.role,
                "created_at": self.created_at, "revoked_at": self.revoked_at,
                "active": self.active}


def _info(row: TokenRow) -> TokenInfo:
    return TokenInfo(row.id, row.name, row.role, json_value(row.created_at), json_value(row.revoked_at))


def _hasher():
    try:
        from argon2 import PasswordHasher
    except ImportError:
        raise MissingDependencyError("API tokens need argon2-cffi; install mll[serve]") from None
    return PasswordHasher()


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidParameterError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    return role


class TokenStore:
    """API tokens in the hub database: ``TokenStore(hub.store)``."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._verified: dict[bytes, str] = {}  # sha256(token) -> token id, verified this process
        self._lock = threading.Lock()

    def create(self, role: str, name: str = "") -> tuple[TokenInfo, str]:
        """A new token with ``role``; returns its record and the token itself (shown once)."""
        check_role(role)
        name = name.strip()
        if len(name) > MAX_NAME or any(ord(ch) < 32 for ch in name):
            raise InvalidParameterError(f"token name must be at most {MAX_NAME} printable "
                                        f"characters, got {name[:40]!r}...")
        token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        row = TokenRow(id=token_id, name=name, role=role, secret_hash=_hasher().hash(secret),
                       created_at=datetime.now(UTC), revoked_at=None)
        with self.store.write() as s:
            s.add(row)
        logger.info("created %s token %s", role, token_id)
        return _info(row), f"mll_{token_id}_{secret}"

    def list(self, include_revoked: bool = True) -> list[TokenInfo]:
        """Every token, oldest first."""
        with self.store.read() as s:
            rows = s.scalars(select(TokenRow).order_by(TokenRow.created_at, TokenRow.id))
            return [_info(r) for r in rows if include_revoked or r.revoked_at is None]

    def _resolve(self, ref: str) -> str:
        ref = ref.strip()
        prefix = _TOKEN.match(ref)
        if prefix:  # the whole token was given: its id is the part after mll_
            ref = prefix.group(1)
        with self.store.read() as s:
            ids = list(s.scalars(select(TokenRow.id).where(TokenRow.id.startswith(ref))))
        if len(ref) >= 4 and len(ids) == 1:
            return ids[0]
        if len(ids) > 1 and len(ref) >= 4:
            raise InvalidParameterError(f"token id {ref!r} matches {len(ids)} tokens; give more "
                                        "of it")
        raise UnknownNameError("token", ref, hint="see 'mll token list'")

    def revoke(self, ref: str) -> TokenInfo:
        """Revoke a token by id (or an unambiguous prefix of at least 4 characters)."""
        token_id = self._resolve(ref)
        with self.store.write() as s:
            row = s.get(TokenRow, token_id)
            if row.revoked_at is None:
                row.revoked_at = datetime.now(UTC)
            info = _info(row)
        logger.info("revoked token %s", token_id)
        return info

    def verify(self, token: str) -> TokenInfo | None:
        """The token's record when it is well formed, known, not revoked and its secret matches;
        None otherwise (the caller answers 401 without saying which)."""
        m = _TOKEN.match(token or "")
        if not m:
            return None
        token_id, secret = m.groups()
        with self.store.read() as s:
            row = s.get(TokenRow, token_id)
            if row is None or row.revoked_at is not None:
                return None
            info = _info(row)
            stored_hash = row.secret_hash
        digest = hashlib.sha256(token.encode()).digest()
        with self._lock:
            known = self._verified.get(digest) == token_id
        if not known:
            hasher = _hasher()
            from argon2.exceptions import InvalidHashError, VerificationError

            try:
                hasher.verify(stored_hash, secret)
            except (VerificationError, InvalidHashError):
                return None
            with self._lock:
                self._verified[digest] = token_id
        return info
