"""``playground run PRESET --ranks N``: train on N data-parallel ranks with DDP.

    playground run noisy-line --ranks 2 --steps 50            # 2 gloo ranks on the CPU
    playground run noisy-line --ranks 2 --accumulate 2        # 2 ranks x K = 2 (no_sync)
    playground run noisy-line --ranks 4 --device cuda         # 4 GPUs, nccl
    torchrun --nproc-per-node 4 -m playground run noisy-line --ranks 4   # under torchrun

The ranks are processes of their own (``torch.multiprocessing``, spawn; rendezvous on
127.0.0.1), or torchrun's when it started this command. They end on the parameters of
``--accumulate N*K`` on one process (``--check`` trains that too and prints the largest
difference). A rank that dies or hangs is reported with its number (exit code 1).
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

import numpy as np

from playground.cli.settings_check import short_values
from playground.training.report import dumps

NOT_WITH_RANKS = ("resume", "export_csv", "save", "until_loss", "actions", "restore_best")
COLUMNS = ("step", "epoch", "batch_loss", "train_loss", "val_loss")


def add_rank_options(run: argparse.ArgumentParser) -> None:
    """``--ranks`` and its companions on ``playground run``."""
    run.add_argument(
        "--ranks",
        type=int,
        default=None,
        metavar="N",
        help="train on N data-parallel ranks (DistributedDataParallel: gloo on the CPU, "
        "nccl with a GPU per rank); --accumulate is then K per rank",
    )
    run.add_argument(
        "--rank-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="with --ranks: report a rank that makes no progress for S seconds (default 10)",
    )
    run.add_argument(
        "--check",
        action="store_true",
        help="with --ranks: also train --accumulate N*K on one process and compare",
    )


def _fail(message: str, code: int = 2) -> int:
    print(f"playground: error: {message}", file=sys.stderr)
    return code


def _fmt(v: Any) -> str:
    return "-" if v is None else f"{v:.6g}" if isinstance(v, float) else str(v)


def run_ranks(args: argparse.Namespace) -> int:
    """Train ``args.preset`` on ``args.ranks`` ranks; print rows and a summary."""
    from playground.cli.settings_check import checked_config
    from playground.files import write_atomic
    from playground.training.catalog import PresetError
    from playground.training.config import USER_SETTINGS
    from playground.training.ddp import DDPRun, Job, script_for, under_torchrun
    from playground.training.parallel import RankError
    from playground.training.presets import find_preset

    world = int(args.ranks)
    used = [n for n in NOT_WITH_RANKS if getattr(args, n, None)]
    if used:
        return _fail(f"--{used[0].replace('_', '-')} does not go with --ranks")
    if world < 1:
        return _fail(f"--ranks: {world} must be at least 1")
    device = getattr(args, "device", None) or "auto"
    overrides = {k: getattr(args, k) for k in USER_SETTINGS if getattr(args, k, None) is not None}
    overrides.pop("device", None)
    try:
        preset = find_preset(args.preset)
        cfg = checked_config(preset, overrides)  # as a single-process run checks them
        steps = args.steps if args.steps is not None else cfg.max_steps
        every = args.every or max(1, steps // 20)
        job = Job(preset, cfg, steps, every)
        if under_torchrun():
            return _under_torchrun(args, job, world, device)
        run = DDPRun(job, world, device, timeout=args.rank_timeout)
    except (PresetError, ValueError) as exc:
        return _fail(str(exc))
    if args.export_script:
        try:  # a new file beside the target, renamed over it: never through a link
            write_atomic(args.export_script, script_for(job))
        except OSError as exc:
            return _fail(f"--export-script: {exc}")
    _header(args, job, world, run.backend)
    mirror = Mirror(job, run.shares)
    try:
        run.start()
        for row in run.rows():
            _print_row(args, row, mirror)
    except RankError as exc:
        return _fail(str(exc), 1)
    assert run.final is not None
    return _summary(args, job, world, run.backend.name, run.final, mirror)


def _finite(value: Any, flags: list[bool]) -> Any:
    """``value`` with every non-finite number as None (strict JSON); flags it."""
    if isinstance(value, list):
        return [_finite(v, flags) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        flags.append(False)
        return None
    return value


class Mirror:
    """A one-process session of the same preset and settings (``--accumulate N*K``), put
    at the ranks' parameters: the JSON rows and the summary are made from its snapshot
    by ``report.row`` / ``report.summary``, as ``playground run`` makes them, with the
    loop's position and the step's loss and delta from the ranks."""

    def __init__(self, job: Any, shares: Any) -> None:
        from playground.training.session import Session

        self.job, self.shares = job, shares
        m = shares.world * shares.k
        self.session = Session(job.preset, job.cfg.with_overrides(device="cpu", accumulate=m))

    def load(self, values: dict[str, Any], grads: dict[str, Any] | None = None) -> Any:
        import torch

        with torch.no_grad():
            for name, p in self.session.model.params.items():
                p.copy_(torch.tensor(values[name]))
                g = None if grads is None else grads.get(name)
                p.grad = None if g is None else torch.tensor(g, dtype=p.dtype)
        return self.session.snapshot()

    def row(self, row: dict[str, Any]) -> dict[str, Any]:
        """Rank 0's report at a step as the row one process would print there (its epochs
        count every backward's samples: a full-batch step of K' backwards is K' epochs)."""
        from playground.training.report import row as report_row

        params = row["params"]
        snap = self.load(
            {n: p["value"] for n, p in params.items()}, {n: p["grad"] for n, p in params.items()}
        )
        out = report_row(snap)
        m, n = self.shares.world * self.shares.k, self.shares.n_train
        b = self.shares.batch_size or n
        n_batches = -(-n // b)
        done = row["step"] * m  # micro-batches one process has walked by then
        flags: list[bool] = [] if out["finite"] else [False]
        out.update(
            step=row["step"],
            # one process counts an epoch for each step that ends one (at most one a step)
            epochs_done=row["step"] if m >= n_batches else done // n_batches,
            epoch=round(((done // n_batches) * n + (done % n_batches) * b) / n, 6),
            batch=[(done - 1) % n_batches + 1, n_batches],
            batch_loss=_finite(row["batch_loss"], flags),
        )
        for name, p in out["params"].items():
            p["backwards_since_zero"] = m if p["grad"] is not None else 0
            p["delta"] = _finite(params[name]["delta"], flags)
        out["finite"] = not flags
        return out

    def summary(self, final: dict[str, Any], message: str) -> dict[str, Any]:
        from playground.training.report import summary

        out = summary(self.load(final), "max_steps", message)
        out["steps"] = self.job.steps
        return out


def _header(args: argparse.Namespace, job: Any, world: int, backend: Any) -> None:
    if args.json:
        return
    k = job.cfg.accumulate
    print(
        f"{job.preset.title}\n{world} ranks ({backend.name} on {backend.device}) x K = {k}: "
        f"the steps of --accumulate {world * k} on one process"
    )
    print("  ".join(f"{h:>12}" for h in COLUMNS))


def _print_row(args: argparse.Namespace, row: dict[str, Any], mirror: Mirror) -> None:
    r = mirror.row(row)
    if args.json:
        print(dumps(r), flush=True)
    else:
        print("  ".join(f"{_fmt(r.get(h)):>12}" for h in COLUMNS), flush=True)


def _summary(
    args: argparse.Namespace,
    job: Any,
    world: int,
    backend: str,
    final: dict[str, Any],
    mirror: Mirror,
) -> int:
    k = job.cfg.accumulate
    same = f"--accumulate {world * k}"
    message = f"reached step {job.steps} on {world} {backend} ranks x K = {k}: the steps of {same}"
    check = None
    if args.check:
        from playground.training.session import Session

        one = Session(job.preset, job.cfg.with_overrides(device="cpu", accumulate=world * k))
        one.run(job.steps)
        check = max(
            float(np.max(np.abs(np.asarray(final[n]) - p.detach().cpu().numpy())))
            for n, p in one.model.params.items()
        )
        message += f"; max |final - final of {same} on one process| = {check:.2e}"
    summary = mirror.summary(final, message)
    if args.json:
        print(dumps(summary))
        return 0
    print(f"\n{message}")
    cols = [("final", final), ("true", summary["true"]), ("least squares", summary["closed_form"])]
    cols = [(label, vals) for label, vals in cols if vals]
    print(f"{'param':<10}" + "".join(f"{label:>30}" for label, _ in cols))
    for n in final:
        print(f"{n:<10}" + "".join(f"{short_values(vals.get(n)):>30}" for _, vals in cols))
    if check is not None:
        print("(fp32 sums agree to ~1e-7, not bit for bit)")
    return 0


def _under_torchrun(args: argparse.Namespace, job: Any, world: int, device: str) -> int:
    """torchrun started this process as one rank: train as it; rank 0 prints."""
    import os

    from playground.training.ddp import train_here

    actual = int(os.environ["WORLD_SIZE"])
    if actual != world:
        return _fail(f"--ranks {world}, but torchrun started {actual} processes")
    from playground.training.ddp import check_job
    from playground.training.parallel import choose_backend

    final: dict[str, Any] = {}
    try:
        shares = check_job(job, world)
        backend = choose_backend(device, int(os.environ.get("LOCAL_WORLD_SIZE", str(world))))
    except ValueError as exc:
        return _fail(str(exc))
    mirror = Mirror(job, shares)
    if int(os.environ["RANK"]) == 0:
        _header(args, job, world, backend)

    def on_message(message: Any) -> None:
        kind, body = message[0], message[1]
        if kind == "row":
            _print_row(args, body, mirror)
        elif kind == "final":
            final.update(body)

    try:
        backend = train_here(job, device, on_message)
    except ValueError as exc:
        return _fail(str(exc))
    if int(os.environ["RANK"]) != 0:
        return 0
    return _summary(args, job, world, backend.name, final, mirror)
