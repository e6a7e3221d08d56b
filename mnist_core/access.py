"""Who may do what: the person behind a browser session, and whether they hold the admin password.

Shared (classroom) mode: the studio asks for a password, checked here against scrypt hashes from the environment
or Streamlit's secrets; a login is a random token in the browser's cookie, of which only the SHA-256 is kept on
disk, and the Actor id recorded as a run's owner is a prefix of that hash. No Streamlit here (see mnist_core.ui)."""

from __future__ import annotations

import base64
import binascii
import fcntl
import hashlib
import hmac
import ipaddress
import os
import re
import secrets
import time
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mnist_core import storage


@dataclass(frozen=True)
class Actor:
    """A browser session that acts on runs: `id` is recorded as a run's owner; an admin may act on any run
    and has no cap on queued runs. Without a password (one person on their own machine) everyone is admin."""

    id: str | None
    admin: bool = False

    def may_control(self, owner: str | None) -> bool:
        """Return True when this actor may stop, continue or delete a run started by `owner`."""
        return self.admin or owner is None or owner == self.id


# Passwords: scrypt hashes with their parameters, read from the environment or Streamlit's secrets.

PASSWORD_ENV = "MNIST_STUDIO_PASSWORD_HASH"
ADMIN_PASSWORD_ENV = "MNIST_STUDIO_ADMIN_PASSWORD_HASH"
PASSWORD_KEY = "password_hash"  # the keys in .streamlit/secrets.toml
ADMIN_PASSWORD_KEY = "admin_password_hash"
USER, ADMIN = "user", "admin"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1  # 32 MiB and ~0.1 s per check
HASH_FORMAT = "scrypt$N$r$p$<salt, base64>$<hash, base64>"


class PasswordHashError(ValueError):
    """A configured password hash is not one `hash_password` makes; the message says what is wrong."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=length, maxmem=130 * n * r + 2**20)


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """Return "scrypt$N$r$p$<salt>$<hash>" for `password`, with a fresh random 16-byte salt."""
    if not password:
        raise ValueError("the password is empty")
    salt = os.urandom(16)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(_scrypt(password, salt, n, r, p, 32))}"


def parse_password_hash(encoded: str) -> tuple[int, int, int, bytes, bytes]:
    """Return (N, r, p, salt, hash) of an encoded hash; PasswordHashError when it is malformed."""
    parts = encoded.strip().split("$") if isinstance(encoded, str) else []
    if len(parts) != 6 or parts[0] != "scrypt":
        got = "not text" if not isinstance(encoded, str) else f"{len(parts)} '$'-separated fields"
        raise PasswordHashError(
            f"expected {HASH_FORMAT} (from `python -m mnist_core password`; quote it in a shell: it has $ signs), "
            f"got {got}"
        )
    try:
        n, r, p = (int(part) for part in parts[1:4])
        salt, digest = (base64.b64decode(part, validate=True) for part in parts[4:6])
    except (ValueError, binascii.Error) as error:
        raise PasswordHashError(f"expected {HASH_FORMAT}: {error}") from None
    if n < 2 or n > 2**20 or n & (n - 1) or not 1 <= r <= 32 or not 1 <= p <= 16:
        raise PasswordHashError(f"scrypt parameters N={n} r={r} p={p} are out of range (N a power of 2 up to 2^20)")
    if len(salt) < 8 or len(digest) < 16:
        raise PasswordHashError(f"salt of {len(salt)} and hash of {len(digest)} bytes are too short")
    return n, r, p, salt, digest


def verify_password(password: str, encoded: str) -> bool:
    """Return True when `password` matches `encoded` (compared in constant time); PasswordHashError if malformed."""
    n, r, p, salt, digest = parse_password_hash(encoded)
    return hmac.compare_digest(_scrypt(password, salt, n, r, p, len(digest)), digest)


@dataclass(frozen=True)
class Passwords:
    """The configured password hashes (None: not set): the user password, and the admin password."""

    user: str | None = None
    admin: str | None = None

    @property
    def configured(self) -> bool:
        """True when a password is needed to use the studio (shared mode)."""
        return bool(self.user or self.admin)

    def role_of(self, password: str) -> str | None:
        """Return ADMIN or USER for a password that matches one of the hashes, None otherwise."""
        matches = {role: bool(encoded) and verify_password(password, encoded) for role, encoded in self.hashes()}
        return ADMIN if matches[ADMIN] else USER if matches[USER] else None  # both are checked: same time either way

    def hashes(self) -> list[tuple[str, str | None]]:
        return [(USER, self.user), (ADMIN, self.admin)]

    def fingerprint(self, role: str) -> str:
        """Return a short digest of the hash that grants `role`: a session issued under another hash is void."""
        encoded = dict(self.hashes()).get(role) or ""
        return hashlib.sha256(encoded.encode()).hexdigest()[:16] if encoded else ""


def configured_passwords(secrets: Mapping | None = None, environ: Mapping[str, str] | None = None) -> Passwords:
    """Return the password hashes from the environment, else from `secrets` (st.secrets); the environment wins.
    PasswordHashError names the variable or key holding a malformed hash."""
    environ = os.environ if environ is None else environ
    found = {}
    for role, env_name, key in ((USER, PASSWORD_ENV, PASSWORD_KEY), (ADMIN, ADMIN_PASSWORD_ENV, ADMIN_PASSWORD_KEY)):
        value, source = (environ.get(env_name) or "").strip(), env_name
        if not value and secrets is not None:
            value, source = secrets.get(key) or "", f"{key} in .streamlit/secrets.toml"
        if value:
            try:
                parse_password_hash(value)
            except PasswordHashError as error:
                raise PasswordHashError(f"{source}: {error}") from None
        found[role] = value.strip() if isinstance(value, str) and value else None
    return Passwords(found[USER], found[ADMIN])


def is_loopback_address(address: str | None) -> bool:
    """Return True for an address only this machine can reach: 127.0.0.0/8, ::1 or localhost."""
    address = (address or "").strip().strip("[]")
    if address.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


# Login sessions: a random token in the browser's cookie, only its SHA-256 on disk.

SESSIONS_FILE = ".sessions.json"  # in the runs folder, mode 0600
SESSIONS_LOCK = ".sessions.lock"
SESSION_MAX_AGE = 7 * 24 * 3600  # seconds a login lasts
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{32,128}$")


def token_key(token: str) -> str:
    """Return the SHA-256 (hex) of a session token: what the sessions file stores instead of the token."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    """A login: its key (the token's SHA-256), role, when it was made, and the fingerprint of its password hash."""

    key: str
    role: str
    created: float
    fingerprint: str = ""

    @property
    def actor(self) -> Actor:
        """Return the Actor of this login: a prefix of the token's hash (never the token) is its id."""
        return Actor(f"s-{self.key[:16]}", admin=self.role == ADMIN)

    def valid_under(self, passwords: Passwords, now: float | None = None) -> bool:
        """Return True when the password that made this login is still the configured one and it has not expired."""
        now = time.time() if now is None else now
        return (
            self.role in (USER, ADMIN)
            and bool(self.fingerprint)
            and hmac.compare_digest(self.fingerprint, passwords.fingerprint(self.role))
            and 0 <= now - self.created < SESSION_MAX_AGE
        )


class SessionStore:
    """Logins kept in `<runs folder>/.sessions.json` (sha256(token) -> role, created), so a reload of the page or
    a restart of the server keeps a browser logged in, and so the owner of its runs."""

    def __init__(self, root: Path | str):
        self.root = Path(root)
        self.path = self.root / SESSIONS_FILE

    @contextmanager
    def _locked(self):
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / SESSIONS_LOCK, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _read(self) -> dict:
        try:
            entries = storage.read_json_object(self.path) or {}
        except storage.DamagedFile:
            return {}  # an unreadable file logs everyone out; the next login writes a good one
        return {key: value for key, value in entries.items() if isinstance(value, dict)}

    def _write(self, entries: dict) -> None:
        storage.write_json_atomic(self.path, entries, mode=0o600)  # the logins: the owner's eyes only

    def issue(self, role: str, fingerprint: str) -> str:
        """Record a new login for `role` and return its token (for the browser's cookie; it is not stored)."""
        token = secrets.token_urlsafe(32)
        now = time.time()
        with self._locked():
            entries = {
                key: entry
                for key, entry in self._read().items()
                if isinstance(entry.get("created"), (int, float)) and now - entry["created"] < SESSION_MAX_AGE
            }
            entries[token_key(token)] = {"role": role, "created": now, "fingerprint": fingerprint}
            self._write(entries)
        return token

    def get(self, key: str) -> Session | None:
        """Return the login recorded under `key` (a token's SHA-256), None when there is none."""
        entry = self._read().get(key) if isinstance(key, str) else None
        if not entry or not isinstance(entry.get("created"), (int, float)):
            return None
        return Session(key, str(entry.get("role")), float(entry["created"]), str(entry.get("fingerprint") or ""))

    def lookup(self, token: str | None) -> Session | None:
        """Return the login of `token` (from a cookie), None for an unknown or malformed token."""
        if not isinstance(token, str) or not TOKEN_PATTERN.match(token):
            return None
        return self.get(token_key(token))

    def revoke(self, key: str) -> None:
        """Forget the login recorded under `key` (log out); a no-op when it is not there."""
        with self._locked():
            entries = self._read()
            if entries.pop(key, None) is not None:
                self._write(entries)
