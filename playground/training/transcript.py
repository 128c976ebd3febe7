"""Every session action, kept as data, and the code it stands for.

The session appends one ``Entry`` per action: what kind of action, its arguments (plain
numbers), and the settings it was done with. Code is made from the entries when it is
shown or exported (``playground.training.code``), in the style the user picks, so no
text from a file ever becomes code. ``Transcript.cells()`` puts the set-up (data,
initial parameters, loss, optimizer - all literal values, so nothing depends on an RNG)
in front of the entries, each action a markdown cell saying what it does and a code
cell; run with plain ``python`` and torch, the script (``script()``: the cells in the
``# %%`` percent format editors and jupytext run cell by cell) or the notebook
(``export.write_notebook``) performs the same operations in the same order and ends with
the same parameters as the session.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Any

from playground.training.code import EPILOGUE, Ctx, Setup, Writer

KINDS = (
    "forward",
    "backward",
    "backward_again",
    "zero_grad",
    "step",
    "train_steps",
    "set_hyper",
    "set_k",
    "set_batch",
    "set_shuffle",
    "load_values",
    "set_values",
    "note",
)


@dataclass(frozen=True)
class Entry:
    """One action: its label ("backward", "3 train steps"), kind, arguments, settings."""

    action: str
    kind: str
    args: tuple[tuple[str, Any], ...]
    ctx: Ctx
    run: tuple[int, int] | None = None  # (train steps, first micro-batch) of a train loop

    @property
    def arguments(self) -> dict[str, Any]:
        return dict(self.args)


@dataclass(frozen=True)
class Cell:
    """One cell of the exported script or notebook."""

    kind: str  # "markdown" | "code"
    source: str


# What each action does, for its markdown cell (the action's label starts with the key)
EXPLAIN = (
    (
        "backward again",
        "`loss.backward()` once more through the same graph: it works only if the first "
        "backward kept the graph (`retain_graph=True`), and then every `.grad` ADDS the "
        "same gradient again.",
    ),
    ("forward", "The loss of the next micro-batch, without a gradient: `.grad` is untouched."),
    (
        "backward",
        "Forward on the next micro-batch, then `loss.backward()`: every `.grad` ADDS this "
        "batch's gradient (`p.grad += dloss/dp`); nothing but zero_grad resets it.",
    ),
    (
        "zero_grad",
        "Every `.grad` back to zero (`zero_()`) or to `None`: the next backward starts from "
        "nothing instead of adding to what is there.",
    ),
    (
        "step",
        "One optimizer step with the gradients as they are: each parameter moves by the "
        "optimizer's rule (`p -= lr * p.grad` for plain gradient descent). `.grad` is kept.",
    ),
    (
        "train step",
        "One ordinary update: zero_grad, forward and backward (K times with accumulation), "
        "then step.",
    ),
    (
        "restore the best",
        "The parameters of the epoch whose validation loss was the lowest, kept at the end "
        "of each epoch's validation phase, are put back.",
    ),
    (
        "set the parameters",
        "The parameters are put at a point chosen by hand (on the loss landscape), so "
        "gradient descent starts from there: `.grad` is kept, the optimizer's state "
        "(momentum, Adam's moments) starts afresh.",
    ),
    ("set K", "Gradient accumulation: K backward passes (micro-batches) per optimizer step."),
    ("set batch size", "A new micro-batch size: the walk over the data starts again."),
    (
        "set shuffle",
        "The mini-batches from here on: a DataLoader's, reshuffled each epoch, or in order.",
    ),
    ("set ", "A setting changes from here on (the training state is kept)."),
    ("moved to", "The session went on on another device."),
    ("resumed", "The parameters as a session file had them."),
)


def explain(action: str) -> str:
    """What the action labelled ``action`` does, in a sentence or two."""
    if action.endswith("train steps"):
        return f"{action.split()[0]} ordinary updates, each: zero_grad, forward, backward, step."
    for key, text in EXPLAIN:
        if action.startswith(key):
            return text
    return "An action of the session."


@dataclass
class Transcript:
    """The action log of one session (one build), as data."""

    setup: Setup
    entries: list[Entry] = field(default_factory=list)

    def add(
        self, action: str, kind: str, ctx: Ctx, run: tuple[int, int] | None = None, **args: Any
    ) -> None:
        self.entries.append(Entry(action, kind, tuple(args.items()), ctx, run))

    def __len__(self) -> int:
        return len(self.entries)

    def code(self, entry: Entry, style: str = "plain") -> str:
        return Writer(style, self.setup).code(entry.kind, entry.arguments, entry.ctx)

    def lines(self, style: str = "plain") -> tuple[str, ...]:
        """Each entry as '# action' and its code (the code panel)."""
        writer = Writer(style, self.setup)
        return tuple(
            f"# {e.action}\n{writer.code(e.kind, e.arguments, e.ctx)}" for e in self.entries
        )

    def cells(self, style: str = "plain", epilogue: str = EPILOGUE) -> list[Cell]:
        """The set-up, then a markdown and a code cell per action, then ``epilogue``."""
        writer = Writer(style, self.setup)
        cells = [Cell("code", writer.preamble())]
        for e in self.entries:
            cells.append(Cell("markdown", f"**{e.action}** - {explain(e.action)}"))
            cells.append(Cell("code", f"# {e.action}\n{writer.code(e.kind, e.arguments, e.ctx)}"))
        if epilogue:
            cells.append(Cell("markdown", "Where the session ended: its parameters."))
            cells.append(Cell("code", epilogue.rstrip("\n")))
        return cells

    def script(self, style: str = "plain", epilogue: str = EPILOGUE) -> str:
        """The cells as a Python file in the percent format (``# %%`` starts a cell)."""
        parts = []
        for cell in self.cells(style, epilogue):
            if cell.kind == "markdown":
                wrapped = textwrap.wrap(cell.source, 86) or [""]
                lines = "\n".join(f"# {line}" for line in wrapped)
                parts.append(f"# %% [markdown]\n{lines}")
            else:
                parts.append(f"# %%\n{cell.source}")
        return "\n\n".join(parts) + "\n"


# --- entries as plain data (session files), validated on the way in -------------------

_COUNT, _POSITIVE, _FLAG, _TEXT = "count", "positive", "flag", "text"
ARGS: dict[str, dict[str, str]] = {
    "forward": {"c": _COUNT},
    "backward": {"c": _COUNT},
    "backward_again": {},
    "zero_grad": {"set_to_none": _FLAG},
    "step": {},
    "train_steps": {"n": _POSITIVE, "c0": _COUNT},
    "set_hyper": {"name": "hyper", "value": "setting", "used": _FLAG},
    "set_k": {"k": _POSITIVE},
    "set_batch": {},
    "set_shuffle": {},
    "load_values": {"values": "values", "why": _TEXT},
    "set_values": {"values": "values", "why": _TEXT},
    "note": {"text": _TEXT},
}
HYPER = ("lr", "momentum", "nesterov", "weight_decay", "betas")
MAX_TEXT = 500


def clean_text(text: str, lines: bool = False) -> str:
    """Text from a file, safe to show and to put in a comment: printable characters
    only (no terminal escapes), one line unless ``lines``, at most MAX_TEXT long."""
    kept = "".join(ch if ch.isprintable() or (lines and ch == "\n") else " " for ch in text)
    return kept[:MAX_TEXT]


def entry_to_plain(e: Entry) -> list[Any]:
    from dataclasses import asdict

    return [e.action, e.kind, _plain(dict(e.args)), asdict(e.ctx), list(e.run) if e.run else None]


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def entry_from_plain(item: Any, shapes: dict[str, tuple[int, ...]]) -> Entry:
    """An entry from a session file; ValueError says what is wrong. ``shapes``: the
    model's parameters (a ``load_values`` entry must fit them)."""
    if not (isinstance(item, list) and len(item) == 5):
        raise ValueError("a transcript entry must be [action, kind, args, settings, run]")
    action, kind, args, ctx, run = item
    if not isinstance(action, str) or kind not in ARGS or not isinstance(args, dict):
        raise ValueError(f"transcript entry {str(action)[:40]!r}: unknown kind {kind!r}")
    if set(args) != set(ARGS[kind]):
        raise ValueError(
            f"transcript entry {kind}: arguments {sorted(args)} != {sorted(ARGS[kind])}"
        )
    checked = {name: _arg(kind, name, ARGS[kind][name], args[name], shapes) for name in args}
    if run is not None and not (
        isinstance(run, list) and len(run) == 2 and all(type(v) is int and v >= 0 for v in run)
    ):
        raise ValueError(f"transcript entry {kind}: run must be two counts")
    return Entry(
        clean_text(action),
        kind,
        tuple(checked.items()),
        _ctx(ctx),
        (run[0], run[1]) if run else None,
    )


def _arg(kind: str, name: str, rule: str, value: Any, shapes: dict[str, tuple[int, ...]]) -> Any:
    import math

    def bad(why: str) -> ValueError:
        return ValueError(f"transcript entry {kind}: {name} {why}")

    if rule in (_COUNT, _POSITIVE):
        if type(value) is not int or value < (1 if rule == _POSITIVE else 0) or value >= 2**62:
            raise bad(f"must be an integer >= {1 if rule == _POSITIVE else 0}")
        return value
    if rule == _FLAG:
        if not isinstance(value, bool):
            raise bad("must be true or false")
        return value
    if rule == _TEXT:
        if not isinstance(value, str):
            raise bad("must be text")
        return clean_text(value, lines=True)
    if rule == "hyper":
        if value not in HYPER:
            raise bad(f"must be one of {', '.join(HYPER)}")
        return value
    if rule == "setting":
        flat = value if isinstance(value, list) else [value]
        if len(flat) > 2 or not all(
            isinstance(v, bool) or (isinstance(v, int | float) and math.isfinite(v)) for v in flat
        ):
            raise bad("must be a finite number, true/false, or two numbers")
        return tuple(value) if isinstance(value, list) else value
    # "values": one literal tensor per parameter, shaped like it
    if not isinstance(value, dict) or set(value) != set(shapes):
        raise bad(f"must give every parameter ({', '.join(shapes)})")
    for pname, tensor in value.items():
        if _shape(tensor) != shapes[pname]:
            raise bad(f"{pname}: not a tensor of shape {shapes[pname]}")
    return value


def _shape(value: Any) -> tuple[int, ...] | None:
    import math

    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return () if math.isfinite(value) else None
    if not isinstance(value, list) or not value:
        return None
    inner = {_shape(v) for v in value}
    if len(inner) != 1 or None in inner:
        return None
    return (len(value), *inner.pop())  # type: ignore[misc]


def _ctx(doc: Any) -> Ctx:
    from dataclasses import fields

    from playground.training.config import OPTIMIZERS

    if not isinstance(doc, dict) or set(doc) != {f.name for f in fields(Ctx)}:
        raise ValueError("transcript entry: its settings are missing or malformed")
    for f in fields(Ctx):
        v = doc[f.name]
        ok = {
            "bool": isinstance(v, bool),
            "int": type(v) is int and 0 <= v < 2**62,
            "str": v in OPTIMIZERS,
        }[str(f.type)]
        if not ok:
            raise ValueError(f"transcript entry: setting {f.name} = {v!r} is not valid")
    if min(doc["k"], doc["batch_size"], doc["n_batches"]) < 1:
        raise ValueError("transcript entry: k, batch_size and n_batches must be >= 1")
    return Ctx(**doc)
