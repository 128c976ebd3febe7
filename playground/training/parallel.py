"""Data-parallel ranks on torch.distributed: start them, let them meet, watch them.

``RankGroup`` starts N processes the way PyTorch documents it
(``torch.multiprocessing.start_processes`` with the spawn method), each running
``target(ctx, payload)`` as one rank. They meet on a ``TCPStore`` that the parent hosts
on 127.0.0.1 on a port the system picks (so no other process can take it in between),
form one process group - gloo on the CPU, nccl when every rank has a GPU of its own -
and talk to the parent through one pipe each. Nothing listens beyond the loopback.

The parent never waits on a rank without a deadline: it waits on every pipe and every
process at once. A rank that dies is reported at once, with its number and how it ended;
one that stops making progress is reported when the timeout runs out, named by two
signs: its heartbeat (a thread in every rank) stopped, or its step counter (advanced
before every all-reduce) fell behind the others'. Either way the other ranks are stopped
and no process is left behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from multiprocessing import connection
from typing import Any, NoReturn

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from playground.training.rank_main import LOOPBACK, Meeting, RankContext, rank_main

NOT_JOINED = -1  # a rank's step counter until it has joined the process group
STALE_S = 2.0  # a heartbeat older than this: the process is not running (stopped, stuck)
GRACE_S = 0.5  # after a first failure, how long to wait for the others to show theirs


class RankError(RuntimeError):
    """A rank died, failed, hung or never joined. ``rank`` names it (the first of them
    when several hung together); ``kind`` is "died", "failed", "hung" or "start"."""

    def __init__(self, message: str, rank: int | None, kind: str) -> None:
        super().__init__(message)
        self.rank = rank
        self.kind = kind


@dataclass(frozen=True)
class Backend:
    """The process group's backend and the device type of its ranks."""

    name: str  # "gloo" | "nccl"
    device: str  # "cpu" | "cuda"


def gpu_count() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def choose_backend(device: str, world: int) -> Backend:
    """gloo on the CPU; nccl when every one of ``world`` ranks can have a GPU of its own.
    ``device``: "auto" (nccl if there are enough GPUs, else gloo), "cpu" or "cuda"."""
    name = (device or "auto").strip().lower()
    gpus = gpu_count()
    if name.startswith("cuda"):
        if gpus < world or not dist.is_nccl_available():
            raise ValueError(
                f"device: {world} ranks on cuda need {world} GPUs (nccl, one GPU a rank); "
                f"this machine has {gpus} - use --device cpu for gloo ranks on the CPU"
            )
        return Backend("nccl", "cuda")
    if name == "auto" and gpus >= world and dist.is_nccl_available():
        return Backend("nccl", "cuda")
    if name not in ("auto", "cpu"):
        raise ValueError(f"device: {device!r} cannot hold ranks; use cpu (gloo) or cuda (nccl)")
    return Backend("gloo", "cpu")


def _start_resource_tracker() -> None:
    """multiprocessing's resource tracker (started with the first spawned process) hands
    ``sys.stderr.fileno()`` to its process; under a TUI that has replaced sys.stderr the
    file number is -1 and every spawn fails. Start it on /dev/null instead."""
    from multiprocessing import resource_tracker

    try:
        usable = sys.stderr is not None and sys.stderr.fileno() >= 0
    except (OSError, ValueError, AttributeError):
        usable = False
    if usable:
        return
    saved = sys.stderr
    with open(os.devnull, "w") as devnull:
        sys.stderr = devnull
        try:
            resource_tracker.ensure_running()
        finally:
            sys.stderr = saved


def _how_it_ended(exitcode: int | None) -> str:
    if exitcode is None:
        return "is still running"
    if exitcode == 0:
        return "ended before it answered"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"died (killed by {name})"
    return f"died (exit code {exitcode})"


class RankGroup:
    """N rank processes running ``target(ctx, payload)``: start, message, watch, stop.

    ``recv`` returns the next message any rank sends and raises ``RankError`` when a
    rank dies, fails (its error comes back by pipe) or makes no progress for ``timeout``
    seconds (``start_timeout`` until all have joined); the group is stopped by then.
    ``tick`` names what a rank's counter counts in those messages ("step", "all-reduce").
    """

    def __init__(
        self,
        target: Callable[[RankContext, Any], None],
        payload: Any,
        world: int,
        backend: Backend,
        *,
        quiet: bool = True,
        timeout: float = 10.0,
        start_timeout: float = 60.0,
        tick: str = "step",
    ) -> None:
        if world < 1:
            raise ValueError(f"ranks: {world} must be at least 1")
        self.target, self.payload, self.world, self.backend = target, payload, world, backend
        self.quiet, self.timeout, self.start_timeout, self.tick = (
            quiet,
            timeout,
            start_timeout,
            tick,
        )
        self._procs: Any = None
        self._conns: list[Any] = []
        self._store: Any = None
        self._steps: Any = None
        self._beats: Any = None
        self._done: set[int] = set()  # ranks that ended normally (exit code 0)
        self.started_at = 0.0

    # --- life --------------------------------------------------------------------------

    def start(self) -> None:
        # the parent hosts the rendezvous: port 0 lets the system pick a free port, and
        # it stays ours (no window in which another process could take it)
        self._store = dist.TCPStore(
            LOOPBACK,
            0,
            is_master=True,
            wait_for_workers=False,
            timeout=timedelta(seconds=self.start_timeout),
        )
        _start_resource_tracker()
        ctx = mp.get_context("spawn")
        pipes = [ctx.Pipe() for _ in range(self.world)]
        self._conns = [parent for parent, _ in pipes]
        ends = [child for _, child in pipes]
        self._steps = ctx.Array("q", [NOT_JOINED] * self.world, lock=False)
        self._beats = ctx.Array("d", [0.0] * self.world, lock=False)
        meeting = Meeting(
            int(self._store.port),
            self.world,
            self.backend.name,
            self.backend.device,
            max(self.timeout, 1.0) * 3,  # collectives give up after this on their own
            self.quiet,
        )
        self.started_at = time.monotonic()
        self._procs = mp.start_processes(
            rank_main,
            args=(meeting, self.target, self.payload, ends, self._steps, self._beats),
            nprocs=self.world,
            join=False,
            daemon=True,  # and so ended by multiprocessing if this process exits first
            start_method="spawn",
        )
        for end in ends:  # each child has its own copy now
            end.close()

    @property
    def pids(self) -> list[int]:
        return [] if self._procs is None else self._procs.pids()

    @property
    def alive(self) -> bool:
        return self._procs is not None and all(
            p.is_alive() for i, p in enumerate(self._procs.processes) if i not in self._done
        )

    def ended(self) -> list[str]:
        """How each rank that is no longer running ended ("rank 2 died (killed by
        SIGKILL)"), for ranks that should still be running."""
        if self._procs is None:
            return []
        return [
            f"rank {i} {_how_it_ended(p.exitcode)}"
            for i, p in enumerate(self._procs.processes)
            if i not in self._done and not p.is_alive()
        ]

    @property
    def steps(self) -> list[int]:
        return [] if self._steps is None else list(self._steps)

    def send(self, rank: int, message: Any) -> None:
        try:
            self._conns[rank].send(message)
        except OSError:  # the pipe is gone: the rank has ended
            self._failed(rank, None)

    def stop(self, grace: float = 2.0) -> None:
        """End every rank: those that do not end within ``grace`` seconds are terminated,
        then killed (a stopped process only ends on SIGKILL). Joins all of them."""
        procs = [] if self._procs is None else self._procs.processes
        deadline = time.monotonic() + grace
        for p in procs:
            p.join(max(0.0, deadline - time.monotonic()))
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(1.0)
            if p.is_alive():
                p.kill()
                p.join(5.0)
        for conn in self._conns:
            conn.close()
        for path in [] if self._procs is None else self._procs.error_files:
            with contextlib.suppress(OSError, TypeError):
                os.unlink(path)
        self._conns, self._store = [], None

    def finish(self, timeout: float | None = None) -> None:
        """Wait (up to ``timeout``, default the group's) for every rank to end on its own,
        then stop the group; a rank that fails on the way out is reported."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        procs = self._procs.processes
        for i, p in enumerate(procs):
            p.join(max(0.0, deadline - time.monotonic()))
            if p.exitcode not in (0, None):
                self._failed(i, None)
        self.stop(grace=0.0)

    # --- waiting -----------------------------------------------------------------------

    def recv(self, rank: int | None = None) -> tuple[int, Any]:
        """The next message (from ``rank``, or from any rank), as (rank, message)."""
        procs = self._procs.processes
        begun = time.monotonic()
        seen, moved = self.steps, begun
        while True:
            conns = [c for i, c in enumerate(self._conns) if rank is None or i == rank]
            sentinels = {p.sentinel: i for i, p in enumerate(procs) if i not in self._done}
            ready = connection.wait([*conns, *sentinels], timeout=0.2)
            for obj in ready:  # messages first: a rank that sent its result and ended is fine
                if obj in sentinels:
                    continue
                i = self._conns.index(obj)
                try:
                    message = obj.recv()
                except (EOFError, OSError):  # its end closed: the rank has ended
                    self._failed(i, None)
                if isinstance(message, tuple) and message and message[0] == "error":
                    self._failed(i, message[1])
                return i, message
            for obj in ready:
                i = sentinels[obj]
                if procs[i].exitcode == 0 and (rank is None or i != rank):
                    self._done.add(i)  # ended normally; the others may still have work
                    continue
                self._failed(i, None)
            now = time.monotonic()
            current = self.steps
            if current != seen:
                seen, moved = current, now
            joining = any(s == NOT_JOINED for s in current)
            # until every rank has begun its first all-reduce it may still be building
            # its model and data (seconds on a busy machine): the start's time limit
            limit = self.start_timeout if min(current) <= 0 else self.timeout
            if now - max(moved, begun) > limit:
                self._hung(current, limit, joining)

    def _failed(self, first: int, error: str | None) -> NoReturn:
        """Rank ``first`` died or raised: let the others show their state, stop them all
        and raise a RankError naming the rank that started it."""
        procs = self._procs.processes
        errors = {first: error} if error else {}
        deadline = time.monotonic() + GRACE_S
        while time.monotonic() < deadline and any(p.is_alive() for p in procs):
            for i, conn in enumerate(self._conns):
                with contextlib.suppress(EOFError, OSError):
                    while conn.poll():
                        message = conn.recv()
                        if isinstance(message, tuple) and message and message[0] == "error":
                            errors.setdefault(i, message[1])
            time.sleep(0.02)
        codes = [p.exitcode for p in procs]
        steps = self.steps
        self.stop(grace=0.0)
        # a rank killed by a signal is the cause; the others failed because it left
        killed = [i for i, c in enumerate(codes) if c is not None and c < 0]
        culprit = killed[0] if killed else first
        at = steps[culprit] if steps else NOT_JOINED
        where = f" at {self.tick} {at}" if at > 0 else " before it joined" if at < 0 else ""
        if culprit in errors and culprit not in killed:
            what, kind = f"failed{where}: {errors[culprit]}", "failed"
        else:
            what, kind = f"{_how_it_ended(codes[culprit])}{where}", "died"
        others = self.world - 1
        tail = {0: "", 1: "; the other rank was stopped"}.get(
            others, f"; the other {others} ranks were stopped"
        )
        raise RankError(f"rank {culprit} {what}{tail}", culprit, kind)

    def _hung(self, steps: list[int], limit: float, joining: bool) -> NoReturn:
        now = time.monotonic()
        beats = list(self._beats)
        stale = [i for i, b in enumerate(beats) if b and now - b > STALE_S]
        if joining:
            late = [i for i, s in enumerate(steps) if s == NOT_JOINED]
            self.stop(grace=0.0)
            names = ", ".join(map(str, late))
            raise RankError(
                f"rank{'s' if len(late) > 1 else ''} {names} did not join the group in "
                f"{limit:g} s; all ranks were stopped",
                late[0],
                "start",
            )
        low = min(steps)
        behind = [i for i, s in enumerate(steps) if s == low and low < max(steps)]
        culprits = stale or behind or list(range(self.world))
        waiting = [i for i in range(self.world) if i not in culprits]
        self.stop(grace=0.0)
        names = ", ".join(map(str, culprits))
        why = "stopped responding" if stale else "made no progress"
        said = f"rank{'s' if len(culprits) > 1 else ''} {names} hung: {why} for {limit:g} s"
        said += f" (at {self.tick} {steps[culprits[0]]}"
        if waiting:
            said += f"; rank{'s' if len(waiting) > 1 else ''} {', '.join(map(str, waiting))} waited"
        raise RankError(said + "); all ranks were stopped", culprits[0], "hung")
