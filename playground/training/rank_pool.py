"""Rank processes kept for the accumulation lab's all-reduce column.

The lab's third gradient is computed by real data-parallel ranks, not by a sum in one
process: K ranks (gloo on the CPU; nccl when each has a GPU) each run forward and
backward on a ``DistributedDataParallel`` copy of the model for their micro-batch(es) -
``no_sync()`` on all but the last - and send back what the all-reduce left in their
``.grad``. Every rank holds the same gradient; the pool says how far apart they are.

Starting ranks takes seconds (each process imports torch), so the pool is started on
first use and reused; a different number of ranks starts a new one. Its owner (the
runner) stops it when it ends. A rank that dies or hangs raises ``RankError`` naming it;
the pool is then stopped and starts afresh on the next use.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch

from playground.training.parallel import Backend, RankGroup, choose_backend
from playground.training.rank_main import RankContext

MAX_RANKS = 8  # processes the lab starts at most (K beyond that: several micro-batches a rank)


@dataclass(frozen=True)
class ModelSpec:
    """What a rank needs to build the model (its values come with each task)."""

    kind: str
    n_features: int
    n_outputs: int
    hidden: tuple[int, ...]
    activation: str


@dataclass(frozen=True)
class RankTask:
    """One rank's share of an all-reduce: the parameters and its micro-batches."""

    spec: ModelSpec
    loss: str
    values: dict[str, np.ndarray]
    parts: tuple[tuple[np.ndarray, np.ndarray, float], ...]  # (x, y, loss weight) each


@dataclass(frozen=True)
class AllReduced:
    """What the ranks computed: rank 0's gradient, and the largest difference between
    any rank's gradient and rank 0's (0.0: every rank holds the same numbers)."""

    grads: dict[str, np.ndarray]
    spread: float
    world: int
    backend: str


def default_ranks(k: int) -> int:
    """Ranks for K micro-batches: K, or the largest divisor of K up to ``MAX_RANKS``."""
    return max(d for d in range(1, min(k, MAX_RANKS) + 1) if k % d == 0)


def serve_rank(ctx: RankContext, _payload: object) -> None:
    """A rank of the pool: answer tasks until told to stop."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    from playground.training.ddp import ModelModule
    from playground.training.models import build_model, compute_loss

    built: tuple[ModelSpec, ModelModule, DDP] | None = None
    while True:
        message = ctx.recv()
        if message[0] == "stop":
            return
        task: RankTask = message[1]
        if built is None or built[0] != task.spec:
            s = task.spec
            model = build_model(s.kind, s.n_features, s.n_outputs, s.hidden, s.activation)
            net = ModelModule(model).to(ctx.device)
            cuda = ctx.device.type == "cuda"
            built = (s, net, DDP(net, device_ids=[ctx.device.index] if cuda else None))
        _, net, ddp = built
        params = net.model_params()
        with torch.no_grad():
            for name, p in params.items():
                p.copy_(torch.as_tensor(task.values[name]))
                p.grad = None
        for j, (x, y, weight) in enumerate(task.parts):
            last = j == len(task.parts) - 1
            xb, yb = torch.as_tensor(x, device=ctx.device), torch.as_tensor(y, device=ctx.device)
            with contextlib.nullcontext() if last else ddp.no_sync():
                loss = compute_loss(task.loss, ddp(xb), yb)
                if last:
                    ctx.tick()
                (loss * weight if weight != 1.0 else loss).backward()  # the last one all-reduces
        grads = {n: p.grad.detach().cpu().numpy() for n, p in params.items()}  # type: ignore[union-attr]
        ctx.send(("grads", grads))


class RankPool:
    """Ranks for the lab, started on first use and kept. See the module docstring."""

    def __init__(self, device: str = "cpu", timeout: float = 10.0) -> None:
        self.device, self.timeout = device, timeout
        self.group: RankGroup | None = None
        self.backend: Backend | None = None
        self.starts = 0  # how many times ranks were started (reuse shows as 1)

    def ready_for(self, world: int) -> bool:
        """``world`` ranks are up already (the next all-reduce need not start any)."""
        return self.group is not None and self.group.world == world and self.group.alive

    def check(self) -> str:
        """If a rank ended since the last all-reduce (killed while idle): say how, and
        stop the others (the next all-reduce starts new ranks). "" when all is well."""
        if self.group is None or self.group.alive:
            return ""
        said = "; ".join(self.group.ended())
        self.stop()
        return f"{said} since the last computation"

    def describe(self, world: int) -> str:
        return f"{world} {choose_backend(self.device, world).name} rank{'s' if world > 1 else ''}"

    @property
    def pids(self) -> list[int]:
        return [] if self.group is None else self.group.pids

    def allreduce(self, tasks: list[RankTask]) -> AllReduced:
        """Rank r computes ``tasks[r]``; the gradient DDP left in the ranks' ``.grad``."""
        world = len(tasks)
        if not self.ready_for(world):
            self.stop()
            self.backend = choose_backend(self.device, world)
            self.group = RankGroup(
                serve_rank, None, world, self.backend, timeout=self.timeout, tick="all-reduce"
            )
            self.group.start()
            self.starts += 1
        group = self.group
        assert group is not None and self.backend is not None
        try:
            for rank, task in enumerate(tasks):
                group.send(rank, ("task", task))
            answers: dict[int, dict[str, np.ndarray]] = {}
            while len(answers) < world:
                rank, (_, grads) = group.recv()
                answers[rank] = grads
        except BaseException:
            self.group = None  # stopped by the group itself on a RankError
            with contextlib.suppress(Exception):
                group.stop(grace=0.0)
            raise
        first = answers[0]
        spread = max(
            float(np.max(np.abs(g[n] - first[n]))) if g[n].size else 0.0
            for g in answers.values()
            for n in first
        )
        return AllReduced(first, spread, world, self.backend.name)

    def stop(self) -> None:
        """End the ranks (if any); the next all-reduce starts new ones."""
        group, self.group = self.group, None
        if group is None:
            return
        for rank in range(group.world):
            with contextlib.suppress(Exception):
                group.send(rank, ("stop",))
        group.stop(grace=2.0)
