"""Every session action as the PyTorch code it stands for, and a runnable export.

The session appends one ``Entry`` per action. ``Transcript.cells()`` puts a preamble
(data, initial parameters, loss, optimizer - all literal values, so nothing depends on an
RNG) in front of the entries, each action a markdown cell saying what it does and a code
cell; run with plain ``python`` and torch, the script (``script()``: the cells in the
``# %%`` percent format editors and jupytext run cell by cell) or the notebook
(``export.write_notebook``) performs the same operations in the same order and ends with
the same parameters as the session.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playground.training.config import TrainConfig


@dataclass(frozen=True)
class Entry:
    action: str
    code: str
    run: tuple[int, int] | None = None  # (train steps, first micro-batch) of a train loop


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
    ("set K", "Gradient accumulation: K backward passes (micro-batches) per optimizer step."),
    ("set batch size", "A new micro-batch size: the walk over the data starts again."),
    ("set ", "A setting changes from here on (the training state is kept)."),
    ("moved to", "The session went on on another device."),
)


def explain(action: str) -> str:
    """What the action labelled ``action`` does, in a sentence or two."""
    if action.endswith("train steps"):
        return f"{action.split()[0]} ordinary updates, each: zero_grad, forward, backward, step."
    for key, text in EXPLAIN:
        if action.startswith(key):
            return text
    return "An action of the session."


def _literal(values: object) -> str:
    # tolist() of float32 tensors gives the exact doubles; repr round-trips them.
    return repr(values)


@dataclass
class CodeStyle:
    """How the actions of one configuration are written."""

    cfg: TrainConfig
    full_batch: bool
    param_names: tuple[str, ...]

    def batches(self) -> str:
        """The code of ``batch(c)``: slices in order, or the DataLoader's reshuffled
        mini-batches when the session shuffles (the same order: a real DataLoader)."""
        if not self.cfg.shuffle:
            return BATCH_IN_ORDER
        return SHUFFLED_BATCHES.format(seed=self.cfg.seed)

    @property
    def scale(self) -> str:
        return " / K" if self.cfg.accumulate > 1 and self.cfg.scale_loss else ""

    def batch_expr(self, c: int) -> str:
        return "x, y" if self.full_batch else f"batch({c})"

    def forward(self, c: int) -> str:
        if self.full_batch:
            return "loss = loss_fn(forward(x), y)"
        return f"xb, yb = batch({c})\nloss = loss_fn(forward(xb), yb)"

    @property
    def retain(self) -> str:
        return "retain_graph=True" if self.cfg.retain_graph else ""

    def backward(self, c: int) -> str:
        call = f"loss.backward({self.retain})"
        if self.full_batch:
            return f"loss = loss_fn(forward(x), y){self.scale}\n{call}"
        return f"xb, yb = batch({c})\nloss = loss_fn(forward(xb), yb){self.scale}\n{call}"

    def backward_again(self) -> str:
        return f"loss.backward({self.retain})  # through the same graph once more"

    def zero_grad(self, set_to_none: bool) -> str:
        if self.cfg.optimizer != "gd":
            return "opt.zero_grad()" if set_to_none else "opt.zero_grad(set_to_none=False)"
        if set_to_none:
            return "for p in params:\n    p.grad = None"
        return "for p in params:\n    if p.grad is not None:\n        p.grad.zero_()"

    def step(self) -> str:
        if self.cfg.optimizer != "gd":
            return "opt.step()"
        return (
            "with torch.no_grad():\n    for p in params:\n        if p.grad is not None:\n"
            "            p -= lr * p.grad"
        )

    def train_steps(self, n: int, c0: int, set_to_none: bool) -> str:
        body = [self.zero_grad(set_to_none)]
        k = self.cfg.accumulate
        if self.full_batch:
            inner = f"loss = loss_fn(forward(x), y){self.scale}\nloss.backward()"
        else:
            inner = f"xb, yb = batch(c + k)\nloss = loss_fn(forward(xb), yb){self.scale}\nloss.backward()"
        if k > 1:
            body.append("for k in range(K):\n" + _indent(inner))
        else:
            body.append(inner.replace("c + k", "c"))
        body.append(self.step())
        loop = "\n".join(body)
        if self.full_batch:
            header = f"for _ in range({n}):"
        else:
            header = f"for c in range({c0}, {c0 + n * k}, {k}):"
        return f"{header}  # {n} train step{'s' if n != 1 else ''}\n" + _indent(loop)

    def load_values(self, values: dict[str, list], why: str) -> str:
        """Set every parameter to literal values (``params`` is in the model's order)."""
        lines = [f"# {why}", "with torch.no_grad():"]
        for i, (name, value) in enumerate(values.items()):
            lines.append(f"    params[{i}].copy_(torch.tensor({_literal(value)}))  # {name}")
        return "\n".join(lines)

    def set_hyper(self, name: str, value: float | bool) -> str:
        if self.cfg.optimizer == "gd":
            return (
                f"{name} = {value!r}"
                if name == "lr"
                else f"# {name} = {value!r} (no effect by hand)"
            )
        return f"for group in opt.param_groups:\n    group[{name!r}] = {value!r}"


BATCH_IN_ORDER = """def batch(c):
    \"\"\"The c-th micro-batch: slices of the training set in order, epoch after epoch.\"\"\"
    j = c % n_batches
    return x[j * B:(j + 1) * B], y[j * B:(j + 1) * B]"""

SHUFFLED_BATCHES = """from torch.utils.data import DataLoader, TensorDataset

loader = DataLoader(
    TensorDataset(x, y), batch_size=B, shuffle=True, generator=torch.Generator().manual_seed({seed})
)
epochs = []  # each epoch's mini-batches, in the order the DataLoader gives them


def batch(c):
    \"\"\"The c-th micro-batch: the DataLoader's, a new order each epoch.\"\"\"
    e, j = divmod(c, n_batches)
    while len(epochs) <= e:
        epochs.append(list(loader))
    return epochs[e][j]"""


def _docstring(text: str) -> str:
    """``text`` as a triple-quoted literal that nothing in it can end early (a preset's
    title is user text: quotes, backslashes and control characters are escaped)."""
    out = []
    for ch in text.replace("\\", "\\\\").replace('"', '\\"'):
        if ch in "\n\t" or ch.isprintable():
            out.append(ch)
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    return '"""' + "".join(out) + '"""'


def _indent(code: str, n: int = 4) -> str:
    pad = " " * n
    return "\n".join(pad + line if line else line for line in code.splitlines())


@dataclass
class Transcript:
    """The action log of one session, as code."""

    preamble: str = ""
    entries: list[Entry] = field(default_factory=list)

    def add(self, action: str, code: str, run: tuple[int, int] | None = None) -> None:
        self.entries.append(Entry(action, code, run))

    def truncate(self, n: int) -> None:
        del self.entries[n:]

    def __len__(self) -> int:
        return len(self.entries)

    def lines(self) -> tuple[str, ...]:
        return tuple(f"# {e.action}\n{e.code}" for e in self.entries)

    def cells(self, epilogue: str = "") -> list[Cell]:
        """The set-up, then a markdown and a code cell per action, then ``epilogue``."""
        cells = [Cell("code", self.preamble)]
        for e in self.entries:
            cells.append(Cell("markdown", f"**{e.action}** - {explain(e.action)}"))
            cells.append(Cell("code", f"# {e.action}\n{e.code}"))
        if epilogue:
            cells.append(Cell("markdown", "Where the session ended: its parameters."))
            cells.append(Cell("code", epilogue.rstrip("\n")))
        return cells

    def script(self, epilogue: str = "") -> str:
        """The cells as a Python file in the percent format (``# %%`` starts a cell)."""
        parts = []
        for cell in self.cells(epilogue):
            if cell.kind == "markdown":
                wrapped = textwrap.wrap(cell.source, 86) or [""]
                lines = "\n".join(f"# {line}" for line in wrapped)
                parts.append(f"# %% [markdown]\n{lines}")
            else:
                parts.append(f"# %%\n{cell.source}")
        return "\n\n".join(parts) + "\n"


def preamble(
    title: str,
    cfg: TrainConfig,
    device: str,
    x: list,
    y: list,
    batch_size: int,
    model_kind: str,
    module_code: str | None,
    init: dict[str, list],
    n_outputs: int,
) -> str:
    """The script's set-up: data, initial parameters, loss and optimizer, all literal."""
    n = len(x)
    lines = [
        _docstring(
            f"{title} - exported from playground.\n\nRun with plain python + torch: it replays "
            "the session and prints the final\nparameters."
        ),
        "",
        "import torch",
        "import torch.nn.functional as F",
        "from torch import nn",
        "",
        f"device = torch.device({device!r})",
        f"x = torch.tensor({_literal(x)}, device=device)",
        f"y = torch.tensor({_literal(y)}, device=device)",
        f"B, K = {batch_size}, {cfg.accumulate}  # micro-batch size, backward passes per step",
        f"n_batches = {-(-n // batch_size)}",
        "",
        "",
        CodeStyle(cfg, n <= batch_size and not cfg.shuffle, ()).batches(),
        "",
        "",
    ]
    if model_kind == "softmax":
        lines += [
            "class SoftmaxRegression(nn.Module):",
            '    """h = XW + b with W: d x C, b: 1 x C."""',
            "",
            "    def __init__(self, d, c):",
            "        super().__init__()",
            "        self.W = nn.Parameter(torch.zeros(d, c))",
            "        self.b = nn.Parameter(torch.zeros(1, c))",
            "",
            "    def forward(self, x):",
            "        return torch.matmul(x, self.W) + self.b",
            "",
            "",
        ]
    if model_kind == "scalar":
        for name, value in init.items():
            lines.append(
                f"{name} = torch.tensor({_literal(value)}, device=device, requires_grad=True)"
            )
        lines += [
            f"params = [{', '.join(init)}]",
            "",
            "",
            "def forward(xb):",
            "    return xb @ w + b",
        ]
    else:
        assert module_code is not None
        lines += [
            f"model = {module_code}.to(device)",
            "params = list(model.parameters())",
            "with torch.no_grad():",
        ]
        for i, (name, value) in enumerate(init.items()):
            lines.append(f"    params[{i}].copy_(torch.tensor({_literal(value)}))  # {name}")
        squeeze = ".squeeze(-1)" if n_outputs == 1 else ""
        lines += ["", "", "def forward(xb):", f"    return model(xb){squeeze}"]
    loss_code = {
        "mse": "F.mse_loss(out, target)",
        "sse": "((out - target) ** 2).sum()",
        "bce": "F.binary_cross_entropy(torch.sigmoid(out), target)",
        "bce_sum": 'F.binary_cross_entropy(torch.sigmoid(out), target, reduction="sum")',
        "ce": "F.cross_entropy(out, target.long())",
    }[cfg.loss]
    lines += [
        "",
        "",
        "def loss_fn(out, target):",
        f"    return {loss_code}",
        "",
        "",
        f"lr = {cfg.lr!r}",
    ]
    if cfg.optimizer == "sgd":
        lines.append(
            f"opt = torch.optim.SGD(params, lr=lr, momentum={cfg.momentum!r}, "
            f"nesterov={cfg.nesterov!r}, weight_decay={cfg.weight_decay!r})"
        )
    elif cfg.optimizer == "adam":
        lines.append(
            f"opt = torch.optim.Adam(params, lr=lr, betas={cfg.betas!r}, "
            f"weight_decay={cfg.weight_decay!r})"
        )
    return "\n".join(lines)


EPILOGUE = "print('final parameters:')\nfor p in params:\n    print(p.detach().cpu().tolist())\n"
