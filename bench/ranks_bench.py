"""What data-parallel ranks cost: starting them, one lab all-reduce, DDP training steps.

    python bench/ranks_bench.py            # 2 and 4 gloo ranks, 2000 training steps
    python bench/ranks_bench.py --quick    # small counts (checks the script still runs)

Numbers, not pass/fail. Starting ranks is mostly each process importing torch, so it
grows with the ranks per core; the lab pays it once (the pool is kept), then each
all-reduce is a round trip through the pipes and one gloo all-reduce.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def lab_numbers(world: int, repeats: int) -> dict[str, float]:
    from playground.training.accumulation import LabComputation
    from playground.training.presets import find_preset
    from playground.training.rank_pool import RankPool
    from playground.training.session import Session

    session = Session(find_preset("noisy-line"), device="cpu")
    pool = RankPool(device="cpu")
    try:
        t0 = time.perf_counter()
        lab = LabComputation(session, k=world)
        local = time.perf_counter() - t0
        t0 = time.perf_counter()
        pool.allreduce(lab.tasks())
        start = time.perf_counter() - t0
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            pool.allreduce(LabComputation(session, k=world).tasks())
            times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
    finally:
        pool.stop()
    stop = time.perf_counter() - t0
    times.sort()
    return {
        "lab on one process (ms)": 1e3 * local,
        "first all-reduce, ranks started (s)": start,
        "next all-reduces, median (ms)": 1e3 * times[len(times) // 2],
        "stopping the ranks (s)": stop,
    }


def training_numbers(world: int, steps: int) -> dict[str, float]:
    from playground.training.ddp import DDPRun, Job
    from playground.training.presets import find_preset
    from playground.training.session import Session

    preset = find_preset("noisy-line")
    t0 = time.perf_counter()
    run = DDPRun(Job(preset, preset.config, steps, steps), world, "cpu").start()
    first = None
    for _ in run.rows():
        first = time.perf_counter() - t0
    total = time.perf_counter() - t0
    one = Session(preset, device="cpu", accumulate=world)
    t1 = time.perf_counter()
    one.run(steps)
    alone = time.perf_counter() - t1
    return {
        "DDP run, start to last step (s)": first or total,
        "DDP run, whole (s)": total,
        f"--accumulate {world} on one process (s)": alone,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    steps, repeats = (200, 5) if args.quick else (2000, 50)
    for world in (2, 4):
        print(f"{world} gloo ranks on {__import__('os').cpu_count()} cores")
        for name, value in {
            **lab_numbers(world, repeats),
            **training_numbers(world, steps),
        }.items():
            print(f"  {name:<40} {value:10.3f}")
    print(f"  ({steps} DDP training steps of noisy-line)")


if __name__ == "__main__":
    main()
