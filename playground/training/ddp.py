"""Training on N data-parallel ranks with ``DistributedDataParallel``.

Every rank builds the session's build from the preset's seed (the same data, the same
initial parameters), wraps the model in ``DistributedDataParallel`` and takes its share
of each step's samples. ``loss.backward()`` on a rank's last micro-batch all-reduces the
gradients (DDP averages them over the ranks); ``no_sync()`` keeps the backward passes
before it local. Every rank then holds the same gradient and takes the same step - the
step that gradient accumulation over ranks x K micro-batches takes on one process, so
``--ranks N`` ends where ``--accumulate N`` does (to float rounding, about 1e-7).

The shares (``Shares``): with micro-batches of B samples, step t takes micro-batches
t*N*K ... (t+1)*N*K - 1, walked as one process walks them, rank r the K of them from
(t*N + r)*K on, each loss / K. With the whole training set as the batch, rank r takes the
r-th of N contiguous shards, split into K micro-batches, each loss weighted by its share
of the samples (n_micro * N / n_total: 1/K when the shards are even), so the average over
the ranks is the full-batch mean even when the samples do not split evenly.

Ranks start through ``parallel.RankGroup`` (``torch.multiprocessing``, spawn), or, under
``torchrun``, each torchrun process is one rank (``train_here``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from playground.training.build import make_build, make_optimizer, module_code
from playground.training.config import TrainConfig
from playground.training.ddp_script import ScriptSpec, ddp_script
from playground.training.lab import SUM_LOSSES
from playground.training.models import Model, compute_loss
from playground.training.parallel import Backend, RankGroup, choose_backend
from playground.training.presets import Preset
from playground.training.rank_main import RankContext


class ModelModule(nn.Module):
    """A session model as one ``nn.Module`` (DDP wraps modules): an nn model as it is,
    the by-hand ``w``, ``b`` as parameters of a module of their own."""

    def __init__(self, model: Model) -> None:
        super().__init__()
        self.n_outputs = model.n_outputs
        self.net = model.module
        if model.module is None:
            self.w = nn.Parameter(model.params["w"].detach().clone())
            self.b = nn.Parameter(model.params["b"].detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.net is None:
            return x @ self.w + self.b
        out = self.net(x)
        return out.squeeze(-1) if self.n_outputs == 1 else out

    def model_params(self) -> dict[str, nn.Parameter]:
        """The parameters by the session model's names, in its order."""
        if self.net is None:
            return {"w": self.w, "b": self.b}
        return dict(self.net.named_parameters())


def split(start: int, stop: int, n: int) -> list[tuple[int, int]]:
    """``range(start, stop)`` in ``n`` contiguous pieces as ``torch.tensor_split`` cuts it
    (the first ``len % n`` pieces one longer)."""
    size, extra = divmod(stop - start, n)
    out, a = [], start
    for i in range(n):
        b = a + size + (1 if i < extra else 0)
        out.append((a, b))
        a = b
    return out


@dataclass(frozen=True)
class Shares:
    """Which samples each rank takes at each step, and the weight of each micro-batch's
    loss, so that DDP's average over the ranks is what one process accumulates."""

    world: int
    k: int  # micro-batches per rank between two all-reduces
    n_train: int
    batch_size: int  # 0: the whole training set is each step's batch
    sum_loss: bool
    shuffle: bool = False  # micro-batches of B follow each epoch's DataLoader order

    @property
    def full_batch(self) -> bool:
        return self.batch_size in (0, self.n_train)

    def problem(self) -> str | None:
        if self.full_batch and self.n_train < self.world * self.k:
            return (
                f"ranks: {self.n_train} training samples cannot be split into "
                f"{self.world} ranks x {self.k} micro-batches"
            )
        return None

    def parts(self, rank: int, step: int) -> list[tuple[int, int, float]]:
        """(first sample, end, loss weight) of each of ``rank``'s micro-batches at
        ``step``; with ``shuffle``, positions in the order of epoch ``epoch(...)``."""
        if self.full_batch:
            # the whole set each step: its order changes nothing but the rounding
            shard = split(0, self.n_train, self.world)[rank]
            pieces = split(*shard, self.k)
            if self.sum_loss:  # a sum over all samples: DDP's 1/N average taken back
                return [(a, b, float(self.world)) for a, b in pieces]
            return [(a, b, (b - a) * self.world / self.n_train) for a, b in pieces]
        size = self.batch_size
        out = []
        for j in range(self.k):
            first = (self.micro(rank, step, j) % self.n_batches) * size
            out.append((first, min(first + size, self.n_train), 1.0 / self.k))
        return out

    @property
    def n_batches(self) -> int:
        return -(-self.n_train // (self.batch_size or self.n_train))

    def micro(self, rank: int, step: int, j: int) -> int:
        """The micro-batch one process would take as ``rank``'s j-th at ``step``."""
        return (step * self.world + rank) * self.k + j

    def epoch(self, rank: int, step: int, j: int) -> int | None:
        """The epoch whose sample order ``rank``'s j-th micro-batch is cut from (None:
        the samples in their own order)."""
        if not self.shuffle or self.full_batch:
            return None
        return self.micro(rank, step, j) // self.n_batches


@dataclass(frozen=True)
class Job:
    """What every rank trains: the preset with its settings, for ``steps`` steps."""

    preset: Preset
    cfg: TrainConfig  # ``accumulate`` is K per rank
    steps: int
    every: int  # rank 0 reports the losses every ``every`` steps (and after the last)


def check_job(job: Job, world: int) -> Shares:
    """The job's shares, or ValueError saying why it cannot run on ``world`` ranks."""
    cfg = job.cfg
    if world < 1:
        raise ValueError(f"ranks: {world} must be at least 1")
    if not cfg.scale_loss and cfg.accumulate > 1:
        raise ValueError("scale_loss: ranks need the 1/K scaling (DDP averages the gradients)")
    build = make_build(job.preset, cfg, torch.device("cpu"))  # bad presets / settings raise
    shares = Shares(
        world, cfg.accumulate, build.n_train, cfg.batch_size, cfg.loss in SUM_LOSSES, cfg.shuffle
    )
    problem = shares.problem()
    if problem:
        raise ValueError(problem)
    return shares


def script_for(job: Job) -> str:
    """The job as a script for ``torchrun`` that trains what ``DDPRun`` trains."""
    build = make_build(job.preset, job.cfg, torch.device("cpu"))
    model = build.model
    spec = ScriptSpec(
        title=job.preset.title,
        cfg=job.cfg,
        steps=job.steps,
        x=build.x.tolist(),
        y=build.y.tolist(),
        init={n: p.detach().tolist() for n, p in model.params.items()},
        model_kind=model.kind,
        module_code=module_code(model, build.dataset.n_features),
        n_features=build.dataset.n_features,
        n_outputs=model.n_outputs,
    )
    return ddp_script(spec)


def train_rank(ctx: RankContext, job: Job) -> None:
    """One rank's training loop (the same on every rank); rank 0 reports."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    cfg = job.cfg
    build = make_build(job.preset, cfg, ctx.device)  # the same seed: the same start everywhere
    net = ModelModule(build.model).to(ctx.device)
    cuda = ctx.device.type == "cuda"
    model = DDP(net, device_ids=[ctx.device.index] if cuda else None)
    params = net.model_params()
    opt = make_optimizer(Model(build.model.kind, None, dict(params), net.n_outputs), cfg)
    shares = Shares(
        ctx.world,
        cfg.accumulate,
        build.n_train,
        cfg.batch_size,
        cfg.loss in SUM_LOSSES,
        cfg.shuffle,
    )
    x, y = build.x, build.y
    for step in range(job.steps):
        report = (step + 1) % job.every == 0 or step + 1 == job.steps
        if opt is not None:
            opt.zero_grad(set_to_none=cfg.zero_grad == "none")
        else:
            for p in params.values():
                p.grad = None
        step_loss = torch.zeros((), device=ctx.device)
        parts = shares.parts(ctx.rank, step)
        for j, (a, b, weight) in enumerate(parts):
            last = j == len(parts) - 1
            epoch = shares.epoch(ctx.rank, step, j)
            # the DataLoader order of that epoch, as one process shuffles (same seed)
            index = slice(a, b) if epoch is None else build.epoch_perm(epoch)[a:b]
            # the last backward all-reduces (DDP averages over the ranks); the others
            # only add to this rank's .grad
            with contextlib.nullcontext() if last else model.no_sync():
                loss = compute_loss(cfg.loss, model(x[index]), y[index])
                if last:
                    ctx.tick()
                (loss * weight).backward()
            step_loss += loss.detach() * weight
        before = {n: p.detach().clone() for n, p in params.items()} if report else {}
        if opt is not None:
            opt.step()
        else:
            with torch.no_grad():
                for p in params.values():
                    p -= cfg.lr * p.grad
        if report:
            dist.all_reduce(step_loss)  # the loss whose gradient this step used, all ranks
            if ctx.rank == 0:
                row: dict[str, Any] = {"step": step + 1, "batch_loss": float(step_loss) / ctx.world}
                row["params"] = {
                    n: {
                        "value": p.detach().cpu().tolist(),
                        "grad": None if p.grad is None else p.grad.detach().cpu().tolist(),
                        "delta": (p.detach() - before[n]).cpu().tolist(),
                    }
                    for n, p in params.items()
                }
                ctx.send(("row", row))
    if ctx.rank == 0:
        ctx.send(("final", {n: p.detach().cpu().tolist() for n, p in params.items()}))
    # no rank closes its connections while another still uses them
    dist.barrier()


class DDPRun:
    """A training on ``world`` spawned ranks, seen from the parent: ``start``, then
    iterate ``rows()`` (rank 0's reports); ``final`` holds the parameters at the end.
    A rank that dies or hangs raises ``RankError`` from ``rows()``."""

    def __init__(
        self,
        job: Job,
        world: int,
        device: str = "auto",
        *,
        quiet: bool = False,
        timeout: float = 10.0,
    ) -> None:
        self.shares = check_job(job, world)
        self.backend: Backend = choose_backend(device, world)
        self.group = RankGroup(
            train_rank, job, world, self.backend, quiet=quiet, timeout=timeout, tick="step"
        )
        self.final: dict[str, Any] | None = None

    def start(self) -> DDPRun:
        self.group.start()
        return self

    @property
    def pids(self) -> list[int]:
        return self.group.pids

    def rows(self) -> Iterator[dict[str, Any]]:
        try:
            while True:
                _, (kind, body, *_) = self.group.recv(rank=0)
                if kind == "final":
                    self.final = body
                    break
                yield body
            self.group.finish()
        finally:
            self.group.stop(grace=0.0)

    def run(self) -> dict[str, Any]:
        """Start, train to the end; the final parameters."""
        self.start()
        for _ in self.rows():
            pass
        assert self.final is not None
        return self.final


def under_torchrun() -> bool:
    """This process is one of torchrun's workers (its environment names rank and world)."""
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"))


def train_here(job: Job, device: str, on_message: Callable[[Any], None]) -> Backend:
    """Under torchrun: train as the rank torchrun made this process (``RANK``,
    ``WORLD_SIZE``, ``LOCAL_RANK``; the rendezvous is torchrun's). ``on_message`` gets
    rank 0's reports."""
    world, rank = int(os.environ["WORLD_SIZE"]), int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    check_job(job, world)
    backend = choose_backend(device, int(os.environ.get("LOCAL_WORLD_SIZE", str(world))))
    dev = torch.device("cuda", local) if backend.device == "cuda" else torch.device("cpu")
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    dist.init_process_group(
        backend.name, init_method="env://", device_id=dev if dev.type == "cuda" else None
    )
    try:
        train_rank(RankContext(rank, world, dev, on_send=on_message), job)
    finally:
        dist.destroy_process_group()
    return backend
