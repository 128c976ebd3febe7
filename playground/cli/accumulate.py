"""``playground accumulate``: one gradient three ways, and the classic mistakes, headless.

    playground accumulate noisy-line --k 4              # full batch, 4 micro-batches, 4 ranks
    playground accumulate noisy-line --k 4 --ranks 2    # 2 ranks x 2 micro-batches (no_sync)
    playground accumulate noisy-line --k 3 --json       # 160 samples in 3: uneven

For the preset's initial parameters (or after ``--after N`` train steps) and the next
B*K samples: the full-batch gradient, the K micro-batch gradients added up by
``backward()`` with and without the 1/K, and the gradient that K real data-parallel
ranks hold after DDP's all-reduce; their largest differences; then each mistake's
numbers (forgot zero_grad, forgot 1/K with SGD and with Adam, an uneven last
micro-batch and its reduction="sum" / N fix, shuffled micro-batches).

Exit codes: 0 done, 2 bad input, 1 a rank died or hung (the others' numbers are printed).
"""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``accumulate`` on the main parser's subparsers."""
    p = subparsers.add_parser(
        "accumulate",
        help="full batch == K accumulated micro-batches == all-reduce over ranks, headless",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("preset", help="preset name or .toml file")
    p.add_argument("--k", type=int, default=0, help="micro-batches (default: the preset's K, or 4)")
    p.add_argument(
        "--ranks",
        type=int,
        default=0,
        help="data-parallel ranks of the all-reduce (default: K, or a divisor of K up to 8)",
    )
    p.add_argument(
        "--batch-size", type=int, default=None, help="micro-batch size B (0: the whole set in K)"
    )
    p.add_argument("--after", type=int, default=0, metavar="N", help="train N steps first")
    p.add_argument("--device", default=None, help="auto | cpu | cuda ... (default: cpu)")
    p.add_argument("--seed", type=int, default=None, help="seed for data and initial weights")
    p.add_argument("--json", action="store_true", help="one JSON object instead of text")


def _fail(message: str, code: int = 2) -> int:
    print(f"playground: error: {message}", file=sys.stderr)
    return code


def run(args: argparse.Namespace) -> int:
    from playground.training.accumulation import LabComputation
    from playground.training.catalog import PresetError
    from playground.training.devices import DeviceError
    from playground.training.lab import as_json, report
    from playground.training.parallel import RankError
    from playground.training.presets import find_preset
    from playground.training.rank_pool import RankPool
    from playground.training.session import Session

    overrides = {"device": args.device or "cpu", "seed": args.seed, "batch_size": args.batch_size}
    try:
        session = Session(find_preset(args.preset), **overrides)
        if args.after < 0:
            raise ValueError(f"--after: {args.after} must be >= 0")
        if args.after:
            session.run(args.after)
        lab = LabComputation(session, args.k, None, args.ranks)
    except (PresetError, DeviceError, ValueError) as exc:
        return _fail(str(exc))
    pool = RankPool(device="auto" if session.device.type == "cuda" else "cpu")
    code = 0
    try:
        view = lab.view(pool.allreduce(lab.tasks()))
    except RankError as exc:
        view, code = lab.view(rank_note=str(exc)), 1
    finally:
        pool.stop()
    print(json.dumps(as_json(view)) if args.json else report(view))
    return code
