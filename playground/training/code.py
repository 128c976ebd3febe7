"""The PyTorch code of a session's actions, in the three styles the exercises write.

The transcript keeps each action as data (``transcript.Entry``: a kind, its arguments,
and the settings it was done with, ``Ctx``); a ``Writer`` turns it into code:

- ``plain``: the session as it is - plain tensors updated by hand (``p -= lr * p.grad``)
  for the w, b models, the model and optimizer as configured for the others;
- ``class``: seed 001 exercise 3's ``RegressionModel`` with ``forward``, ``criterion``,
  ``update`` and ``reset_grad`` (for the w, b regression models; others are written plain);
- ``module``: an ``nn.Module``, a ``TensorDataset`` + ``DataLoader`` and a
  ``torch.optim`` optimizer (``SGD`` for the by-hand update: the same numbers).

Every style replays the same operations in the same order, so each exported script ends
on the session's parameters. Only literal numbers from the session go into the code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from playground.training.config import CODE_STYLES as STYLES


@dataclass(frozen=True)
class Ctx:
    """The settings an action's code depends on, as they were when it was done."""

    optimizer: str  # gd | sgd | adam
    full_batch: bool  # every micro-batch is the whole training set, in order
    k: int  # backward passes per step
    scale: bool  # each micro-batch loss divided by K
    retain: bool  # backward(retain_graph=True)
    zero_none: bool  # zero_grad sets .grad to None
    shuffle: bool
    seed: int
    batch_size: int
    n_batches: int


@dataclass(frozen=True, eq=False)  # the data may be tensors: compared by identity
class Setup:
    """What the script's set-up is made of: the data, the model at its start, the loss
    and the optimizer - all plain values from the session's build."""

    title: str
    device: str
    x: Any  # the data: a CPU tensor (made into a literal only when code is written) or a list
    y: Any
    model_kind: str
    module_code: str | None  # nn.Linear(...) / nn.Sequential(...); None for plain w, b
    init: dict[str, list]  # each parameter's initial values
    n_outputs: int
    loss: str
    lr: float
    momentum: float
    nesterov: bool
    weight_decay: float
    betas: tuple[float, float]
    ctx: Ctx  # the settings at the start

    @property
    def w_b(self) -> bool:
        """A one-output linear regression, whose parameters are a weight and a bias."""
        return (
            self.model_kind in ("scalar", "linear")
            and self.n_outputs == 1
            and self.loss
            in (
                "mse",
                "sse",
            )
        )


LOSS_CODE = {
    "mse": "F.mse_loss(out, target)",
    "sse": "((out - target) ** 2).sum()",
    "bce": "F.binary_cross_entropy(torch.sigmoid(out), target)",
    "bce_sum": 'F.binary_cross_entropy(torch.sigmoid(out), target, reduction="sum")',
    "ce": "F.cross_entropy(out, target.long())",
}

BATCH_IN_ORDER = """def batch(c):
    \"\"\"The c-th micro-batch: slices of the training set in order, epoch after epoch.\"\"\"
    j = c % n_batches
    return x[j * B:(j + 1) * B], y[j * B:(j + 1) * B]"""

LOADER_BATCHES = """from torch.utils.data import DataLoader, TensorDataset

loader = DataLoader(
    TensorDataset(x, y), batch_size=B, shuffle={shuffle}{generator}
)
epochs = []  # each epoch's mini-batches, in the order the DataLoader gives them


def batch(c):
    \"\"\"The c-th micro-batch: the DataLoader's{new_order}.\"\"\"
    e, j = divmod(c, n_batches)
    while len(epochs) <= e:
        epochs.append(list(loader))
        if len(epochs) > 2:
            epochs[-3] = None  # an epoch the loop is done with
    return epochs[e][j]"""


def _literal(values: object) -> str:
    # tolist() of float32 tensors gives the exact doubles; repr round-trips them.
    tolist = getattr(values, "tolist", None)
    return repr(tolist() if tolist is not None else values)


def _comment(text: str) -> str:
    """Text as comment lines: whatever it says, it stays a comment."""
    return "\n".join(f"# {line}" for line in text.splitlines() or [""])


def _indent(code: str, n: int = 4) -> str:
    pad = " " * n
    return "\n".join(pad + line if line else line for line in code.splitlines())


def docstring(text: str) -> str:
    """``text`` as a triple-quoted literal that nothing in it can end early (a preset's
    title is user text: quotes, backslashes and control characters are escaped)."""
    out = []
    for ch in text.replace("\\", "\\\\").replace('"', '\\"'):
        if ch in "\n\t" or ch.isprintable():
            out.append(ch)
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    return '"""' + "".join(out) + '"""'


class Writer:
    """Code for a transcript's set-up and entries in one of ``STYLES``."""

    def __init__(self, style: str, setup: Setup) -> None:
        if style not in STYLES:
            raise ValueError(f"code style {style!r} is not one of {', '.join(STYLES)}")
        self.setup = setup
        # the RegressionModel class is for the w, b regression models
        self.style = style if style != "class" or setup.w_b else "plain"

    # --- batches, losses, updates ---------------------------------------------------

    def batches(self, ctx: Ctx) -> str:
        """The code of ``batch(c)``: in order, or a DataLoader's (reshuffled each epoch
        when the session shuffles: the same order, a real DataLoader)."""
        if self.style != "module" and not ctx.shuffle:
            return BATCH_IN_ORDER
        generator = f", generator=torch.Generator().manual_seed({ctx.seed})" if ctx.shuffle else ""
        return LOADER_BATCHES.format(
            shuffle=ctx.shuffle,
            generator=generator,
            new_order=", a new order each epoch" if ctx.shuffle else ", in order",
        )

    def _uses_batches(self, ctx: Ctx) -> bool:
        return not ctx.full_batch or self.style == "module"

    def _loss(self, data: str) -> str:
        xs, ys = data.split(", ")
        if self.style == "class":
            return f"model.criterion({ys}, model.forward({xs}))"
        return f"loss_fn(forward({xs}), {ys})"

    @staticmethod
    def _scale(ctx: Ctx) -> str:
        return " / K" if ctx.k > 1 and ctx.scale else ""

    @staticmethod
    def _retain(ctx: Ctx) -> str:
        return "retain_graph=True" if ctx.retain else ""

    def _torch_opt(self, ctx: Ctx) -> bool:
        return ctx.optimizer != "gd" or self.style == "module"

    def zero_grad(self, ctx: Ctx, set_to_none: bool) -> str:
        if self.style == "class":
            return "model.reset_grad(set_to_none=True)" if set_to_none else "model.reset_grad()"
        if self._torch_opt(ctx):
            return "opt.zero_grad()" if set_to_none else "opt.zero_grad(set_to_none=False)"
        if set_to_none:
            return "for p in params:\n    p.grad = None"
        return "for p in params:\n    if p.grad is not None:\n        p.grad.zero_()"

    def step(self, ctx: Ctx) -> str:
        if self.style == "class":
            return "model.update()"
        if self._torch_opt(ctx):
            return "opt.step()"
        return (
            "with torch.no_grad():\n    for p in params:\n        if p.grad is not None:\n"
            "            p -= lr * p.grad"
        )

    # --- entries --------------------------------------------------------------------

    def code(self, kind: str, args: dict[str, Any], ctx: Ctx) -> str:
        return getattr(self, f"_{kind}")(ctx, **args)

    def _forward(self, ctx: Ctx, c: int) -> str:
        if not self._uses_batches(ctx):
            return f"loss = {self._loss('x, y')}"
        return f"xb, yb = batch({c})\nloss = {self._loss('xb, yb')}"

    def _backward(self, ctx: Ctx, c: int) -> str:
        call = f"loss.backward({self._retain(ctx)})"
        if not self._uses_batches(ctx):
            return f"loss = {self._loss('x, y')}{self._scale(ctx)}\n{call}"
        return f"xb, yb = batch({c})\nloss = {self._loss('xb, yb')}{self._scale(ctx)}\n{call}"

    def _backward_again(self, ctx: Ctx) -> str:
        return f"loss.backward({self._retain(ctx)})  # through the same graph once more"

    def _zero_grad(self, ctx: Ctx, set_to_none: bool) -> str:
        return self.zero_grad(ctx, set_to_none)

    def _step(self, ctx: Ctx) -> str:
        return self.step(ctx)

    def _train_steps(self, ctx: Ctx, n: int, c0: int) -> str:
        body = [self.zero_grad(ctx, ctx.zero_none)]
        batches = self._uses_batches(ctx)
        data = "xb, yb" if batches else "x, y"
        grad = "  # p.grad += d(loss / K)/dp" if ctx.k > 1 and ctx.scale else ""
        inner = f"loss = {self._loss(data)}{self._scale(ctx)}\nloss.backward(){grad}"
        if batches:
            inner = f"xb, yb = batch(c + k)\n{inner}"
        if ctx.k > 1:
            same = "" if batches else "  # K passes over the whole set: one pass's gradient"
            body.append(f"for k in range(K):{same}\n" + _indent(inner))
        else:
            body.append(inner.replace("c + k", "c"))
        body.append(self.step(ctx))
        loop = "\n".join(body)
        header = (
            f"for c in range({c0}, {c0 + n * ctx.k}, {ctx.k}):"
            if batches
            else f"for _ in range({n}):"
        )
        return f"{header}  # {n} train step{'s' if n != 1 else ''}\n" + _indent(loop)

    def _set_hyper(self, ctx: Ctx, name: str, value: Any, used: bool) -> str:
        if not used:
            return f"# {name} = {value!r} (kept; {ctx.optimizer} does not use it)"
        if self._torch_opt(ctx):
            return f"for group in opt.param_groups:\n    group[{name!r}] = {value!r}"
        return f"lr = {value!r}" if name == "lr" else f"# {name} = {value!r} (no effect by hand)"

    def _set_k(self, ctx: Ctx, k: int) -> str:
        return f"K = {k}"

    def _set_batch(self, ctx: Ctx) -> str:
        code = f"B, n_batches = {ctx.batch_size}, {ctx.n_batches}"
        if ctx.shuffle or self.style == "module":  # a DataLoader of the new batch size
            code += f"\n{self.batches(ctx)}"
        return code

    def _set_shuffle(self, ctx: Ctx) -> str:
        return self.batches(ctx)

    def _load_values(self, ctx: Ctx, values: dict[str, list], why: str) -> str:
        lines = [_comment(why), "with torch.no_grad():"]
        for i, (name, value) in enumerate(values.items()):
            lines.append(
                f"    params[{i}].copy_(torch.tensor({_literal(self._shaped(name, value))}))  # {name}"
            )
        return "\n".join(lines)

    def _set_values(self, ctx: Ctx, values: dict[str, list], why: str) -> str:
        code = self._load_values(ctx, values, why)
        if ctx.optimizer != "gd":  # the momentum of the path the parameters left
            code += "\nopt.state.clear()  # momentum / Adam's moments start afresh"
        return code

    def _note(self, ctx: Ctx, text: str) -> str:
        return _comment(text)

    def _shaped(self, name: str, value: list) -> list:
        """A parameter's values as this style's parameter holds them (the class style's w
        is a vector where nn.Linear's weight is a 1 x d matrix)."""
        if self.style == "class" and name == "weight":
            return [v for row in value for v in row]
        return value

    # --- the set-up -----------------------------------------------------------------

    def preamble(self) -> str:
        """The script's set-up: data, initial parameters, loss and optimizer, all literal."""
        s = self.setup
        ctx = s.ctx
        lines = [
            docstring(
                f"{s.title} - exported from playground ({self.style} code).\n\nRun with plain "
                "python + torch: it replays the session and prints the final\nparameters."
            ),
            "",
            "import torch",
            "import torch.nn.functional as F",
            "from torch import nn",
            "",
            f"device = torch.device({s.device!r})",
            f"x = torch.tensor({_literal(s.x)}, device=device)",
            f"y = torch.tensor({_literal(s.y)}, device=device)",
            f"B, K = {ctx.batch_size}, {ctx.k}  # micro-batch size, backward passes per step",
            f"n_batches = {ctx.n_batches}",
            "",
            "",
            self.batches(ctx),
            "",
            "",
            f"def loss_fn(out, target):\n    return {LOSS_CODE[s.loss]}",
            "",
            "",
        ]
        lines += self._model()
        lines += ["", "", f"lr = {s.lr!r}"]
        if self._torch_opt(ctx):
            lines.append(self._optimizer())
        return "\n".join(lines)

    def _optimizer(self) -> str:
        s = self.setup
        if s.ctx.optimizer == "adam":
            return (
                f"opt = torch.optim.Adam(params, lr=lr, betas={s.betas!r}, "
                f"weight_decay={s.weight_decay!r})"
            )
        if s.ctx.optimizer == "gd":  # the by-hand update, as torch.optim.SGD does it
            return "opt = torch.optim.SGD(params, lr=lr)  # p -= lr * p.grad, by torch.optim"
        return (
            f"opt = torch.optim.SGD(params, lr=lr, momentum={s.momentum!r}, "
            f"nesterov={s.nesterov!r}, weight_decay={s.weight_decay!r})"
        )

    def _model(self) -> list[str]:
        s = self.setup
        if self.style == "class":
            return self._regression_class()
        if s.model_kind == "scalar":
            if self.style == "module":
                return self._scalar_module()
            lines = [
                f"{name} = torch.tensor({_literal(value)}, device=device, requires_grad=True)"
                for name, value in s.init.items()
            ]
            return [*lines, f"params = [{', '.join(s.init)}]", "", "", "def forward(xb):",
                    "    return xb @ w + b"]  # fmt: skip
        lines = []
        if s.model_kind == "softmax":
            lines += SOFTMAX_CLASS.splitlines() + ["", ""]
        lines += [
            f"model = {s.module_code}.to(device)",
            "params = list(model.parameters())",
            "with torch.no_grad():",
        ]
        for i, (name, value) in enumerate(s.init.items()):
            lines.append(f"    params[{i}].copy_(torch.tensor({_literal(value)}))  # {name}")
        squeeze = ".squeeze(-1)" if s.n_outputs == 1 else ""
        return [*lines, "", "", "def forward(xb):", f"    return model(xb){squeeze}"]

    def _scalar_module(self) -> list[str]:
        w, b = (_literal(v) for v in self.setup.init.values())
        return [
            "class LinearRegression(nn.Module):",
            '    """y_p = x @ w + b, its parameters registered with nn.Module."""',
            "",
            "    def __init__(self):",
            "        super().__init__()",
            f"        self.w = nn.Parameter(torch.tensor({w}))",
            f"        self.b = nn.Parameter(torch.tensor({b}))",
            "",
            "    def forward(self, x):",
            "        return x @ self.w + self.b",
            "",
            "",
            "model = LinearRegression().to(device)",
            "params = list(model.parameters())",
            "",
            "",
            "def forward(xb):",
            "    return model(xb)",
        ]

    def _regression_class(self) -> list[str]:
        s = self.setup
        w, b = (self._shaped(n, v) for n, v in s.init.items())
        by_hand = s.ctx.optimizer == "gd"
        update = (
            [
                "        with torch.no_grad():",
                "            for p in (self.w, self.b):",
                "                if p.grad is not None:",
                "                    p -= lr * p.grad",
            ]
            if by_hand
            else ["        opt.step()"]
        )
        reset = (
            [
                "        for p in (self.w, self.b):",
                "            if set_to_none:",
                "                p.grad = None",
                "            elif p.grad is not None:",
                "                p.grad.zero_()",
            ]
            if by_hand
            else ["        opt.zero_grad(set_to_none=set_to_none)"]
        )
        return [
            "class RegressionModel:",
            '    """y_p = w x + b with w and b as member variables (seed 001, exercise 3)."""',
            "",
            "    def __init__(self):",
            f"        self.w = torch.tensor({_literal(w)}, device=device, requires_grad=True)",
            f"        self.b = torch.tensor({_literal(b)}, device=device, requires_grad=True)",
            "",
            "    def forward(self, x):",
            "        return x @ self.w + self.b",
            "",
            "    def criterion(self, y, yp):",
            "        return loss_fn(yp, y)",
            "",
            "    def update(self):",
            *update,
            "",
            "    def reset_grad(self, set_to_none=False):",
            *reset,
            "",
            "",
            "model = RegressionModel()",
            "params = [model.w, model.b]",
        ]


SOFTMAX_CLASS = '''class SoftmaxRegression(nn.Module):
    """h = XW + b with W: d x C, b: 1 x C."""

    def __init__(self, d, c):
        super().__init__()
        self.W = nn.Parameter(torch.zeros(d, c))
        self.b = nn.Parameter(torch.zeros(1, c))

    def forward(self, x):
        return torch.matmul(x, self.W) + self.b'''

EPILOGUE = "print('final parameters:')\nfor p in params:\n    print(p.detach().cpu().tolist())\n"
