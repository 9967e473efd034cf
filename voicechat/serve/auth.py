"""Who may connect: anyone on loopback by default; with a token, only clients that present it."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Mapping

from voicechat.errors import UsageError

TOKEN_ENV = "VOICECHAT_TOKEN"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Binding beyond this machine without a token would hand the models to anyone on the network."""
    if not token and not is_loopback(host):
        raise UsageError(f"--host {host} reaches beyond this machine: set a token with --token or {TOKEN_ENV} "
                         "(clients send it as ?token=...), or bind to 127.0.0.1")


def presented_token(query: Mapping[str, str], headers: Mapping[str, str]) -> str:
    """The token a client sent: `?token=` (browsers) or `Authorization: Bearer ...`."""
    if query.get("token"):
        return query["token"]
    scheme, _, value = headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def token_ok(expected: str | None, presented: str) -> bool:
    if not expected:
        return True
    return hmac.compare_digest(expected.encode(), presented.encode())
