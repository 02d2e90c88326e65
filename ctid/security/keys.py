"""Client keys: who may connect to the bus (CURVE public keys) and with which role.

Keys live in the site database (table `client_key`), so `ctid keys add|revoke` in
another process changes what the running daemon allows: new connections are checked
against the table at once, live ones within the daemon's poll interval. A revoked key
stays in the table (with `revoked_at`) for the audit trail.

The daemon's own key pair is a ZeroMQ certificate file pair (`zmq.auth`), made on first use.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth
from sqlalchemy import Double, Engine, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from ctid.security.roles import parse_role
from ctid.store.engine import make_engine
from ctid.store.models import Base


class ClientKey(Base):
    """One client's CURVE public key (Z85, 40 characters) and its role."""

    __tablename__ = "client_key"

    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    role: Mapped[str] = mapped_column(String(128))
    label: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[float] = mapped_column(Double)
    revoked_at: Mapped[float | None] = mapped_column(Double, nullable=True)


@dataclass(frozen=True)
class KeyInfo:
    key: str
    role: str
    label: str
    created_at: float
    revoked_at: float | None


class UnknownKey(LookupError):
    """No such key or label (the CLI prints it)."""


class KeyStore:
    def __init__(self, url: str | None = None, engine: Engine | None = None) -> None:
        self.engine = engine or make_engine(url or "")
        Base.metadata.create_all(self.engine, tables=[ClientKey.__table__])  # type: ignore[list-item]

    def add(self, key: str, role: str, label: str = "") -> KeyInfo:
        """Allow a client's public key with a role; raises ValueError for a bad key or role."""
        key = key.strip()
        if len(key) != 40:
            raise ValueError(f"a CURVE public key is 40 Z85 characters, got {len(key)}")
        try:
            zmq.utils.z85.decode(key)
        except Exception:  # z85 raises ValueError/KeyError for characters outside its alphabet
            raise ValueError("the key is not Z85 text") from None
        parse_role(role)
        with Session(self.engine) as s, s.begin():
            row = s.get(ClientKey, key)
            if row is None:
                row = ClientKey(key=key, role=role, label=label, created_at=time.time(), revoked_at=None)
                s.add(row)
            else:  # re-adding a key (even a revoked one) gives it this role afresh
                row.role, row.label, row.revoked_at = role, label, None
            return _info(row)

    def new(self, role: str, label: str = "") -> tuple[KeyInfo, str]:
        """A fresh key pair for a client: the stored key and the secret key to hand over."""
        public, secret = zmq.curve_keypair()
        return self.add(public.decode(), role, label), secret.decode()

    def revoke(self, key_or_label: str) -> list[KeyInfo]:
        """Revoke by key, or every live key with this label; returns what was revoked."""
        now = time.time()
        with Session(self.engine) as s, s.begin():
            rows = s.scalars(select(ClientKey).where(ClientKey.revoked_at.is_(None))
                             .where((ClientKey.key == key_or_label) | (ClientKey.label == key_or_label))).all()
            if not rows:
                raise UnknownKey(f"no live key or label {key_or_label!r}")
            s.execute(update(ClientKey).where(ClientKey.key.in_([r.key for r in rows])).values(revoked_at=now))
            return [KeyInfo(r.key, r.role, r.label, r.created_at, now) for r in rows]

    def list(self, include_revoked: bool = True) -> list[KeyInfo]:
        with Session(self.engine) as s:
            query = select(ClientKey).order_by(ClientKey.created_at)
            if not include_revoked:
                query = query.where(ClientKey.revoked_at.is_(None))
            return [_info(r) for r in s.scalars(query)]

    def live(self) -> dict[str, str]:
        """Every live key -> its role (what the daemon allows now)."""
        with Session(self.engine) as s:
            rows = s.execute(select(ClientKey.key, ClientKey.role).where(ClientKey.revoked_at.is_(None)))
            return {k: r for k, r in rows}


def _info(row: ClientKey) -> KeyInfo:
    return KeyInfo(row.key, row.role, row.label, row.created_at, row.revoked_at)


def server_keys(path: str | Path) -> tuple[bytes, bytes]:
    """The daemon's (public, secret) CURVE key from the certificate `path` (`*.key_secret`),
    made with `zmq.auth.create_certificates` on first use: the secret file is made readable by
    the daemon's user only, the public one (`*.key`, for clients) sits beside it."""
    secret_file = Path(path)
    if not secret_file.name.endswith(".key_secret"):
        raise ValueError(f"{secret_file}: the daemon's key file name must end with .key_secret")
    if not secret_file.exists():
        secret_file.parent.mkdir(parents=True, exist_ok=True)
        _, made = zmq.auth.create_certificates(str(secret_file.parent), secret_file.name[: -len(".key_secret")])
        os.chmod(made, 0o600)
    public, secret = zmq.auth.load_certificate(str(secret_file))
    if secret is None:
        raise ValueError(f"{secret_file}: no secret key in this certificate")
    return public, secret
