"""Credentials of a shared ("team") deployment: app registrations and user passwords.

The zero-config default is a local test tool: every client id shares the published secret
``graphattach-secret`` and gets every application role, and the demo users' password is
``graphattach``. A team that runs graphattach on a shared host gives it a config file
(``graphattach serve --config team.json`` or ``$GRAPHATTACH_CONFIG``)::

    {
      "apps": [
        {"clientId": "5b1f...", "clientSecret": "env:CI_APP_SECRET",
         "roles": ["Mail.ReadWrite"], "displayName": "CI pipeline"}
      ],
      "users": [
        {"userPrincipalName": "dev1@team.example", "displayName": "Dev One",
         "password": "env:DEV1_PASSWORD"}
      ]
    }

With ``apps``, only those client ids get tokens from the token endpoint: ``client_credentials``
needs the app's own secret and yields the app's own roles; the ``password`` grant needs a
registered client id (a public client: no secret). ``users`` are created at start if absent,
with their password. A value ``"env:NAME"`` is read from the environment variable ``NAME``, so
secrets need not be in the file. Passwords are kept as scrypt hashes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphattach.auth.permissions import APP_ROLES
from graphattach.auth.secrets import same_secret

#: ``GRAPHATTACH_CONFIG``: the team config file when ``--config`` is not given.
CONFIG_ENV = "GRAPHATTACH_CONFIG"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


class ConfigError(ValueError):
    """The team config file is unreadable or wrong; the message says where."""


@dataclass(frozen=True, slots=True)
class AppRegistration:
    client_id: str
    secret_hash: str
    roles: tuple[str, ...]
    display_name: str = ""

    def check_secret(self, secret: str) -> bool:
        return verify_password(secret, self.secret_hash)


@dataclass(frozen=True, slots=True)
class TeamUser:
    user_principal_name: str
    password: str
    display_name: str | None = None
    max_message_size: int | None = None


@dataclass(frozen=True, slots=True)
class TeamConfig:
    apps: dict[str, AppRegistration] = field(default_factory=dict)
    users: tuple[TeamUser, ...] = ()

    @property
    def registered_apps_only(self) -> bool:
        return bool(self.apps)


def hash_password(password: str) -> str:
    """``scrypt$<salt>$<hash>`` (base64), the form kept in the store."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8", "surrogatepass"), salt=salt, **_SCRYPT)
    return f"scrypt${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches a ``hash_password`` value (constant time)."""
    try:
        scheme, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(password.encode("utf-8", "surrogatepass"), salt=base64.b64decode(salt), **_SCRYPT)
    except ValueError:
        return False
    return same_secret(actual.hex(), expected.hex())


def check_user_password(data: dict[str, Any], password: str) -> bool:
    """A user record's password check: the scrypt hash, or the plain demo password of records
    made before hashes (and of the demo users)."""
    stored_hash = data.get("passwordHash")
    if isinstance(stored_hash, str):
        return verify_password(password, stored_hash)
    plain = data.get("password")
    return isinstance(plain, str) and same_secret(password, plain)


def _resolve(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where} must be a non-empty string")
    if value.startswith("env:"):
        name = value[4:]
        found = os.environ.get(name)
        if not found:
            raise ConfigError(f"{where} names the environment variable {name}, which is not set")
        return found
    return value


def load_team_config(path: str | Path | None) -> TeamConfig:
    """The config file at ``path`` (None: no file, the zero-config default)."""
    if path is None:
        return TeamConfig()
    try:
        raw = json.loads(Path(path).expanduser().read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the config must be a JSON object")
    unknown = set(raw) - {"apps", "users"}
    if unknown:
        raise ConfigError(f"{path}: unknown keys {sorted(unknown)} (use 'apps' and 'users')")
    apps: dict[str, AppRegistration] = {}
    for n, entry in enumerate(raw.get("apps") or []):
        where = f"{path}: apps[{n}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be an object")
        client_id = _resolve(entry.get("clientId"), f"{where}.clientId")
        secret = _resolve(entry.get("clientSecret"), f"{where}.clientSecret")
        if len(secret) < 16:
            raise ConfigError(f"{where}.clientSecret must be at least 16 characters")
        roles = entry.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise ConfigError(f"{where}.roles must be a list of role names")
        unknown_roles = sorted(set(roles) - set(APP_ROLES))
        if unknown_roles:
            raise ConfigError(f"{where}.roles: unknown roles {unknown_roles} (known: {sorted(APP_ROLES)})")
        if client_id in apps:
            raise ConfigError(f"{where}: clientId {client_id} is registered twice")
        apps[client_id] = AppRegistration(
            client_id, hash_password(secret), tuple(roles), str(entry.get("displayName") or "")
        )
    users: list[TeamUser] = []
    for n, entry in enumerate(raw.get("users") or []):
        where = f"{path}: users[{n}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be an object")
        upn = _resolve(entry.get("userPrincipalName"), f"{where}.userPrincipalName")
        password = _resolve(entry.get("password"), f"{where}.password")
        if len(password) < 12:
            raise ConfigError(f"{where}.password must be at least 12 characters")
        size = entry.get("maxMessageSize")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size <= 0):
            raise ConfigError(f"{where}.maxMessageSize must be a positive integer")
        name = entry.get("displayName")
        users.append(TeamUser(upn, password, name if isinstance(name, str) else None, size))
    return TeamConfig(apps, tuple(users))
