"""The accumulation lab's numbers, computed on a copy: the session is left as it was.

For the session's current parameters and the next B*K samples - its next K micro-batches
of B, or, when the batch is the whole training set, that set cut into K micro-batches -
``LabComputation`` works on a copy of the model (its own parameters and ``.grad``), with
its own random generator, and never calls a session action: parameters, gradients,
optimizer state, the undo stack, the transcript and the global RNG stay as they were.

It computes the full-batch gradient of those samples; each micro-batch's gradient; the
running ``.grad`` as ``loss.backward()`` adds them up, with and without the 1/K; and the
classic mistakes with the steps they would make: a forgotten ``zero_grad`` (last step's
gradient added), a forgotten 1/K (K times the step with SGD, nearly none with Adam), an
uneven last micro-batch (the mean of the micro-batch means is not the mean; a
``reduction="sum"`` loss over N is), shuffled micro-batches. The all-reduced column comes
from real ranks (``rank_pool``); ``lab_views`` yields the view before and after them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from playground.training.ddp_script import lab_code
from playground.training.lab import (
    SUM_LOSSES,
    LabToggles,
    LabView,
    ParamLab,
    Pitfall,
    StepCompare,
)
from playground.training.models import Model, compute_loss
from playground.training.parallel import RankError
from playground.training.rank_pool import AllReduced, ModelSpec, RankPool, RankTask, default_ranks
from playground.training.state import copy_optimizer_state

MAX_K = 64
Grads = dict[str, torch.Tensor]


def sum_loss(name: str, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The loss with ``reduction="sum"``: divided by the number of samples of all K
    micro-batches, it weights every sample alike however the samples are split."""
    if name in ("mse", "sse"):
        return ((out - y) ** 2).sum()
    if name == "bce":
        return F.binary_cross_entropy(torch.sigmoid(out), y, reduction="sum")
    if name == "ce":
        return F.cross_entropy(out, y.long(), reduction="sum")
    raise ValueError(f"unknown loss {name!r}")


def _pieces(n: int, k: int) -> list[int]:
    """n samples in k micro-batches of ceil(n / k), the last one holding the rest (as a
    DataLoader cuts them); evenly within one sample if that would leave one empty."""
    size = -(-n // k)
    last = n - size * (k - 1)
    if last > 0:
        return [size] * (k - 1) + [last]
    return [n // k + (1 if i < n % k else 0) for i in range(k)]


class LabComputation:
    """The lab for ``session`` now (see the module docstring). ``k``: micro-batches (0:
    the session's K, or 4 when that is 1); ``ranks``: ranks of the all-reduce (0: K, or a
    divisor of K up to 8)."""

    def __init__(
        self, session: Any, k: int = 0, toggles: LabToggles | None = None, ranks: int = 0
    ) -> None:
        self.s, self.cfg, self.build = session, session.cfg, session.build
        self.k = k or (self.cfg.accumulate if self.cfg.accumulate > 1 else 4)
        if not 1 <= self.k <= min(MAX_K, self.build.n_train):
            raise ValueError(
                f"k: {self.k} micro-batches; the lab takes 1 to {min(MAX_K, self.build.n_train)}"
            )
        self.ranks = ranks or default_ranks(self.k)
        if self.ranks < 1 or self.k % self.ranks:
            raise ValueError(f"ranks: {self.ranks} ranks cannot share {self.k} micro-batches")
        self.toggles = toggles or LabToggles()
        model: Model = self.build.model
        # the lab's own copy: its parameters and .grad are not the session's
        self.names = list(model.params)
        if model.module is not None:
            module = copy.deepcopy(model.module)
            params = dict(module.named_parameters())
        else:
            module = None
            params = {n: p.detach().clone().requires_grad_(True) for n, p in model.params.items()}
        for p in params.values():
            p.grad = None
        self.model = Model(model.kind, module, params, model.n_outputs)
        self.params = params
        self.gen = torch.Generator().manual_seed(
            (self.cfg.seed * 1_000_003 + session.step_count) % 2**63
        )
        self.fixed, self.sizes, self.window = self._window(self.toggles.uneven)
        self.main = self._shuffled(self.fixed) if self.toggles.shuffled else self.fixed
        self.leftover, self.leftover_note = self._leftover()
        self.columns = self._columns()
        self.pitfalls = self._pitfalls()

    # --- samples ----------------------------------------------------------------------

    def _window(self, uneven: bool) -> tuple[torch.Tensor, list[int], str]:
        """The sample indices of the next K micro-batches, their sizes, and in words."""
        n, b, k = self.build.n_train, self.cfg.batch_size, self.k
        if b in (0, n):
            idx = torch.arange(n)
            sizes = _pieces(n, k)
            said = f"all {n} samples"
        else:
            n_batches = -(-n // b)
            parts, sizes = [], []
            c0 = self.s.cursor
            for c in range(c0, c0 + k):
                epoch, j = divmod(c, n_batches)
                if self.cfg.shuffle:  # the session's DataLoader order of that epoch
                    parts.append(self.build.order.perm(epoch)[j * b : (j + 1) * b].cpu())
                else:
                    parts.append(torch.arange(j * b, min((j + 1) * b, n)))
                sizes.append(len(parts[-1]))
            idx = torch.cat(parts)
            said = f"the next {k} micro-batches of B = {b} ({c0}-{c0 + k - 1})"
        if uneven and len(set(sizes)) == 1 and sizes[-1] > 1:
            cut = sizes[-1] - sizes[-1] // 2  # the last micro-batch keeps half its samples
            idx, sizes = idx[: len(idx) - cut], sizes[:-1] + [sizes[-1] - cut]
            said += " (the last cut to half)"
        return idx, sizes, said

    def _shuffled(self, idx: torch.Tensor) -> torch.Tensor:
        return idx[torch.randperm(len(idx), generator=self.gen)]

    def _micro(self, idx: torch.Tensor, sizes: list[int]) -> list[torch.Tensor]:
        return list(torch.split(idx, sizes))

    def _xy(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        idx = idx.to(self.build.x.device)
        return self.build.x[idx], self.build.y[idx]

    # --- gradients (on the copy) ------------------------------------------------------

    def _grad(self, idx: torch.Tensor, loss_of: Callable[..., torch.Tensor] | None = None) -> Grads:
        """The gradient of the loss over ``idx`` (a mean, unless ``loss_of`` says)."""
        x, y = self._xy(idx)
        loss = (loss_of or (lambda o, t: compute_loss(self.cfg.loss, o, t)))(self.model(x), y)
        grads = torch.autograd.grad(loss, list(self.params.values()))
        return {n: g.detach() for n, g in zip(self.params, grads, strict=True)}

    def _accumulate(
        self, micro: list[torch.Tensor], divide: float | None, start: Grads | None
    ) -> list[Grads]:
        """``.grad`` after each ``loss.backward()`` (of loss / ``divide``), from ``start``:
        autograd itself does the adding."""
        for n, p in self.params.items():
            p.grad = None if start is None else start[n].clone()
        out = []
        for idx in micro:
            x, y = self._xy(idx)
            loss = compute_loss(self.cfg.loss, self.model(x), y)
            (loss / divide if divide else loss).backward()  # p.grad += d(loss / K)/dp
            out.append({n: p.grad.detach().clone() for n, p in self.params.items()})  # type: ignore[union-attr]
        for p in self.params.values():
            p.grad = None
        return out

    def _leftover(self) -> tuple[Grads, str]:
        """What a forgotten zero_grad leaves in .grad: the session's .grad if it has one."""
        live = self.build.model.params
        if any(p.grad is not None for p in live.values()):
            counts = self.s.progress.backwards_since_zero
            said = max(counts.values(), default=0)
            return (
                {n: (p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p))
                 for n, p in live.items()},
                f"the leftover is the session's .grad ({said} backward{'s' if said != 1 else ''} "
                "since zero_grad)",
            )  # fmt: skip
        return (
            self._grad(self.main),
            "no .grad in the session yet: the leftover is taken as this step's gradient",
        )

    def _columns(self) -> dict[str, Any]:
        micro = self._micro(self.main, self.sizes)
        start = self.leftover if self.toggles.forgot_zero_grad else None
        return {
            "full": self._grad(self.main),
            "micro": [self._grad(idx) for idx in micro],
            "running": self._accumulate(micro, self.k, start),
            "unscaled": self._accumulate(micro, None, start),
        }

    # --- the classic mistakes -----------------------------------------------------------

    def _delta(self, kind: str, grads: Grads, fresh: bool) -> dict[str, np.ndarray]:
        """The parameter change one step of optimizer ``kind`` makes with ``grads``
        (from the session's optimizer state unless ``fresh``), on throwaway copies."""
        values = {n: p.detach().clone().requires_grad_(True) for n, p in self.params.items()}
        cfg, live = self.cfg, self.build.optimizer
        opt: torch.optim.Optimizer | None = None
        if kind == "sgd":
            momentum = 0.0 if fresh else cfg.momentum
            opt = torch.optim.SGD(list(values.values()), lr=cfg.lr, momentum=momentum)
        elif kind == "adam":
            opt = torch.optim.Adam(list(values.values()), lr=cfg.lr, betas=cfg.betas)
        if opt is not None and not fresh and live is not None and kind == cfg.optimizer:
            opt.load_state_dict(copy_optimizer_state(live.state_dict()))
        for n, v in values.items():
            v.grad = grads[n].clone()
        before = {n: v.detach().clone() for n, v in values.items()}
        if opt is not None:
            opt.step()
        else:
            with torch.no_grad():
                for v in values.values():
                    v -= cfg.lr * v.grad  # type: ignore[operator]
        return {n: (values[n].detach() - before[n]).cpu().numpy() for n in values}

    def _compare(self, right: Grads, wrong: Grads, kind: str | None = None) -> StepCompare:
        kind = kind or self.cfg.optimizer
        fresh = kind != self.cfg.optimizer
        label = {"sgd": "SGD", "adam": "Adam", "gd": "by hand"}[kind]
        label += f" (lr {self.cfg.lr:g}{', fresh' if fresh else ''})"
        return StepCompare(label, self._delta(kind, right, fresh), self._delta(kind, wrong, fresh))

    def _pitfalls(self) -> tuple[Pitfall, ...]:
        t, k, cols = self.toggles, self.k, self.columns
        right = (
            cols["running"][-1]
            if not t.forgot_zero_grad
            else self._accumulate(self._micro(self.main, self.sizes), k, None)[-1]
        )
        full = cols["full"]
        with_left = {n: self.leftover[n] + right[n] for n in right}
        unscaled = {n: right[n] * k for n in right}
        out = [
            Pitfall(
                "forgot_zero_grad",
                "forgot zero_grad",
                "no zero_grad: last step's .grad is still there, and backward adds to it",
                t.forgot_zero_grad,
                (("max |accum. - full|", _max(with_left, full)),
                 ("max |leftover|", _max(self.leftover, None))),
                (self._compare(right, with_left),),
                self.leftover_note,
            ),
            Pitfall(
                "forgot_scale",
                "forgot 1/K",
                f"no / K: .grad holds the sum of {k} micro-batch gradients, {k}x the mean",
                t.forgot_scale,
                (("|accum.| / |full|", _norm(unscaled) / max(_norm(full), 1e-30)),),
                (self._compare(right, unscaled, "sgd"), self._compare(right, unscaled, "adam")),
                f"SGD steps {k}x further; Adam divides by the gradient's own size, so its step "
                "barely changes",
            ),
        ]  # fmt: skip
        out.append(self._uneven())
        out.append(self._shuffle(right))
        return tuple(out)

    def _uneven(self) -> Pitfall:
        idx, sizes, _ = self._window(True)
        micro = self._micro(idx, sizes)
        n = len(idx)
        mean_of_means = self._accumulate(micro, self.k, None)[-1]
        sum_over_n = self._accumulate_sum(micro, n)
        full = self._grad(idx)
        said = " + ".join(map(str, sizes))
        if len(set(sizes)) == 1:
            return Pitfall("uneven", "uneven last micro-batch", "", self.toggles.uneven, (), (),
                           f"micro-batches of {sizes[0]} cannot be made uneven")  # fmt: skip
        if self.cfg.loss in SUM_LOSSES:  # a sum has no mean to weight
            summed = self._accumulate(micro, None, None)[-1]
            return Pitfall(
                "uneven",
                "uneven last micro-batch",
                f"{said} samples: {self.cfg.loss} adds over the samples, so the plain sum of "
                "the micro-batch gradients is exact however they are split",
                self.toggles.uneven,
                (("max |sum of micro-batch grads - full|", _max(summed, full)),),
                (),
            )
        return Pitfall(
            "uneven",
            "uneven last micro-batch",
            f"{said} samples: loss / K weights the mean of each micro-batch alike, so the "
            "few samples of the last count more",
            self.toggles.uneven,
            (("max |mean of means - full|", _max(mean_of_means, full)),
             ("max |sum/N - full|", _max(sum_over_n, full))),
            (self._compare(full, mean_of_means),),
            f'the fix: loss = loss_fn(out, yb, reduction="sum") / N, N = {n} samples in all',
        )  # fmt: skip

    def _accumulate_sum(self, micro: list[torch.Tensor], n: int) -> Grads:
        for p in self.params.values():
            p.grad = None
        for idx in micro:
            x, y = self._xy(idx)
            (sum_loss(self.cfg.loss, self.model(x), y) / n).backward()
        out = {name: p.grad.detach().clone() for name, p in self.params.items()}  # type: ignore[union-attr]
        for p in self.params.values():
            p.grad = None
        return out

    def _shuffle(self, right: Grads) -> Pitfall:
        other = self.fixed if self.toggles.shuffled else self._shuffled(self.fixed)
        mine = self._micro(self.main, self.sizes)
        theirs = self._micro(other, self.sizes)
        acc = self._accumulate(theirs, self.k, None)[-1]
        micro_gap = max(
            _max(self._grad(a), self._grad(b)) for a, b in zip(mine, theirs, strict=True)
        )
        return Pitfall(
            "shuffled",
            "shuffled micro-batches",
            "shuffled vs fixed: the same samples, cut into different micro-batches",
            self.toggles.shuffled,
            (("max |micro-batch grad change|", micro_gap),
             ("max |accum. change|", _max(acc, right))),
            (self._compare(right, acc),),
            "each micro-batch's gradient changes; their sum over the same samples does not "
            "(unless the split is uneven)",
        )  # fmt: skip

    # --- out ----------------------------------------------------------------------------

    def spec(self) -> ModelSpec:
        cfg, ds = self.cfg, self.build.dataset
        return ModelSpec(
            self.model.kind, ds.n_features, self.model.n_outputs, cfg.hidden, cfg.activation
        )

    def tasks(self) -> list[RankTask]:
        """Rank r's share of the all-reduce: micro-batches r*m ... r*m + m - 1 (m = K /
        ranks), each loss / m; DDP's average over the ranks makes it the sum / K."""
        values = {n: p.detach().cpu().numpy() for n, p in self.params.items()}
        micro = self._micro(self.main, self.sizes)
        m = self.k // self.ranks
        out = []
        for r in range(self.ranks):
            parts = []
            for idx in micro[r * m : (r + 1) * m]:
                x, y = self._xy(idx)
                parts.append((x.cpu().numpy(), y.cpu().numpy(), 1.0 / m))
            out.append(RankTask(self.spec(), self.cfg.loss, values, tuple(parts)))
        return out

    def view(
        self, reduced: AllReduced | None = None, rank_note: str = "", rank_event: str = ""
    ) -> LabView:
        cols = self.columns

        def host(g: torch.Tensor) -> np.ndarray:
            return g.detach().cpu().numpy().copy()

        params = tuple(
            ParamLab(
                name=n,
                shape=tuple(self.params[n].shape),
                full=host(cols["full"][n]),
                micro=tuple(host(g[n]) for g in cols["micro"]),
                running=tuple(host(g[n]) for g in cols["running"]),
                running_unscaled=tuple(host(g[n]) for g in cols["unscaled"]),
                start=host(self.leftover[n]) if self.toggles.forgot_zero_grad else None,
                allreduced=None if reduced is None else reduced.grads[n].copy(),
            )
            for n in self.names
        )
        return LabView(
            preset=self.build.preset.name,
            step=self.s.step_count,
            k=self.k,
            ranks=self.ranks,
            window=self.window,
            sizes=tuple(self.sizes),
            loss=self.cfg.loss,
            toggles=self.toggles,
            params=params,
            pitfalls=self.pitfalls,
            code=lab_code(self.toggles, self.k, self.ranks, self.cfg.loss, self.cfg.optimizer),
            lr=self.cfg.lr,
            n_train=self.build.n_train,
            backend="" if reduced is None else reduced.backend,
            rank_note=rank_note,
            rank_spread=None if reduced is None else reduced.spread,
            rank_event=rank_event,
        )


def lab_views(
    session: Any, pool: RankPool, k: int = 0, toggles: LabToggles | None = None, ranks: int = 0
) -> Iterator[LabView]:
    """The lab's view: first without the all-reduce while the ranks start (only when
    they must), then with it - or with why the ranks did not answer."""
    lab = LabComputation(session, k, toggles, ranks)
    lost = pool.check()  # a rank killed since the last time is reported, not hidden
    if not pool.ready_for(lab.ranks):
        starting = f"starting {pool.describe(lab.ranks)}..."
        yield lab.view(rank_note=f"{lost}; {starting}" if lost else starting)
    try:
        yield lab.view(pool.allreduce(lab.tasks()), rank_event=lost)
    except RankError as exc:
        yield lab.view(rank_note=f"{exc} (the next computation starts new ranks)")


def _max(a: Grads, b: Grads | None) -> float:
    return max(
        float((a[n] - b[n]).abs().max()) if b is not None else float(a[n].abs().max()) for n in a
    )


def _norm(g: Grads) -> float:
    return float(torch.sqrt(sum((t.double() ** 2).sum() for t in g.values())))
