"""Minting and verifying the server's tokens.

Graph tokens are RS256 JWTs like Entra ID's: ``aud=https://graph.microsoft.com``, ``iss`` the
tenant's v1 issuer, ``tid``, ``oid``, ``upn``, ``scp`` (delegated) or ``roles`` (app), ``exp``.
Upload tokens (the ``authtoken`` of an upload URL) are JWTs of their own audience, bound to one
session. The signing key lives in the metadata store so every server process shares it.

Verifying an RS256 signature costs far more than the rest of a small request, and clients send
the same token again and again (every PUT of an upload carries its URL's ``authtoken``). So the
outcome of a successful verification is kept per exact token string (``_VerifiedCache``), for
as long as the token is valid and at most ``CACHE_SIZE`` tokens; checks that depend on the clock
(the lifetime of Graph tokens, against the server clock that tests can move) still run on every
request. A token that fails verification is not kept.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import time
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from graphattach.auth.principal import Principal
from graphattach.domain import ids
from graphattach.protocol.errors import InvalidAudience, InvalidAuthenticationToken, TokenExpired

GRAPH_AUDIENCE = "https://graph.microsoft.com"
GRAPH_AUDIENCES = (GRAPH_AUDIENCE, GRAPH_AUDIENCE + "/", "00000003-0000-0000-c000-000000000000")
UPLOAD_AUDIENCE = "https://outlook.office.com/api/"
#: The app id ``graphattach token`` puts in tokens it mints for people.
CLI_APP_ID = "14d82eec-204b-4c2f-b7e8-296a70dab67e"
#: The app id of application tokens the admin API mints when no ``appId`` is given.
ADMIN_APP_ID = "00000000-0000-0000-0000-0000000a99a7"


def generate_private_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


#: The primes of the published test key servers started with ``--seed`` sign with (generated once
#: with Miller-Rabin from a fixed seed; computing them at start took seconds of pure Python).
_TEST_KEY_P = int(
    "d1003ec00bcbd0ef9e52eba8f49bf80b34b4b8bfee0c0fa2ce16108668fd9a5b773c9f563fde49591622e95eb8b68687"
    "6fe9fe95d8917f5c63e8c8770c42ae9a31af6ad977663a9b81c775800a56d88240e7eec70d6888b4948d467e6dd45fe8"
    "eed963cd06a40ff65dfbae596e9ab6be5bae7076e9f1c815a3347e4b159c6d2f",
    16,
)
_TEST_KEY_Q = int(
    "e2fbad401a7c926b74fb2b467584e616ae8d0105b983c2113a7e9c47e32e04336000cd4e8e028aa480ef3c5fe47c06f6"
    "b864b1fdd100ad422175f0f37b850be56342b1d4f96785f2dd2941a5d93c62e9b2db014b771278d727af73d950c81c4a"
    "95728dd991b9310bffeeaff2fbd9bc2897aafb13c0639b59df419c1888bdd981",
    16,
)


@functools.cache
def test_private_key_pem() -> str:
    """The published test key: a server started with ``--seed`` signs with it, so its tokens and
    upload URLs repeat from run to run. For tests only: this key is in the source code."""
    p, q, e = _TEST_KEY_P, _TEST_KEY_Q, 65537
    d = pow(e, -1, (p - 1) * (q - 1))
    numbers = rsa.RSAPrivateNumbers(
        p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q), rsa.RSAPublicNumbers(e, p * q)
    )
    return (
        numbers.private_key(unsafe_skip_rsa_key_validation=True)  # our own primes: no need for OpenSSL's slow check
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode("ascii")
    )


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


#: Verified tokens remembered per cache (the oldest is forgotten first).
CACHE_SIZE = 4096

V = TypeVar("V")


class _VerifiedCache(Generic[V]):
    """What verifying a token string yielded, until the token's ``exp`` (wall clock) has passed."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self._size = size
        self._entries: dict[str, tuple[float, V]] = {}

    def get(self, token: str) -> tuple[bool, V | None]:
        entry = self._entries.get(token)
        if entry is None:
            return False, None
        if entry[0] <= time.time():
            self._entries.pop(token, None)
            return False, None
        return True, entry[1]

    def put(self, token: str, expires: float, value: V) -> None:
        if expires <= time.time():
            return
        if len(self._entries) >= self._size:
            self._entries.pop(next(iter(self._entries)), None)
        self._entries[token] = (expires, value)


def _exp(claims: dict[str, Any]) -> float:
    value = claims.get("exp")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


@dataclass(frozen=True, slots=True)
class UploadClaims:
    session_id: str
    user_id: str
    expires: float


class TokenService:
    """Signs and verifies every token the server deals in."""

    def __init__(self, private_key_pem: str, tenant_id: str, issuer_base: str) -> None:
        self.private_key_pem = private_key_pem
        # The key is the server's own, generated by it and read from its own store: OpenSSL 3's
        # consistency check of an RSA key takes 0.1-0.5 s and would dominate every start
        # (https://github.com/pyca/cryptography/issues/7236).
        key = serialization.load_pem_private_key(
            private_key_pem.encode("ascii"), password=None, unsafe_skip_rsa_key_validation=True
        )
        assert isinstance(key, rsa.RSAPrivateKey)
        self._private_key: rsa.RSAPrivateKey = key
        self._public_key = self._private_key.public_key()
        der = self._public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.key_id = base64.urlsafe_b64encode(hashlib.sha1(der).digest()).rstrip(b"=").decode("ascii")
        self.tenant_id = tenant_id
        self.issuer = f"https://sts.windows.net/{tenant_id}/"
        self.issuer_base = issuer_base
        self._graph_cache: _VerifiedCache[tuple[float, Principal]] = _VerifiedCache()
        self._upload_cache: _VerifiedCache[UploadClaims] = _VerifiedCache()
        self._audience_cache: _VerifiedCache[str | None] = _VerifiedCache()

    # ---- JWKS / discovery
    def jwks(self) -> dict[str, Any]:
        numbers = self._public_key.public_numbers()
        return {
            "keys": [
                {
                    "kty": "RSA",
                    "use": "sig",
                    "alg": "RS256",
                    "kid": self.key_id,
                    "n": _b64url_uint(numbers.n),
                    "e": _b64url_uint(numbers.e),
                }
            ]
        }

    def _sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self._private_key, algorithm="RS256", headers={"kid": self.key_id, "typ": "JWT"})

    # ---- Graph tokens
    def mint_delegated(
        self,
        *,
        user_id: str,
        upn: str,
        name: str,
        scopes: list[str],
        lifetime: int = 3600,
        app_id: str = CLI_APP_ID,
        now: float | None = None,
    ) -> str:
        now = time.time() if now is None else now
        return self._sign(
            {
                "aud": GRAPH_AUDIENCE,
                "iss": self.issuer,
                "iat": int(now),
                "nbf": int(now),
                "exp": int(now + lifetime),
                "tid": self.tenant_id,
                "oid": user_id,
                "sub": user_id,
                "upn": upn,
                "unique_name": upn,
                "name": name,
                "appid": app_id,
                "scp": " ".join(scopes),
                "ver": "1.0",
                "uti": ids.token_hex(16),
            }
        )

    def mint_app(self, *, roles: list[str], app_id: str, lifetime: int = 3600, now: float | None = None) -> str:
        now = time.time() if now is None else now
        return self._sign(
            {
                "aud": GRAPH_AUDIENCE,
                "iss": self.issuer,
                "iat": int(now),
                "nbf": int(now),
                "exp": int(now + lifetime),
                "tid": self.tenant_id,
                "oid": app_id,
                "sub": app_id,
                "appid": app_id,
                "roles": roles,
                "idtyp": "app",
                "ver": "1.0",
                "uti": ids.token_hex(16),
            }
        )

    def mint_id_token(
        self, *, audience: str, user_id: str, upn: str, name: str, issuer: str, lifetime: int = 3600
    ) -> str:
        now = int(time.time())
        return self._sign(
            {
                "aud": audience,
                "iss": issuer,
                "iat": now,
                "nbf": now,
                "exp": now + lifetime,
                "tid": self.tenant_id,
                "oid": user_id,
                "sub": user_id,
                "preferred_username": upn,
                "name": name,
                "ver": "2.0",
            }
        )

    def verify_graph_token(self, authorization: str | None, *, now: float | None = None) -> Principal:
        """The principal of a ``Bearer`` header, or ``InvalidAuthenticationToken`` (401)."""
        if not authorization or not authorization.strip():
            raise InvalidAuthenticationToken()
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise InvalidAuthenticationToken()
        found, cached = self._graph_cache.get(token)
        if found and cached is not None:
            expires, principal = cached
        else:
            expires, principal = self._verify_graph_token(token)
            self._graph_cache.put(token, expires, (expires, principal))
        if expires <= (time.time() if now is None else now):
            raise TokenExpired()
        return principal

    def _verify_graph_token(self, token: str) -> tuple[float, Principal]:
        """The ``exp`` and the principal of a Graph token whose signature, audience and issuer hold."""
        if token.count(".") != 2:
            raise InvalidAuthenticationToken("IDX14100: JWT is not well formed, there are no dots (.).")
        try:
            claims = jwt.decode(
                token,
                self._public_key,
                algorithms=["RS256"],
                audience=list(GRAPH_AUDIENCES),
                issuer=self.issuer,
                # Lifetime is checked below against the server clock, which tests can move.
                options={
                    "require": ["exp", "aud", "iss"],
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.ExpiredSignatureError:
            raise TokenExpired() from None
        except jwt.InvalidAudienceError:
            raise InvalidAuthenticationToken("Invalid audience.") from None
        except jwt.InvalidIssuerError:
            raise InvalidAuthenticationToken("Invalid issuer.") from None
        except jwt.InvalidSignatureError:
            raise InvalidAuthenticationToken("Access token validation failure. Signature validation failed.") from None
        except jwt.DecodeError:
            raise InvalidAuthenticationToken("CompactToken parsing failed with error code: 80049217") from None
        except jwt.InvalidTokenError as exc:
            raise InvalidAuthenticationToken(f"Access token validation failure. {exc}") from None
        expires = claims["exp"]
        app_id = str(claims.get("appid") or claims.get("azp") or "")
        if "scp" in claims:
            return expires, Principal(
                kind="delegated",
                permissions=frozenset(str(claims["scp"]).split()),
                app_id=app_id,
                user_id=str(claims.get("oid")),
                upn=claims.get("upn") or claims.get("preferred_username"),
            )
        roles = claims.get("roles") or []
        return expires, Principal(kind="app", permissions=frozenset(str(r) for r in roles), app_id=app_id)

    # ---- upload tokens
    def mint_upload_token(self, *, session_id: str, user_id: str, expires: float, app_id: str = "") -> str:
        claims: dict[str, Any] = {
            "aud": UPLOAD_AUDIENCE,
            "iss": self.issuer,
            "exp": int(expires) + 1,
            "sid": session_id,
            "uid": user_id,
            "ver": "Exchange.Callback.V1",
        }
        if app_id:
            # The app that created the session: its uploads count against that app's Outlook
            # limits for the mailbox (throttling, docs/fidelity.md).
            claims["appid"] = app_id
        return self._sign(claims)

    def verify_upload_token(self, token: str | None) -> UploadClaims:
        """Claims of an upload URL's ``authtoken`` (expiry is the session's, checked by the caller)."""
        if not token:
            raise InvalidAuthenticationToken("The access token is missing.")
        found, cached = self._upload_cache.get(token)
        if found and cached is not None:
            return cached
        try:
            claims = jwt.decode(
                token,
                self._public_key,
                algorithms=["RS256"],
                audience=UPLOAD_AUDIENCE,
                issuer=self.issuer,
                options={"require": ["exp", "aud", "sid", "uid"], "verify_exp": False},
            )
        except jwt.InvalidAudienceError:
            raise InvalidAudience() from None
        except jwt.InvalidTokenError:
            raise InvalidAuthenticationToken("The access token is invalid.") from None
        result = UploadClaims(str(claims["sid"]), str(claims["uid"]), float(claims["exp"]))
        self._upload_cache.put(token, result.expires, result)
        return result

    def audience_of(self, token: str) -> str | None:
        """The ``aud`` of a token signed by us, else None (for the upload endpoint's 401 wording)."""
        found, cached = self._audience_cache.get(token)
        if found:
            return cached
        try:
            claims = jwt.decode(
                token,
                self._public_key,
                algorithms=["RS256"],
                options={"verify_aud": False, "verify_exp": False},
            )
        except jwt.InvalidTokenError:
            return None
        aud = claims.get("aud")
        audience = str(aud) if aud is not None else None
        self._audience_cache.put(token, _exp(claims), audience)
        return audience
