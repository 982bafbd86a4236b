"""Comparing secrets (client secrets, passwords, the admin key) without leaking timing."""

from __future__ import annotations

import hmac


def same_secret(given: str, expected: str) -> bool:
    """Constant-time equality of two secrets of any characters.

    ``hmac.compare_digest`` refuses ``str`` arguments with non-ASCII characters (a ``TypeError``,
    which was a 500), so both sides are compared as UTF-8 bytes (lone surrogates kept).
    """
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))
