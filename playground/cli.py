"""The ``playground`` command: the TUI by default, and headless subcommands.

    playground [PRESET] [--device D] [--seed S]     open the TUI
    playground presets                              list the presets
    playground run PRESET [--steps N] ...           train headless, print a table or JSON
    playground grad "EXPR" --at x=1 y=2             the autograd explorer in the terminal

Exit codes: 0 done, 2 bad input (preset, setting, device, expression), 1 anything else.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from typing import Any

SUBCOMMANDS = ("presets", "run", "grad", "tui")


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="playground",
        description="A terminal training playground for gradient descent with PyTorch.",
    )
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
    run.add_argument("--lr", type=_positive_float, default=None)
    run.add_argument("--momentum", type=float, default=None)
    run.add_argument("--optimizer", default=None, help="gd | sgd | adam")
    run.add_argument("--model", default=None, help="scalar | linear | logistic | softmax | mlp")
    run.add_argument("--loss", default=None, help="mse | sse | bce | ce")
    run.add_argument("--batch-size", type=_positive_int, default=None, help="0 = full batch")
    run.add_argument(
        "--accumulate",
        type=_positive_int,
        default=None,
        metavar="K",
        help="backward passes (micro-batches) per optimizer step",
    )
    _add_session_options(run)
    run.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    run.add_argument("--every", type=_positive_int, default=None, help="print every N steps")
    run.add_argument(
        "--export-script",
        metavar="FILE",
        default=None,
        help="write the session as a runnable .py file",
    )
    run.add_argument("--export-csv", metavar="FILE", default=None, help="write the loss history")
    run.add_argument("--save", metavar="FILE", default=None, help="save the session to FILE")
    run.add_argument(
        "--resume",
        metavar="FILE",
        default=None,
        help="continue a saved session instead of starting PRESET afresh",
    )

    try:
        from playground import cli_grad
    except ImportError:  # pragma: no cover - optional while the explorer is absent
        cli_grad = None
    if cli_grad is not None:
        cli_grad.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    # `playground`, `playground PRESET` and `playground --device cpu` all mean the TUI
    if not args_list or (args_list[0] not in SUBCOMMANDS and args_list[0] not in ("-h", "--help")):
        args_list = ["tui", *args_list]
    parser = build_parser()
    args = parser.parse_args(args_list)
    try:
        if args.command == "presets":
            return cmd_presets()
        if args.command == "run":
            return cmd_run(args)
        if args.command == "grad":
            from playground import cli_grad

            return cli_grad.run(args)
        return cmd_tui(args)
    except KeyboardInterrupt:
        return 130


def _fail(message: str) -> int:
    print(f"playground: error: {message}", file=sys.stderr)
    return 2


def cmd_presets() -> int:
    from playground.engine.presets import preset_infos

    infos, errors = preset_infos()
    width = max((len(i.name) for i in infos), default=0)
    for info in sorted(infos, key=lambda i: i.name):
        print(f"{info.name:<{width}}  {info.title}")
    for err in errors:
        print(f"(skipped) {err}", file=sys.stderr)
    return 0


def cmd_tui(args: argparse.Namespace) -> int:
    from playground.ui import make_app

    app = make_app(
        preset=args.preset,
        device=args.device or "auto",
        seed=args.seed,
        resume=args.resume,
        fps=args.fps,
        autosave=True,
        overrides={"max_steps": args.max_steps} if args.max_steps else None,
    )
    app.run()
    return int(getattr(app, "return_code", 0) or 0)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    keys = (
        "lr",
        "momentum",
        "optimizer",
        "model",
        "loss",
        "batch_size",
        "accumulate",
        "seed",
        "device",
    )
    return {k: getattr(args, k) for k in keys if getattr(args, k) is not None}


def _row(snap: Any) -> dict[str, Any]:
    return {
        "step": snap.step,
        "epoch": round(snap.epoch, 4),
        "loss": snap.last_loss,
        "train_loss": snap.train_loss,
        "val_loss": snap.val_loss,
        "accuracy": snap.accuracy,
    }


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _params(d: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if d is None else {k: v.tolist() for k, v in d.items()}


def cmd_run(args: argparse.Namespace) -> int:
    from playground.engine.devices import DeviceError
    from playground.engine.presets import PresetError, find_preset
    from playground.engine.session import Session

    try:
        if args.resume:
            from playground.engine.persist import SessionFileError, load_session

            try:
                session = load_session(args.resume, device=args.device)
            except SessionFileError as exc:
                return _fail(str(exc))
        else:
            session = Session(find_preset(args.preset), **_overrides(args))
    except (PresetError, DeviceError, ValueError) as exc:
        return _fail(str(exc))
    steps = args.steps if args.steps is not None else session.cfg.max_steps
    until = args.until_loss if args.until_loss is not None else session.cfg.until_loss
    every = args.every or max(1, steps // 20)
    out = sys.stdout
    header = ("step", "epoch", "loss", "train_loss", "val_loss", "accuracy")
    if not args.json:
        print(
            f"{session.preset.title}\n{session.snapshot().device}, lr {session.cfg.lr:g}, "
            f"{session.cfg.optimizer}, {session.cfg.loss}",
            file=out,
        )
        print("  ".join(f"{h:>12}" for h in header), file=out)
    done, reason = 0, "max_steps"
    while done < steps:
        result = session.run(min(every, steps - done), until)
        done += result.steps
        snap = session.snapshot()
        row = _row(snap)
        if args.json:
            print(json.dumps(row), file=out)
        else:
            print("  ".join(f"{_fmt(row[h]):>12}" for h in header), file=out)
        reason = result.reason
        if reason != "max_steps":
            break
    snap = session.snapshot()
    final = {p.name: p.value.tolist() for p in snap.params}
    if args.export_script:
        session.export_script(args.export_script)
    if args.export_csv:
        from playground.engine.export import write_loss_csv

        write_loss_csv(session, args.export_csv)
    if args.save:
        from playground.engine.persist import save_session

        save_session(session, args.save)
    summary = {
        "preset": snap.preset,
        "reason": reason,
        "steps": snap.step,
        "message": snap.message,
        "final": final,
        "true": _params(snap.true_params),
        "closed_form": _params(snap.closed_form),
        "train_loss": snap.train_loss,
        "val_loss": snap.val_loss,
        "accuracy": snap.accuracy,
    }
    if args.json:
        print(json.dumps({"summary": summary}), file=out)
        return 0
    print(
        f"\nstopped ({reason.replace('_', ' ')}) after {snap.step} steps. {snap.message}".rstrip(),
        file=out,
    )
    names = [p.name for p in snap.params]
    cols = [("final", final), ("true", summary["true"]), ("least squares", summary["closed_form"])]
    cols = [(label, vals) for label, vals in cols if vals]
    print(f"{'param':<10}" + "".join(f"{label:>30}" for label, _ in cols), file=out)
    for n in names:
        cells = "".join(f"{_short(vals.get(n)):>30}" for _, vals in cols)
        print(f"{n:<10}{cells}", file=out)
    return 0


def _short(v: Any) -> str:
    import numpy as np

    if v is None:
        return "-"
    a = np.asarray(v, dtype=float).reshape(-1)
    if a.size > 4:
        return f"[{a.size} values, |.| {np.linalg.norm(a):.4g}]"
    return "[" + ", ".join(f"{x:.6g}" for x in a) + "]"


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
