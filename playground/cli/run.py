"""``playground run``: train a preset headless, or drive it action by action, and print a
table or JSON lines (``playground.training.report``: one row per report, then a summary;
the rows follow ``playground/schemas/run.schema.json``).

    playground run two-points --actions "b s z b s" --json
    playground run noisy-line --steps 100 --every 10

``--actions`` takes the TUI's keys (f b z Z s n r u ^y ^r, or the action names), each with
an optional repeat count (``n*10``), and prints the state after every action.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from typing import Any

from playground.cli.settings_check import checked_config, refuse_unused, short_values

# the columns of the table output (the JSON rows carry everything)
HEADER = ("step", "epoch", "batch_loss", "train_loss", "val_loss", "train_accuracy")


def _fail(message: str) -> int:
    from playground.text import clean

    # the message may quote a file's fields: nothing in it reaches the terminal raw
    print(f"playground: error: {clean(message, lines=True)}", file=sys.stderr)
    return 2


def _note(message: str) -> None:
    from playground.text import clean

    print(f"playground: note: {clean(message, lines=True)}", file=sys.stderr)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    from playground.training.config import USER_SETTINGS

    return {k: getattr(args, k) for k in USER_SETTINGS if getattr(args, k, None) is not None}


def parse_actions(text: str) -> list[str]:
    """``"b b z s n*3 r"`` -> the action names, repeats spelled out; ValueError naming
    the token that is not an action."""
    from playground.protocol import ACTION_KEYS, ACTIONS, RUN_KEY

    by_key = {key.replace("ctrl+", "^"): name for key, (name, _) in ACTION_KEYS.items()}
    names: list[str] = []
    for i, token in enumerate(text.replace(",", " ").split(), 1):
        key, _, count = token.partition("*")
        name = by_key.get(key) or (key if key in (*ACTIONS, "run") else None)
        if key == RUN_KEY:
            name = "run"
        if name is None:
            keys = " ".join(by_key) + f" {RUN_KEY}"
            raise ValueError(f"--actions: {token!r} (action {i}) is not one of {keys} or a name")
        if count and not (count.isdigit() and 1 <= int(count) <= 100_000):
            raise ValueError(f"--actions: {token!r} (action {i}): the repeat must be 1..100000")
        names += [name] * (int(count) if count else 1)
    if not names:
        raise ValueError("--actions: no actions given")
    return names


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


class _Out:
    """Rows as a table or as JSON lines."""

    def __init__(self, json_lines: bool, session: Any, actions: bool) -> None:
        self.json, self.actions = json_lines, actions
        if not json_lines:
            head = (["action"] if actions else []) + list(HEADER)
            if actions:
                head += [f"{n}{k}" for n in session.model.params for k in ("", ".grad")]
            print("  ".join(f"{h:>12}" for h in head))

    def row(self, snapshot: Any, action: str | None = None, *_told: str) -> None:
        from playground.training.report import dumps, fmt_array, row

        r = row(snapshot, action)
        if self.json:
            print(dumps(r))
            return
        cells = ([action or ""] if self.actions else []) + [_fmt(r[h]) for h in HEADER]
        if self.actions:
            for p in snapshot.params:
                cells += [fmt_array(p.value), fmt_array(p.grad, shape=False)]
        print("  ".join(f"{c:>12}" for c in cells))


def cmd_run(args: argparse.Namespace) -> int:
    if getattr(args, "ranks", None):
        from playground.cli.ranks import run_ranks

        return run_ranks(args)
    from playground.training.catalog import PresetError
    from playground.training.devices import DeviceError
    from playground.training.presets import find_preset
    from playground.training.session import ActionError

    try:
        actions = parse_actions(args.actions) if args.actions else None
        _check_tolerance(args.until_loss)
        if args.resume:
            session = _resumed(args)
        else:
            session = _fresh(find_preset(args.preset), _overrides(args))
    except (PresetError, DeviceError, ValueError) as exc:  # SessionFileError too
        return _fail(str(exc))
    steps = args.steps if args.steps is not None else session.cfg.max_steps
    until = args.until_loss if args.until_loss is not None else session.cfg.until_loss
    if not args.json:
        print(
            f"{session.preset.title}\n{session.snapshot().device}, lr {session.cfg.lr:g}, "
            f"{session.cfg.optimizer}, {session.cfg.loss}"
        )
    out = _Out(args.json, session, actions is not None)
    try:
        if actions is not None:
            report = _Explained(out, session, args.json) if args.explain else out.row
            reason, message = _act(session, actions, steps, until, report)
        else:
            reason, message = _train(session, steps, until, args.every or max(1, steps // 20), out)
    except ActionError as exc:
        return _fail(str(exc))
    return _finish(args, session, reason, message)


class _Explained:
    """Each action's row, then the coach's words on it (``--explain``): a line per
    sentence and per warning, or an ``explanation`` object in the JSON row."""

    def __init__(self, out: _Out, session: Any, json_lines: bool) -> None:
        from playground.training.coach import Coach

        self.out, self.json = out, json_lines
        self.coach = Coach()
        self.coach.seen(session.snapshot())

    def __call__(self, snapshot: Any, action: str, detail: str = "", outcome: str = "") -> None:
        from playground.training.report import dumps, row

        ex = self.coach.after(action, snapshot, detail, outcome)
        if self.json:
            said = {
                "lines": list(ex.lines),
                "warnings": [{"kind": c.kind, "text": c.text} for c in ex.cautions],
            }
            print(dumps(row(snapshot, action) | {"explanation": said}))
            return
        self.out.row(snapshot, action)
        for line in ex.lines:
            print(f"    {line}")
        for c in ex.cautions:
            print(f"    warning ({c.title}): {c.text}")


def _check_tolerance(until: float | None) -> None:
    from playground.training.config import TrainConfig

    problem = None if until is None else TrainConfig(until_loss=until).problem()
    if problem:
        raise ValueError(f"--until-loss: {problem.partition(': ')[2]}")


def _fresh(preset: Any, overrides: dict[str, Any]) -> Any:
    """A session of ``preset`` with the command line's settings, each checked against
    the preset's data (the loss and the labels, the model, the memory budget)."""
    from playground.training.session import Session

    return Session(preset, config=checked_config(preset, overrides))


def _resumed(args: argparse.Namespace) -> Any:
    """The saved session of ``--resume``; settings given with it change it live (one
    undo entry), those that would restart training from the seed are refused."""
    from playground.training.config import LIVE, SETTINGS
    from playground.training.persist import load_session

    notes: list[str] = []
    session = load_session(args.resume, device=args.device, notes=notes)
    for note in notes:
        _note(note)
    overrides = {k: v for k, v in _overrides(args).items() if k != "device"}
    restart = [n for n in overrides if SETTINGS[n].effect != LIVE]
    if restart:
        raise ValueError(
            f"{SETTINGS[restart[0]].option}: a resumed session keeps its {restart[0]} "
            "(a new one restarts training from the seed): run the preset without --resume"
        )
    if overrides:
        refuse_unused(session.cfg.optimizer, overrides)
        session.configure(**overrides)
    return session


def _train(session: Any, steps: int, until: float | None, every: int, out: _Out) -> tuple:
    """One run (one undo entry in a saved session), reported every ``every`` steps."""
    from playground.training.runs import StopReason, describe

    session.begin_run(steps, until)
    while True:
        result = session.run_slice(steps=every)
        out.row(session.snapshot())
        if result.reason is not StopReason.BUDGET:
            break
    return str(result.reason), describe(result, until)


def _act(
    session: Any,
    actions: list[str],
    steps: int,
    until: float | None,
    report: Callable[..., None],
) -> tuple[str, str]:
    """Each action in turn, the state reported after each; ``run`` runs ``steps``."""
    from playground.training.runs import describe

    reason, message = "actions", f"{len(actions)} actions"
    for i, name in enumerate(actions, 1):
        told: tuple[str, str] = ("", "")  # what undo took back, how a run ended
        if name == "run":
            result = session.run(steps, until)
            reason, message = str(result.reason), describe(result, until)
            told = (message, reason)
        elif name in ("undo", "redo"):
            entry = session.undo() if name == "undo" else session.redo()
            if entry is None:
                raise _no(name, i)
            told = (entry.label, "")
        elif name == "zero_grad_none":
            session.zero_grad(set_to_none=True)
        else:
            try:
                loss = getattr(session, name)()
            except Exception as exc:
                raise _no(name, i, str(exc)) from exc
            if isinstance(loss, float) and not math.isfinite(loss):  # one step diverges too
                report(session.snapshot(), name, *told)
                return "diverged", f"{name} (action {i}): the loss is {loss} (lr too large?)"
        report(session.snapshot(), name, *told)
    return reason, message


def _no(name: str, i: int, why: str = "") -> Exception:
    from playground.training.session import ActionError

    return ActionError(f"--actions: {name} (action {i}): {why or f'nothing to {name}'}")


def _finish(args: argparse.Namespace, session: Any, reason: str, message: str) -> int:
    """Save first (nothing of the session is lost if an export then fails), export,
    then the summary."""
    from playground.training.report import dumps, summary

    if args.restore_best:
        from playground.training.session import ActionError

        try:
            session.restore_best()  # undoable in a saved session, like every action
        except ActionError as exc:
            return _fail(f"--restore-best: {exc}")
    if args.save:
        from playground.training.persist import save_session

        try:
            save_session(session, args.save)
        except OSError as exc:  # nothing else is written: the exports would be all there is
            return _fail(f"--save: {exc}")
    exports = (
        ("--export-script", args.export_script, session.export_script),
        ("--export-notebook", args.export_notebook, session.export_notebook),
        ("--export-csv", args.export_csv, session.export_loss_csv),
    )
    for option, target, write in exports:
        if target:
            try:
                write(target)
            except (OSError, ValueError) as exc:
                kept = f" (the session is saved in {args.save})" if args.save else ""
                return _fail(f"{option}: {exc}{kept}")
    snap = session.snapshot()
    prediction = None
    if args.predict:
        try:
            at = [float(v) for v in args.predict.replace(",", " ").split()]
            prediction = session.predict(at)
        except ValueError as exc:
            return _fail(f"--predict {args.predict!r}: {exc}")
    s = summary(snap, reason, message, restored=args.restore_best, prediction=prediction)
    if args.json:
        print(dumps(s))
        return 0
    print(f"\nstopped ({reason.replace('_', ' ')}) after {snap.step} steps: {message}")
    if snap.best is not None:
        said = "restored" if args.restore_best else "kept"
        print(f"best at epoch {snap.best.epoch}, val loss {snap.best.val_loss:.6g} ({said})")
    if snap.test_loss is not None:
        print(f"test loss {snap.test_loss:.6g} (the held-out test split)")
    if prediction or snap.prediction:
        print((prediction or snap.prediction).said())
    cols = [("final", s["final"]), ("true", s["true"]), ("least squares", s["closed_form"])]
    cols = [(label, vals) for label, vals in cols if vals]
    print(f"{'param':<10}" + "".join(f"{label:>30}" for label, _ in cols))
    for n in s["final"]:
        cells = "".join(f"{short_values(vals.get(n)):>30}" for _, vals in cols)
        print(f"{n:<10}{cells}")
    return 0
