"""Inside each data-parallel rank: meet the others, run the target, report back.

``parallel.RankGroup`` starts every rank with ``rank_main`` (through
``torch.multiprocessing``). A rank dies with its parent (Linux), keeps quiet under the
TUI (its errors come back by pipe), beats a heartbeat the parent watches, joins the
process group on 127.0.0.1 only (gloo or nccl), and runs ``target(ctx, payload)``: the
``RankContext`` is its rank, the group's size, its device, its pipe to the parent, and
``tick()`` before each all-reduce, so the parent can name a rank that falls behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

LOOPBACK = "127.0.0.1"
BEAT_S = 0.25  # how often each rank's heartbeat thread writes the time


def loopback_interface() -> str:
    """The name of the loopback network interface ("lo" on Linux, "lo0" on macOS)."""
    with contextlib.suppress(OSError):
        for _, name in socket.if_nameindex():
            if name.startswith("lo"):
                return name
    return "lo"


@dataclass(frozen=True)
class Meeting:
    """How a spawned rank joins the group (pickled into each process)."""

    port: int  # the parent's TCPStore on 127.0.0.1
    world: int
    backend: str
    device: str  # "cpu" | "cuda"
    timeout_s: float  # for the store and for every collective
    quiet: bool  # the rank's stdout and stderr go to /dev/null (under the TUI)


class RankContext:
    """What a rank's target gets: its rank, the group's size, its device, its pipe to the
    parent, and ``tick()`` to call before each all-reduce."""

    def __init__(
        self,
        rank: int,
        world: int,
        device: torch.device,
        conn: Any = None,
        steps: Any = None,
        on_send: Callable[[Any], None] | None = None,
    ) -> None:
        self.rank, self.world, self.device = rank, world, device
        self._conn, self._steps, self._on_send = conn, steps, on_send

    def tick(self) -> None:
        """One more all-reduce begun (the parent names the rank that falls behind)."""
        if self._steps is not None:
            self._steps[self.rank] += 1

    def send(self, message: Any) -> None:
        if self._on_send is not None:
            self._on_send(message)
        elif self._conn is not None:
            self._conn.send(message)

    def recv(self) -> Any:
        return self._conn.recv()


def _die_with_parent() -> None:
    """Linux: the kernel kills this process when the parent that started it ends."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _silence() -> None:
    """Under the TUI a rank must not write to the terminal: errors come back by pipe."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.close(devnull)


def _heartbeat(beats: Any, rank: int) -> None:
    def beat() -> None:
        while True:
            beats[rank] = time.monotonic()
            time.sleep(BEAT_S)

    threading.Thread(target=beat, name="rank-heartbeat", daemon=True).start()


def join_group(rank: int, meeting: Meeting) -> torch.device:
    """In a spawned rank: meet the others on the parent's store (127.0.0.1 only) and form
    the process group; returns this rank's device."""
    # gloo and nccl pick the address their peers connect to from the host name unless
    # told otherwise: keep every connection on the loopback
    lo = loopback_interface()
    os.environ["GLOO_SOCKET_IFNAME"] = lo
    os.environ["NCCL_SOCKET_IFNAME"] = lo
    os.environ["MASTER_ADDR"] = LOOPBACK
    # N ranks share the cores: one thread each unless there are cores to spare
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // meeting.world))
    timeout = timedelta(seconds=meeting.timeout_s)
    store = dist.TCPStore(LOOPBACK, meeting.port, is_master=False, timeout=timeout)
    device = torch.device("cpu")
    if meeting.device == "cuda":
        device = torch.device("cuda", rank)
        torch.cuda.set_device(device)
    dist.init_process_group(
        meeting.backend,
        store=store,
        rank=rank,
        world_size=meeting.world,
        timeout=timeout,
        device_id=device if device.type == "cuda" else None,
    )
    return device


def rank_main(
    rank: int,
    meeting: Meeting,
    target: Callable[[RankContext, Any], None],
    payload: Any,
    ends: list[Any],
    steps: Any,
    beats: Any,
) -> None:
    """The body of every spawned rank (``torch.multiprocessing`` calls it with its rank)."""
    _die_with_parent()
    if meeting.quiet:
        _silence()
    conn = ends[rank]
    _heartbeat(beats, rank)
    try:
        device = join_group(rank, meeting)
        steps[rank] = 0
        target(RankContext(rank, meeting.world, device, conn, steps), payload)
    except Exception as exc:
        with contextlib.suppress(OSError):
            conn.send(("error", f"{type(exc).__name__}: {exc}".strip(), traceback.format_exc()))
        raise
    finally:
        if dist.is_initialized():
            with contextlib.suppress(Exception):
                dist.destroy_process_group()
    # done, and everything sent: skip the interpreter's teardown of torch (a second or
    # more per rank), which would only delay the parent waiting for the ranks to end
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
