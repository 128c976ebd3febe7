"""The accumulation lab's view: one gradient three ways, and the classic mistakes.

For the current parameters and the next B*K samples: the full-batch gradient of those
samples; the K micro-batch gradients as ``backward()`` adds them up, with and without
the 1/K; the gradient K data-parallel ranks hold after DDP's all-reduce; and how far
apart they are. Then each classic mistake with its numbers and the step it would make.

Frozen and torch-free (numpy arrays only, copied): the runner fills a ``LabView``
(``accumulation.py``), the lab screen and ``playground accumulate`` show it through the
formatting helpers here, so both say the same thing in the same words.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

SUM_LOSSES = ("sse",)  # losses that add over the samples (the others are means)
FP32_NOTE = "fp32 sums agree to ~1e-7, not bit for bit (the order of the additions differs)"


@dataclass(frozen=True)
class LabToggles:
    """The classic mistakes, each on or off in the lab's accumulated column."""

    forgot_zero_grad: bool = False  # last step's .grad is still there
    forgot_scale: bool = False  # each micro-batch loss not divided by K
    uneven: bool = False  # the last micro-batch holds fewer samples
    shuffled: bool = False  # samples shuffled before they are cut into micro-batches

    def flip(self, name: str) -> LabToggles:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values[name] = not values[name]
        return LabToggles(**values)


TOGGLES: tuple[tuple[str, str], ...] = (
    ("forgot_zero_grad", "forgot zero_grad"),
    ("forgot_scale", "forgot 1/K"),
    ("uneven", "uneven last micro-batch"),
    ("shuffled", "shuffled micro-batches"),
)
"""(``LabToggles`` field, label), in the order of the lab's keys 1-4."""


@dataclass(frozen=True)
class ParamLab:
    """One parameter's gradient, every way the lab computes it."""

    name: str
    shape: tuple[int, ...]
    full: np.ndarray  # the gradient of the mean loss over all the window's samples
    micro: tuple[np.ndarray, ...]  # each micro-batch's own gradient (its loss, unscaled)
    running: tuple[np.ndarray, ...]  # .grad after each backward of loss / K
    running_unscaled: tuple[np.ndarray, ...]  # .grad after each backward of the bare loss
    start: np.ndarray | None  # what .grad held before the first backward (forgot zero_grad)
    allreduced: np.ndarray | None  # what the ranks' .grad holds after DDP's all-reduce

    def accumulated(self, toggles: LabToggles) -> np.ndarray:
        """What .grad holds after the K backward passes, mistakes included."""
        return (self.running_unscaled if toggles.forgot_scale else self.running)[-1]


@dataclass(frozen=True)
class StepCompare:
    """The step an optimizer would take with the right and with the wrong gradient."""

    optimizer: str  # "SGD (lr 0.5, fresh)", "the session's sgd"
    right: dict[str, np.ndarray]  # parameter change with the right gradient
    wrong: dict[str, np.ndarray]  # ... with the mistaken one

    @property
    def ratio(self) -> float:
        """How much longer the wrong step is (1.0: the same length)."""
        r = np.sqrt(sum(float(np.sum(d.astype(np.float64) ** 2)) for d in self.right.values()))
        w = np.sqrt(sum(float(np.sum(d.astype(np.float64) ** 2)) for d in self.wrong.values()))
        return float(w / r) if r > 0 else float("inf") if w > 0 else 1.0


@dataclass(frozen=True)
class Pitfall:
    """One classic mistake: what it does to the gradient, in numbers, and to the step."""

    key: str  # a ``LabToggles`` field
    short: str  # "forgot 1/K"
    title: str  # what it does, in a sentence
    on: bool  # toggled on in the lab's accumulated column
    numbers: tuple[tuple[str, float], ...]  # (label, value): max differences, ratios
    steps: tuple[StepCompare, ...]
    note: str = ""  # where the numbers come from, what fixes it


@dataclass(frozen=True)
class LabView:
    """Everything the lab shows for one set of parameters and samples."""

    preset: str
    step: int  # the session's optimizer steps so far
    k: int  # micro-batches
    ranks: int  # data-parallel ranks of the all-reduce column
    window: str  # which samples: "samples 0-159 of 160 (the whole training set)"
    sizes: tuple[int, ...]  # samples in each micro-batch
    loss: str
    toggles: LabToggles
    params: tuple[ParamLab, ...]
    pitfalls: tuple[Pitfall, ...]
    code: str  # the accumulation loop and its DDP twin, as a user writes them
    lr: float
    n_train: int  # training samples (K can be at most that)
    backend: str = ""  # the ranks' process-group backend, once they answered
    rank_note: str = ""  # "starting 4 gloo ranks...", or why the ranks did not answer
    rank_spread: float | None = None  # max |difference| between the ranks' gradients
    rank_event: str = ""  # what befell the ranks before this view ("rank 2 died ...")

    @property
    def per_rank(self) -> int:
        return self.k // self.ranks

    @property
    def uneven(self) -> bool:
        return len(set(self.sizes)) > 1

    def param(self, name: str) -> ParamLab:
        return next(p for p in self.params if p.name == name)

    def diffs(self) -> list[tuple[str, float | None]]:
        """(label, max |difference| over every parameter's values) of the three columns."""
        acc = {p.name: p.accumulated(self.toggles) for p in self.params}
        full = {p.name: p.full for p in self.params}
        red = {p.name: p.allreduced for p in self.params}
        has_red = all(v is not None for v in red.values())
        return [
            ("full batch vs accumulated", max_diff(full, acc)),
            ("full batch vs all-reduced", max_diff(full, red) if has_red else None),
            ("accumulated vs all-reduced", max_diff(acc, red) if has_red else None),
        ]

    def scale(self) -> float:
        """The largest |full-batch gradient| value: what the differences are relative to."""
        return max((float(np.max(np.abs(p.full))) for p in self.params if p.full.size), default=0.0)

    def ratio(self) -> float:
        """|accumulated| / |full batch| over all parameters (4.0 when 1/K is forgotten)."""
        acc = np.concatenate([p.accumulated(self.toggles).reshape(-1) for p in self.params])
        full = np.concatenate([p.full.reshape(-1) for p in self.params])
        n = float(np.linalg.norm(full.astype(np.float64)))
        return float(np.linalg.norm(acc.astype(np.float64))) / n if n > 0 else float("nan")


def max_diff(a: dict[str, Any], b: dict[str, Any]) -> float:
    """The largest |a - b| over every value of every parameter."""
    return max(
        (float(np.max(np.abs(np.asarray(a[n], np.float64) - np.asarray(b[n], np.float64))))
         for n in a if np.size(a[n])),
        default=0.0,
    )  # fmt: skip


# --- formatting (the lab screen and the CLI) --------------------------------------------


def num(v: float | None) -> str:
    """A gradient value in 10 characters: '-4.12346', '1.234e-07'."""
    if v is None:
        return "-"
    if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
        return f"{v:.3e}"
    return f"{v:.6g}"


def value(a: np.ndarray | None) -> str:
    """One parameter's gradient: its value, or for a tensor its first value and size."""
    if a is None:
        return "-"
    flat = np.asarray(a).reshape(-1)
    if flat.size == 1:
        return num(float(flat[0]))
    return f"{num(float(flat[0]))} (+{flat.size - 1})"


def diff(v: float | None, scale: float | None = None) -> str:
    """A max |difference|, and relative to ``scale`` (the largest gradient value)."""
    if v is None:
        return "-"
    if scale:
        return f"{v:.1e} ({v / scale:.0e} rel.)"
    return f"{v:.1e}"


def step_text(s: StepCompare, names: int = 2) -> str:
    """'SGD (lr 0.5) step: weight 4.431 -> 17.72, bias 1.091 -> 4.362, x4.000 as long'."""

    def v(a: np.ndarray) -> str:
        flat = np.asarray(a).reshape(-1)
        return f"{float(flat[0]):.4g}" + (f" (+{flat.size - 1})" if flat.size > 1 else "")

    shown = [f"{n} {v(s.right[n])} -> {v(s.wrong[n])}" for n in list(s.right)[:names]]
    more = " ..." if len(s.right) > names else ""
    return f"{s.optimizer} step: {', '.join(shown)}{more}, x{s.ratio:.3f} as long"


def sizes_text(sizes: tuple[int, ...]) -> str:
    """'4 x 40', '54+54+52', '40+40+...+20'."""
    if len(set(sizes)) == 1:
        return f"{len(sizes)} x {sizes[0]}"
    if len(sizes) <= 5:
        return "+".join(map(str, sizes))
    return f"{sizes[0]}+{sizes[1]}+...+{sizes[-1]}"


def header(view: LabView) -> str:
    """'noisy-line, step 0: K = 4 micro-batches, 4 x 40 of samples 0-159'."""
    return (
        f"{view.preset}, step {view.step}: K = {view.k}, {sizes_text(view.sizes)} of {view.window}"
    )


def ranks_text(view: LabView) -> str:
    """'4 gloo ranks', '2 ranks x 2 micro-batches each (no_sync)'."""
    said = f"{view.ranks} {view.backend + ' ' if view.backend else ''}rank{'s' if view.ranks > 1 else ''}"
    if view.per_rank > 1:
        said += f" x {view.per_rank} micro-batches (no_sync)"
    return said


def notes(view: LabView) -> list[str]:
    """What to keep in mind reading these numbers (a sum loss, an uneven split)."""
    out = []
    if view.loss in SUM_LOSSES:
        out.append(
            f"{view.loss} adds over the samples: the full-batch gradient is the SUM of the "
            "micro-batch gradients, so here the 1/K is the mistake (the no-1/K column is right)"
        )
    elif view.uneven:
        out.append(
            f"the micro-batches are uneven ({sizes_text(view.sizes)}): with / K the mean of "
            "their means is not the full-batch mean (mistake 3)"
        )
    return out


def table_rows(view: LabView, shown: int | None = None) -> list[tuple[str, ...]]:
    """The gradient table: a header row, then one row per parameter. ``shown``: how
    many backward passes have arrived (default all K)."""
    t = view.toggles
    n = view.k if shown is None else shown
    acc = "accum." + (" no 1/K" if t.forgot_scale else " 1/K")
    acc += " + leftover" if t.forgot_zero_grad else ""
    acc += f" ({n} of {view.k})" if n < view.k else ""
    red = f"all-reduced ({view.ranks} ranks)" if not view.rank_note else "all-reduced"
    rows = [("param", "full batch", acc, red)]
    for p in view.params:
        series = p.running_unscaled if t.forgot_scale else p.running
        now = series[n - 1] if n > 0 else p.start
        cell = value(now) if now is not None else "0"
        rows.append(
            (p.name, value(p.full), cell, value(p.allreduced) if not view.rank_note else "...")
        )
    return rows


def backward_rows(view: LabView, name: str, shown: int | None = None) -> list[tuple[str, ...]]:
    """Backward by backward for one parameter: its micro-batch's gradient and .grad after
    it, with and without the 1/K."""
    p = view.param(name)
    n = view.k if shown is None else shown
    rows = [("backward", "samples", "its gradient", ".grad (1/K)", ".grad (no 1/K)")]
    if p.start is not None:
        rows.append(("leftover", "-", "-", value(p.start), value(p.start)))
    for j in range(n):
        rows.append(
            (
                f"{j + 1}",
                str(view.sizes[j]),
                value(p.micro[j]),
                value(p.running[j]),
                value(p.running_unscaled[j]),
            )
        )
    return rows


def _short(label: str, v: float) -> str:
    if " / " in label:  # a ratio
        return f"{v:.3f}"
    return f"{v:.4g}" if v == 0 or 1e-3 <= abs(v) < 1e5 else f"{v:.1e}"


def pitfall_summary(pf: Pitfall, width: int = 0) -> str:
    """Its numbers and how much longer the step it would make is, as many as fit in
    ``width`` characters (0: all); the first always."""
    parts = [f"{label.removeprefix('max ')} {_short(label, v)}" for label, v in pf.numbers]
    parts += [f"{s.optimizer.split(' (')[0]} step x{s.ratio:.3f}" for s in pf.steps]
    if not parts:
        return pf.note
    out = parts[0]
    for part in parts[1:]:
        if width and len(out) + 2 + len(part) > width:
            break
        out += "; " + part
    return out


def pitfall_lines(view: LabView, details: bool | None = None, width: int = 0) -> list[str]:
    """Each mistake on one line (its key 1-4, [x] when on, its numbers); below it the
    steps it would make and the fix - for the mistakes that are on, or for all of them
    (``details=True``)."""
    keys = {name: i for i, (name, _) in enumerate(TOGGLES, 1)}
    out: list[str] = []
    for pf in view.pitfalls:
        mark = "x" if pf.on else " "
        head = f"[{mark}] {keys.get(pf.key, '-')} {pf.short}: "
        out.append(head + pitfall_summary(pf, max(0, width - len(head)) if width else 0))
        if details or (details is None and pf.on):
            out.append(f"      {pf.title}")
            out += [f"      {step_text(s)}" for s in pf.steps]
            if pf.note:
                out.append(f"      {pf.note}")
    return out


def columns(rows: list[tuple[str, ...]], widths: tuple[int, ...] | None = None) -> list[str]:
    """Rows as aligned text: the first column left, the others right-aligned."""
    if not rows:
        return []
    n = max(len(r) for r in rows)
    w = widths or tuple(max(len(r[i]) for r in rows if i < len(r)) for i in range(n))
    out = []
    for r in rows:
        cells = [r[0].ljust(w[0])] + [c.rjust(w[i]) for i, c in enumerate(r[1:], 1)]
        out.append("  ".join(cells).rstrip())
    return out


def report(view: LabView) -> str:
    """The whole lab as plain text (``playground accumulate``)."""
    lines = [header(view), f"all-reduce over {ranks_text(view)}", ""]
    lines += columns(table_rows(view))
    lines.append("")
    lines += [f"max |{label}|: {diff(v, view.scale())}" for label, v in view.diffs()]
    lines.append(f"|accumulated| / |full batch|: {view.ratio():.4g}")
    if view.rank_spread is not None:
        lines.append(f"max |difference| between the {view.ranks} ranks: {diff(view.rank_spread)}")
    lines += [x for x in (view.rank_note, view.rank_event) if x]
    lines += [FP32_NOTE, *notes(view), ""]
    for p in view.params:
        lines.append(f"{p.name}, backward by backward:")
        lines += ["  " + line for line in columns(backward_rows(view, p.name))]
    lines += ["", "the classic mistakes:"]
    lines += pitfall_lines(view, details=True)
    return "\n".join(lines)


def as_json(view: LabView) -> dict[str, Any]:
    """The lab as JSON-ready data (``playground accumulate --json``)."""

    def lst(a: np.ndarray | None) -> Any:
        return None if a is None else np.asarray(a).tolist()

    return {
        "preset": view.preset,
        "step": view.step,
        "k": view.k,
        "ranks": view.ranks,
        "backend": view.backend,
        "window": view.window,
        "micro_batch_sizes": list(view.sizes),
        "loss": view.loss,
        "params": {
            p.name: {
                "full_batch": lst(p.full),
                "accumulated": lst(p.running[-1]),
                "accumulated_without_1_over_k": lst(p.running_unscaled[-1]),
                "all_reduced": lst(p.allreduced),
                "micro_batches": [lst(g) for g in p.micro],
            }
            for p in view.params
        },
        "max_abs_diff": {label: v for label, v in view.diffs()},
        "accumulated_over_full": view.ratio(),
        "rank_spread": view.rank_spread,
        "rank_note": view.rank_note,
        "rank_event": view.rank_event,
        "note": FP32_NOTE,
        "pitfalls": {
            pf.key: {
                "short": pf.short,
                "title": pf.title,
                "numbers": dict(pf.numbers),
                "steps": [
                    {
                        "optimizer": s.optimizer,
                        "right": {n: lst(d) for n, d in s.right.items()},
                        "wrong": {n: lst(d) for n, d in s.wrong.items()},
                        "length_ratio": s.ratio,
                    }
                    for s in pf.steps
                ],
                "note": pf.note,
            }
            for pf in view.pitfalls
        },
    }
