"""``playground serve``: the playground in the browser, for a classroom.

    playground serve [PRESET] [--host 127.0.0.1] [--port 8000] [--token [SECRET]]
                     [--max-sessions N] [--device D] [--seed S] [--presenter]

Each browser tab gets a playground of its own (its own process, ended when the tab
closes). The page loads nothing from the internet. On 127.0.0.1 (the default) it needs no
token; any other address needs ``--token``, generated and printed when no SECRET is given.

Only argparse at import time: the server's modules load when the command runs, and torch
never does (each tab's process imports it).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

EXIT_USAGE = 2
GENERATE = "(generate)"  # --token with no value: a new token
# the serve options handed on to each tab's TUI, as `playground tui` spells them
APP_OPTIONS = {"device": "--device", "seed": "--seed", "presenter": "--presenter"}


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not in 0..65535 (0: any free port)")
    return value


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 1")
    return value


def add_parser(
    subparsers: argparse._SubParsersAction,
    session_options: Callable[[argparse.ArgumentParser], None],
) -> None:
    """Register ``serve``; ``session_options`` adds the TUI's --device and --seed."""
    p = subparsers.add_parser(
        "serve",
        help="serve the playground to browsers, one session per tab (textual-serve)",
        description="The playground in browsers, for a classroom: each tab gets a session "
        "(a process) of its own. Nothing is loaded from the internet.",
    )
    p.add_argument("preset", nargs="?", default=None, help="preset each tab opens")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=_port, default=8000, help="port (default: 8000; 0: any)")
    p.add_argument(
        "--token",
        nargs="?",
        const=GENERATE,
        default=None,
        metavar="SECRET",
        help="require ?token=SECRET on every request (needed off 127.0.0.1; "
        "without SECRET one is generated)",
    )
    p.add_argument(
        "--max-sessions",
        type=_at_least_one,
        default=None,
        metavar="N",
        help="tabs open at once (default: free memory / 320 MB)",
    )
    p.add_argument(
        "--presenter",
        action="store_true",
        help="every tab starts in presenter mode (large type, slow motion; P toggles it); "
        "?fontsize=N in the address scales the page",
    )
    session_options(p)


def app_args(args: argparse.Namespace) -> tuple[str, ...]:
    """What each tab's ``playground tui`` gets: the preset and the options handed on."""
    out: list[str] = []
    if args.preset is not None:
        out.append(args.preset)
    for dest, flag in APP_OPTIONS.items():
        value = getattr(args, dest, None)
        if value is True:
            out.append(flag)
        elif value is not None and value is not False:
            out += [flag, str(value)]
    return tuple(out)


def preset_problem(name: str) -> str | None:
    """The TUI's lookup (a .toml file, or a shipped name or file stem), without torch."""
    from playground.training.catalog import preset_infos

    if name.endswith(".toml"):
        return None if Path(name).is_file() else f"{name}: no such file"
    infos, _ = preset_infos()
    if any(name in (i.name, i.path.stem) for i in infos):
        return None
    names = ", ".join(sorted(i.name for i in infos))
    return f"{name!r}: no such preset; available: {names}"


def url_for(host: str, port: int, token: str | None) -> str:
    shown = host if ":" not in host else f"[{host}]"
    query = f"?token={quote(token, safe='')}" if token is not None else ""
    return f"http://{shown}:{port}/{query}"


def banner(preset: str | None, host: str, port: int, token: str | None, cap: int) -> str:
    """What the instructor reads: where to point browsers, and the ssh recipe."""
    from playground.serve.policy import is_loopback

    machine = socket.gethostname()
    what = preset or "the preset picker"
    lines = [f"playground serve: {what}, a session of its own per browser tab ({cap} at most)"]
    if is_loopback(host):
        lines.append(f"  open         {url_for('localhost', port, token)}")
    elif host in ("0.0.0.0", "::"):
        lines.append(f"  open         {url_for(machine, port, token)}")
        lines.append(f"               (any address of this machine: {host})")
    else:
        lines.append(f"  open         {url_for(host, port, token)}")
    lines += [
        "  on a GPU server, tunnel from your laptop first:",
        f"               ssh -N -L {port}:localhost:{port} {getpass.getuser()}@{machine}",
        f"               then open {url_for('localhost', port, token)}",
        "  Ctrl+C stops the server and every session.",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from playground.serve.policy import (
        ServeOptions,
        binding_problem,
        default_max_sessions,
        new_token,
    )
    from playground.serve.server import run_server

    token = new_token() if args.token == GENERATE else args.token
    problem = binding_problem(args.host, token)
    if problem is None and args.preset is not None:
        problem = preset_problem(args.preset)
    if problem is None and args.preset is None and token is not None:
        if token == args.token and preset_problem(token) is None:
            # `serve --token five-points`: --token took the preset as its value
            problem = (
                f"--token {token}: that is a preset's name; put the preset first "
                f"(playground serve {token} --token), or choose another token"
            )
    if problem is not None:
        print(f"playground serve: {problem}", file=sys.stderr)
        return EXIT_USAGE
    title = f"playground - {args.preset}" if args.preset else "playground"
    if args.preset is not None and args.preset.endswith(".toml"):
        args.preset = str(Path(args.preset).resolve())  # the tabs may start elsewhere
    cap = args.max_sessions or default_max_sessions()
    options = ServeOptions(
        host=args.host,
        port=args.port,
        token=token,
        max_sessions=cap,
        app_args=app_args(args),
        title=title,
    )

    def listening(host: str, port: int) -> None:
        print(banner(args.preset, args.host, port, token, cap), flush=True)

    return asyncio.run(run_server(options, listening))
