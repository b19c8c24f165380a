"""Passwords and bearer tokens.

Passwords: scrypt (RFC 7914, N=2^14, r=8, p=1, 16-byte per-user salt) stored as
``scrypt$N$r$p$salt$hash`` (base64), compared in constant time. Tokens: 32 random bytes
(URL-safe), handed to the client once; the database keeps only their SHA-256, so a leaked
database does not leak live sessions. Tokens expire (default 12 h).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from central.models import AuthToken
from core.models import User

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
TOKEN_TTL = dt.timedelta(hours=12)


def hash_password(password: str, *, n: int = SCRYPT_N) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${n}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str | None) -> bool:
    if not stored:
        return False
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(
    session: Session, user: User, *, ttl: dt.timedelta = TOKEN_TTL
) -> tuple[str, dt.datetime]:
    now = dt.datetime.now(dt.UTC)
    token = secrets.token_urlsafe(32)
    expires = now + ttl
    session.execute(delete(AuthToken).where(AuthToken.expires_at < now))
    session.add(
        AuthToken(
            token_hash=_token_hash(token), user_id=user.id, created_at=now, expires_at=expires
        )
    )
    return token, expires


def user_for_token(session: Session, token: str) -> User | None:
    row = session.get(AuthToken, _token_hash(token))
    if row is None or row.expires_at <= dt.datetime.now(dt.UTC):
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    user = session.scalars(select(User).where(User.username == username)).first()
    if user is None or not user.active:
        # Same work whether or not the user exists: no user enumeration by timing.
        verify_password(password, _DUMMY)
        return None
    return user if verify_password(password, user.password_hash) else None


_DUMMY = hash_password("not-a-password")
