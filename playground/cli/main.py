"""The ``playground`` command: the TUI by default, and headless subcommands.

    playground [PRESET] [--device D] [--seed S]     open the TUI (--presenter: for a room)
    playground presets                              list the presets
    playground run PRESET [--steps N] ...           train headless, print a table or JSON
    playground run PRESET --ranks N                 the same on N data-parallel ranks (DDP)
    playground accumulate PRESET --k K [--ranks N]  full batch == K micro-batches == all-reduce
    playground grad "EXPR" --at x=1 y=2             the autograd explorer in the terminal
    playground landscape PRESET [--steps N]         the loss over two parameters, the path
    playground serve [PRESET] [--host H --token]    the TUI in browsers, one process per tab

Exit codes: 0 done, 2 bad input (preset, setting, device, expression), 1 anything else.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import shtab

from playground.cli import accumulate, grad, landscape, serve
from playground.cli.ranks import add_rank_options

SUBCOMMANDS = ("presets", "run", "grad", "serve", "accumulate", "landscape", "tui")
# options of `playground` itself (anything else before a subcommand means the TUI)
TOP_LEVEL = ("-h", "--help", "--version", "--print-completion")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number")
    return value


def _add_session_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device", default=None, help="auto | cpu | cuda | cuda:N | mps (default: auto)"
    )
    p.add_argument("--seed", type=int, default=None, help="seed for data and initial weights")


def _add_setting_options(p: argparse.ArgumentParser) -> None:
    """One option per setting a user changes most (``config.USER_SETTINGS``: the same
    ones as the TUI's form), typed and with the choices the setting allows."""
    from playground.training.config import KINDS, SETTINGS, USER_SETTINGS, parse_setting

    def typed(name: str) -> Callable[[str], Any]:
        def convert(text: str) -> Any:
            try:
                return parse_setting(name, text)
            except ValueError as exc:
                raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None

        return convert

    for name in USER_SETTINGS:
        setting = SETTINGS[name]
        if KINDS[name] is bool:  # --shuffle / --no-shuffle
            p.add_argument(
                setting.option,
                dest=name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=f"{setting.label} (default: the preset's)",
            )
            continue
        p.add_argument(
            setting.option,
            dest=name,
            # choices are checked by argparse itself, with the list in its message
            type=str if setting.choices else typed(name),
            choices=setting.choices or None,
            default=None,
            help=f"{setting.label} (default: the preset's)",
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="playground",
        description="A terminal training playground for gradient descent with PyTorch.",
    )
    from playground import __version__

    parser.add_argument("--version", action="version", version=f"playground {__version__}")
    # `playground --print-completion bash > /etc/bash_completion.d/playground` (or zsh, tcsh)
    shtab.add_argument_to(parser, "--print-completion")
    sub = parser.add_subparsers(dest="command")

    tui = sub.add_parser("tui", help="open the TUI (the default)")
    tui.add_argument("preset", nargs="?", default=None, help="preset name or .toml file")
    _add_session_options(tui)
    tui.add_argument("--resume", metavar="FILE", default=None, help="resume a saved session")
    tui.add_argument(
        "--max-steps",
        type=_positive_int,
        default=None,
        help="train steps a run (r) goes on for (default: the preset's)",
    )
    tui.add_argument(
        "--fps",
        type=_positive_float,
        default=None,
        help="snapshots per second while running (lower it on slow links)",
    )
    tui.add_argument(
        "--presenter",
        action="store_true",
        help="start in presenter mode: large type, a phase banner, slow motion (P toggles it)",
    )

    sub.add_parser("presets", help="list the presets")

    run = sub.add_parser("run", help="train a preset headless")
    run.add_argument("preset", help="preset name or .toml file")
    run.add_argument(
        "--steps", type=_positive_int, default=None, help="train steps (default: the preset's)"
    )
    run.add_argument(
        "--until-loss",
        type=float,
        default=None,
        metavar="TOL",
        help="stop once a step's loss is <= TOL",
    )
    _add_setting_options(run)
    add_rank_options(run)
    run.add_argument(
        "--actions",
        metavar="KEYS",
        default=None,
        help='the TUI\'s keys in order, with repeats: "b b z s n*10 r" (f forward, b backward, '
        "z zero_grad, Z zero_grad to None, s step, n train step, r run, u undo, ^y redo, "
        "^r reset); prints the state after each",
    )
    run.add_argument(
        "--explain",
        action="store_true",
        help="with --actions: after each action, what it did in words and the course's "
        "warnings (forgot zero_grad, stale gradient, lr too large, K without 1/K)",
    )
    run.add_argument(
        "--predict",
        metavar="X",
        default=None,
        help="the model's prediction at an input, e.g. \"3, 2\" (default: the preset's own)",
    )
    run.add_argument(
        "--restore-best",
        action="store_true",
        help="end on the parameters of the epoch with the lowest validation loss",
    )
    run.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    run.add_argument("--every", type=_positive_int, default=None, help="print every N steps")
    run.add_argument(
        "--export-script",
        metavar="FILE",
        default=None,
        help="write the session as a runnable .py file",
    )
    run.add_argument(
        "--export-notebook",
        metavar="FILE",
        default=None,
        help="write the session as a Jupyter notebook (.ipynb)",
    )
    run.add_argument("--export-csv", metavar="FILE", default=None, help="write the loss history")
    run.add_argument("--save", metavar="FILE", default=None, help="save the session to FILE")
    run.add_argument(
        "--resume",
        metavar="FILE",
        default=None,
        help="continue a saved session instead of starting PRESET afresh",
    )

    grad.add_parser(sub)
    accumulate.add_parser(sub)
    landscape.add_parser(sub)
    serve.add_parser(sub, _add_session_options)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    # `playground`, `playground PRESET` and `playground --device cpu` all mean the TUI
    if not args_list or (args_list[0] not in SUBCOMMANDS and args_list[0] not in TOP_LEVEL):
        args_list = ["tui", *args_list]
    parser = build_parser()
    args = parser.parse_args(args_list)
    try:
        if args.command == "presets":
            return cmd_presets()
        if args.command == "run":
            from playground.cli.run import cmd_run

            return cmd_run(args)
        if args.command == "grad":
            return grad.run(args)
        if args.command == "serve":
            return serve.run(args)
        if args.command == "accumulate":
            return accumulate.run(args)
        if args.command == "landscape":
            return landscape.run(args)
        return cmd_tui(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `playground run ... | head`: the reader has what it wanted
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - stdout is closed at exit
        return 0


def cmd_presets() -> int:
    from playground.training.catalog import preset_infos

    infos, errors = preset_infos()
    width = max((len(i.name) for i in infos), default=0)
    for info in sorted(infos, key=lambda i: i.name):
        print(f"{info.name:<{width}}  {info.title}")
    for err in errors:
        print(f"(skipped) {err}", file=sys.stderr)
    return 0


NO_TERMINAL = (
    "playground: the TUI needs a terminal to draw in and read keys from, and this is not one.\n"
    "In scripts and pipes, train headless: playground run {preset} --json\n"
    "(playground presets lists the presets, playground run --help the options)."
)


def has_terminal() -> bool:
    """Whether the TUI can draw and read keys: stdin and stderr (where Textual draws)
    are a terminal, or Textual is told to use another driver (``TEXTUAL_DRIVER``, as
    ``playground serve`` does for each browser tab). Without one, Textual would spin
    on the closed input forever and show nothing."""
    if os.environ.get("TEXTUAL_DRIVER"):
        return True
    streams = (sys.stdin, sys.__stderr__)
    return all(s is not None and s.isatty() for s in streams)


def cmd_tui(args: argparse.Namespace) -> int:
    if not has_terminal():
        print(NO_TERMINAL.format(preset=args.preset or "PRESET"), file=sys.stderr)
        return 2
    from playground.tui import make_app

    app = make_app(
        preset=args.preset,
        device=args.device or "auto",
        seed=args.seed,
        resume=args.resume,
        fps=args.fps,
        presenter=args.presenter,
        autosave=True,
        overrides={"max_steps": args.max_steps} if args.max_steps else None,
    )
    app.run()
    # the save made as the app closed (q pressed twice while saving, or a crash): the
    # app cannot say it any more, the terminal can
    saved = getattr(getattr(app, "runner", None), "final_save", None)
    if saved is not None and saved.error:
        print(f"playground: the session was not saved: {saved.error}", file=sys.stderr)
        return 1
    if saved is not None and getattr(app, "quitting", None) is not None and app.quitting.pending:
        print(f"playground: the session was saved to {saved.path}", file=sys.stderr)
    return int(getattr(app, "return_code", 0) or 0)
