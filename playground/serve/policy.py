"""Who may open a classroom session, and how many at once: the rules of ``playground serve``.

Plain functions and one frozen dataclass, no web server: the CLI checks the options with
them before anything binds a port, and the server asks them on every request.

- Loopback (127.0.0.1, localhost, ::1) needs no token: only this machine (and whoever
  tunnels in with ``ssh -L``) can reach it. Such a server answers only requests addressed
  to a loopback name, and websockets opened from a page of its own origin, so that no other
  web page open in the student's browser (nor a DNS name rebound to 127.0.0.1) can start
  and drive sessions.
- Any other address needs a token; every request without it gets 403.
- At most ``max_sessions`` sessions run at once; by default as many as the free memory
  holds, ``SESSION_BYTES`` each.
"""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

SESSION_BYTES = 320 * 1024**2  # one tab's process with torch loaded, measured on five-points
FALLBACK_MAX_SESSIONS = 4  # where the free memory cannot be read
MEMINFO = Path("/proc/meminfo")
LOOPBACK_NAMES = ("localhost", "localhost.", "ip6-localhost")
TOKEN_COOKIE = "playground_token"  # + the port: two servers on one host keep their own


@dataclass(frozen=True)
class ServeOptions:
    """Everything ``playground serve`` was asked for; ``app_args`` go to each tab's TUI."""

    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    max_sessions: int = 1
    app_args: tuple[str, ...] = field(default_factory=tuple)
    title: str = "playground"

    @property
    def cookie_name(self) -> str:
        return f"{TOKEN_COOKIE}_{self.port}"


def is_loopback(host: str) -> bool:
    """True for an address (or the name ``localhost``) that only this machine reaches."""
    name = host.strip().strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    return secrets.token_urlsafe(24)


def binding_problem(host: str, token: str | None) -> str | None:
    """Why the server must not start on ``host`` with ``token``; None when it may."""
    if token is not None and not token.strip():
        return "--token: the token is empty"
    if token is None and not is_loopback(host):
        return (
            f"--host {host}: anyone who can reach this machine could open sessions; "
            "add --token (one is generated and printed) or --token SECRET, "
            "or keep the default --host 127.0.0.1 and tunnel in with ssh -L"
        )
    return None


def token_matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison; any string may come in (bytes, so non-ASCII is fine)."""
    if given is None:
        return False
    return secrets.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def host_of(authority: str) -> str:
    """``localhost`` from ``localhost:8000``, ``::1`` from ``[::1]:8000``."""
    return urlsplit(f"//{authority}").hostname or ""


def same_origin(origin: str | None, host_header: str) -> bool:
    """A browser's ``Origin`` names the page that opened the websocket: it must be this
    server's own (scheme, host and port as the ``Host`` header says). No Origin at all is
    not a browser page, which cannot drive a session in someone else's browser."""
    if origin is None:
        return True
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host_header.lower()


def available_memory(meminfo: str | None = None) -> int | None:
    """``MemAvailable`` in bytes from ``/proc/meminfo`` (or the text given); None if unknown."""
    if meminfo is None:
        try:
            meminfo = MEMINFO.read_text(encoding="ascii", errors="replace")
        except OSError:
            return None
    for line in meminfo.splitlines():
        key, _, rest = line.partition(":")
        if key.strip() == "MemAvailable":
            words = rest.split()
            try:
                value = int(words[0])
            except (IndexError, ValueError):
                return None
            unit = words[1].lower() if len(words) > 1 else "b"
            return value * 1024 if unit == "kb" else value
    return None


def default_max_sessions(available: int | None = None) -> int:
    """As many sessions as the free memory holds (``SESSION_BYTES`` each), at least one."""
    if available is None:
        available = available_memory()
    if available is None:
        return FALLBACK_MAX_SESSIONS
    return max(1, available // SESSION_BYTES)
