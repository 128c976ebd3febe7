"""The loss landscape's costs: the grid, and run mode with the landscape open.

    python bench/landscape_bench.py            # full counts (about a minute)
    python bench/landscape_bench.py --quick    # small counts: checks the script still runs

1. One 121 x 121 grid over noisy-line's 160 training samples on the CPU (the real model
   and loss, one vmap over the grid points), alone and with its levels and contours.
   Target: the grid <= 20 ms.
2. Run-mode throughput with the app attached (as bench/run.py measures it), the main
   screen against the landscape screen open and following the run, alternating rounds
   so that machine noise hits both alike. Target: open >= 0.9x of closed.

Numbers, not pass/fail: the exit code is 0 whatever they are.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from playground.training.landscape import grid_loss, make_grid  # noqa: E402
from playground.training.landscape_plane import make_plane  # noqa: E402
from playground.training.landscape_view import LandscapeRequest, Window  # noqa: E402
from playground.training.session import Session  # noqa: E402


def grid_ms(repeats: int) -> dict[str, float]:
    """Median and best milliseconds of one 121 x 121 grid over noisy-line."""
    s = Session.from_preset("noisy-line", device="cpu")
    plane = make_plane(s, LandscapeRequest())
    window = Window(0.0, 6.0, -2.0, 5.0)
    xs, ys = np.linspace(0, 6, 121), np.linspace(-2, 5, 121)
    for _ in range(3):  # warm-up: vmap's first trace, the allocator
        grid_loss(s, plane, xs, ys)
        make_grid(s, plane, window, 121, 12)
    alone, full = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        grid_loss(s, plane, xs, ys)
        alone.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        make_grid(s, plane, window, 121, 12)
        full.append((time.perf_counter() - t) * 1000)
    return {
        "median": statistics.median(alone),
        "best": min(alone),
        "with_contours": statistics.median(full),
        "samples": s.build.n_train,
    }


async def _steps_per_second(preset: str, seconds: float, landscape: bool) -> float:
    from playground.tui import make_app
    from playground.ui.training.landscape_screen import LandscapeScreen

    app = make_app(preset, device="cpu", overrides={"max_steps": 10**9})
    async with app.run_test(size=(120, 40)) as pilot:
        await _wait(pilot, lambda: app.snapshot is not None)
        if landscape:
            await pilot.press("v")
            await _wait(pilot, lambda: getattr(app.screen, "view", None) is not None)
            assert isinstance(app.screen, LandscapeScreen)
        await pilot.pause(0.2)
        await pilot.press("r")
        await _wait(pilot, lambda: app.running and app.snapshot.step > 0)
        await pilot.pause(0.3)  # past the first views (the grid computed once)
        s0, t0 = app.snapshot.step, time.perf_counter()
        await pilot.pause(seconds)
        s1, t1 = app.snapshot.step, time.perf_counter()
        await pilot.press("r")
    return (s1 - s0) / (t1 - t0)


async def _wait(pilot: Any, predicate: Any, timeout: float = 60.0) -> None:
    deadline = time.perf_counter() + timeout
    while not predicate():
        if time.perf_counter() > deadline:
            raise TimeoutError("the app did not reach the expected state")
        await pilot.pause(0.01)


def throughput(preset: str, seconds: float, rounds: int) -> dict[str, float]:
    """Median steps/s with the main screen and with the landscape open, alternating."""
    closed, opened = [], []
    for _ in range(rounds):
        closed.append(asyncio.run(_steps_per_second(preset, seconds, False)))
        opened.append(asyncio.run(_steps_per_second(preset, seconds, True)))
    c, o = statistics.median(closed), statistics.median(opened)
    return {"closed": c, "open": o, "ratio": o / c}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small counts (CI)")
    args = ap.parse_args()
    os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")
    q = args.quick
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs")
    g = grid_ms(5 if q else 50)
    print(
        f"1. grid 121x121 over {g['samples']} samples (CPU): median {g['median']:.1f} ms, "
        f"best {g['best']:.1f} ms; with levels and contours {g['with_contours']:.1f} ms "
        f"(target <= 20 ms: {'met' if g['median'] <= 20 else 'not met'})"
    )
    for preset in ("noisy-line", "xor"):
        r = throughput(preset, 1.0 if q else 4.0, 1 if q else 3)
        print(
            f"2. run mode with the app, {preset}: {r['open']:.0f} steps/s with the landscape "
            f"open vs {r['closed']:.0f} without = {r['ratio']:.2f}x "
            f"(target >= 0.9x: {'met' if r['ratio'] >= 0.9 else 'not met'})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
