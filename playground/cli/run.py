"""``playground run``: train a preset headless and print a table or JSON lines."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def _fail(message: str) -> int:
    print(f"playground: error: {message}", file=sys.stderr)
    return 2


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    from playground.training.config import USER_SETTINGS

    return {k: getattr(args, k) for k in USER_SETTINGS if getattr(args, k, None) is not None}


def _row(snap: Any) -> dict[str, Any]:
    return {
        "step": snap.step,
        "epoch": round(snap.epoch, 4),
        "batch_loss": snap.batch_loss,
        "train_loss": snap.train_loss,
        "val_loss": snap.val_loss,
        "train_accuracy": snap.train_accuracy,
        "val_accuracy": snap.val_accuracy,
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
    from playground.training.catalog import PresetError
    from playground.training.devices import DeviceError
    from playground.training.presets import find_preset
    from playground.training.session import Session

    try:
        if args.resume:
            from playground.training.persist import SessionFileError, load_session

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
    header = ("step", "epoch", "batch_loss", "train_loss", "val_loss", "train_accuracy")
    if not args.json:
        print(
            f"{session.preset.title}\n{session.snapshot().device}, lr {session.cfg.lr:g}, "
            f"{session.cfg.optimizer}, {session.cfg.loss}",
            file=out,
        )
        print("  ".join(f"{h:>12}" for h in header), file=out)
    from playground.training.runs import StopReason, describe

    # one run (one undo entry in a saved session), reported every `every` steps
    session.begin_run(steps, until)
    while True:
        result = session.run_slice(steps=every)
        row = _row(session.snapshot())
        if args.json:
            print(json.dumps(row), file=out)
        else:
            print("  ".join(f"{_fmt(row[h]):>12}" for h in header), file=out)
        if result.reason is not StopReason.BUDGET:
            break
    reason, message = str(result.reason), describe(result, until)
    snap = session.snapshot()
    final = {p.name: p.value.tolist() for p in snap.params}
    if args.export_script:
        session.export_script(args.export_script)
    if args.export_csv:
        from playground.training.export import write_loss_csv

        write_loss_csv(session, args.export_csv)
    if args.save:
        from playground.training.persist import save_session

        save_session(session, args.save)
    summary = {
        "preset": snap.preset,
        "reason": reason,
        "steps": snap.step,
        "message": message,
        "final": final,
        "true": _params(snap.true_params),
        "closed_form": _params(snap.closed_form),
        "train_loss": snap.train_loss,
        "val_loss": snap.val_loss,
        "train_accuracy": snap.train_accuracy,
        "val_accuracy": snap.val_accuracy,
    }
    if args.json:
        print(json.dumps({"summary": summary}), file=out)
        return 0
    print(
        f"\nstopped ({reason.replace('_', ' ')}) after {snap.step} steps: {message}",
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
