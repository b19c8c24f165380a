"""The sign-in token: in the OS keyring when one exists, otherwise only in memory.

Never in settings, files or logs. A machine without a usable keyring backend (a bare
Linux box, the tests' null backend) keeps the token for this run only and the sign-in
dialog says so, so the user knows they will be asked for the password next time.
"""

from __future__ import annotations

import logging
from types import ModuleType

log = logging.getLogger(__name__)


def _keyring() -> ModuleType:
    """keyring, imported on first use: its backend discovery (entry points) costs ~30 ms,
    which a demo start, that never stores a token, should not pay."""
    import keyring
    import keyring.errors

    return keyring


SERVICE = "StoreDesk"


def _key(server_url: str, username: str) -> str:
    return f"{server_url.rstrip('/')}|{username}"


def keyring_usable() -> bool:
    """False for keyring's null/fail backends (no secret storage on this machine)."""
    try:
        backend = _keyring().get_keyring()
    except Exception:
        return False
    name = f"{type(backend).__module__}.{type(backend).__name__}"
    if name.startswith(("keyring.backends.null", "keyring.backends.fail")):
        return False
    priority = getattr(backend, "priority", 1)
    try:
        return float(priority) > 0
    except (TypeError, ValueError):
        return True


class TokenStore:
    def __init__(self) -> None:
        self._memory: dict[str, str] = {}

    @property
    def persistent(self) -> bool:
        return keyring_usable()

    def save(self, server_url: str, username: str, token: str) -> bool:
        """Keep the token; True if it went to the OS keyring, False if memory only."""
        key = _key(server_url, username)
        self._memory[key] = token
        if not keyring_usable():
            log.info("no OS keyring available: the sign-in token is kept in memory only")
            return False
        keyring = _keyring()
        try:
            keyring.set_password(SERVICE, key, token)
            return True
        except keyring.errors.KeyringError as e:
            log.warning("OS keyring refused the token (%s); kept in memory only", type(e).__name__)
            return False

    def load(self, server_url: str, username: str) -> str | None:
        key = _key(server_url, username)
        if key in self._memory:
            return self._memory[key]
        if not keyring_usable():
            return None
        keyring = _keyring()
        try:
            return keyring.get_password(SERVICE, key)
        except keyring.errors.KeyringError:
            return None

    def clear(self, server_url: str, username: str) -> None:
        key = _key(server_url, username)
        self._memory.pop(key, None)
        if keyring_usable():
            keyring = _keyring()
            try:
                keyring.delete_password(SERVICE, key)
            except keyring.errors.PasswordDeleteError:
                pass
            except keyring.errors.KeyringError as e:
                log.warning("could not delete the token from the keyring (%s)", type(e).__name__)
