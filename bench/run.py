"""Run every benchmark, print one table and write it to bench/RESULTS.md.

    python bench/run.py            # full counts (several minutes)
    python bench/run.py --quick    # small counts, for CI: checks the script still runs

Numbers, not pass/fail: the "met" column compares each number with its target, and the
exit code is 0 whatever the numbers are. Ratios are measured side by side in one run so
machine noise cancels.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import data_bench  # noqa: E402
import engine_bench  # noqa: E402
import pty_bench  # noqa: E402
import torch  # noqa: E402


def _memory_subprocess(preset: str, steps: int) -> dict[str, float]:
    """Memory is measured in a fresh process so other benchmarks don't set its peak."""
    code = (
        f"import json, sys; sys.path.insert(0, {str(HERE)!r}); import ui_bench; "
        f"print(json.dumps(ui_bench.run(ui_bench.memory_after({preset!r}, {steps:d}))))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _threads_of_a_new_thread() -> int:
    """torch's intra-op thread count as a thread started now sees it: the runner's
    setting (set on its own thread; the main thread keeps the count it started with)."""
    import threading

    seen: list[int] = []
    t = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    t.start()
    t.join()
    return seen[0]


def _cpu_name() -> str:
    """The processor's model name where the system says it (Linux), else the platform's."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small counts (CI)")
    ap.add_argument("--out", default=str(HERE / "RESULTS.md"))
    args = ap.parse_args()
    q = args.quick
    os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")
    import ui_bench

    rows: list[tuple[str, str, str, str, str]] = []

    def add(num: str, measure: str, value: str, target: str, met: bool | None) -> None:
        mark = "-" if met is None else ("yes" if met else "no")
        rows.append((num, measure, value, target, mark))
        print(f"{num:>3}  {measure:<58} {value:<40} {target:<28} {mark}", flush=True)

    print(f"{'#':>3}  {'measure':<58} {'value':<40} {'target':<28} met")
    default_threads = torch.get_num_threads()  # before the app's runner changes it

    # 1. first frame vs import torch
    t_import = pty_bench.import_torch_seconds(1 if q else 3)
    t_frame = pty_bench.first_frame_seconds("noisy-line", 1 if q else 3)
    ratio = t_frame / t_import
    add(
        "1",
        "first painted frame vs `python -c 'import torch'`",
        f"{t_frame:.2f} s vs {t_import:.2f} s = {ratio:.2f}x",
        "<= 0.35x",
        ratio <= 0.35,
    )

    # 2. key -> screen, measured at the terminal: the frame decoded from the pty
    presses = 15 if q else 100
    latency: dict[tuple[str, int], dict[str, float]] = {}
    for cols, rows_ in ((120, 40), (80, 24)):
        for key, label in (("n", "train step"), ("b", "backward"), ("z", "zero_grad")):
            lat = pty_bench.key_to_screen("noisy-line", key, presses, cols, rows_)
            latency[key, cols] = lat
            add(
                "2",
                f"`{key}` ({label}) -> frame at the terminal, {cols}x{rows_} (p50 / p95)",
                f"{lat['p50']:.1f} / {lat['p95']:.1f} ms",
                "p95 <= 50 ms",
                lat["p95"] <= 50,
            )

    # 3. run-mode throughput, app attached vs the bare loop. The bare loop is the
    # course's script as a student runs it: torch's default thread count, the default
    # optimizer, validation each epoch where the preset has a validation set. The app's
    # runner sets its own thread count (one core left to the UI), which threads started
    # later inherit, so the default is set again before every bare or headless measure.
    def headless(preset: str) -> dict[str, float]:
        torch.set_num_threads(default_threads)
        return engine_bench.compare(preset, "cpu", 200 if q else 2000, 2 if q else 5)

    for preset in ("noisy-line", "xor", "spiral"):
        before = headless(preset)
        stats: dict[str, float] = {}
        app_rate = ui_bench.run(ui_bench.app_throughput(preset, 1.0 if q else 5.0, stats))
        runner_threads = _threads_of_a_new_thread()  # what the runner set
        r = headless(preset)  # after the app: the headless row's numbers too
        bare = (before["bare"] + r["bare"]) / 2
        add(
            "3",
            f"run mode with the app vs bare loop ({preset}, CPU)",
            f"{app_rate:.0f} vs {bare:.0f} steps/s = {app_rate / bare:.2f}x",
            ">= 0.95x",
            app_rate / bare >= 0.95,
        )
        add(
            "3",
            f"  UI thread CPU while running ({preset}; snapshots/s; runner's torch threads)",
            f"{stats['ui_cpu']:.1%} of a core ({stats['snapshots']:.0f}/s; {runner_threads})",
            "-",
            None,
        )
        add(
            "3",
            f"  headless Session.run vs bare loop ({preset}, CPU)",
            f"{r['session']:.0f} vs {r['bare']:.0f} steps/s = {r['ratio']:.2f}x",
            "-",
            None,
        )

    # 4. loss plot render time
    from playground.training.presets import find_preset
    from playground.training.session import Session

    base = Session(find_preset("noisy-line"), device="cpu").snapshot()
    sizes = (1000, 100_000, 1_000_000)
    ms = ui_bench.run(ui_bench.plot_render_ms(base, sizes, 3 if q else 7))
    add(
        "4",
        "loss plot render at 120x40: 1e3 / 1e5 / 1e6 points",
        f"{ms[1000]:.1f} / {ms[100_000]:.1f} / {ms[1_000_000]:.1f} ms",
        "1e6 <= 1.5x the 1e3 time",
        ms[1_000_000] <= 1.5 * ms[1000],
    )

    # 5. bytes to the terminal while running
    for fps in (None, 5.0):
        bps, _ = pty_bench.bytes_per_second("noisy-line", 2.0 if q else 8.0, fps)
        label = "default refresh" if fps is None else f"--fps {fps:g}"
        add(
            "5",
            f"bytes/s to the terminal while running, 120x40 ({label})",
            f"{bps / 1024:.1f} KB/s",
            "<= 50 KB/s",
            bps <= 50 * 1024,
        )

    # 4b. a CSV of 1e6 rows: read + session build vs numpy.loadtxt + one forward
    n_rows = 20_000 if q else 1_000_000
    d = data_bench.measure(n_rows, 1 if q else 3)
    add(
        "4",
        f"CSV of {n_rows:.0e} rows: read + session build vs loadtxt + one forward",
        f"{d['total_s']:.2f} s vs {d['peer_s']:.2f} s = {d['ratio']:.2f}x",
        "<= 1.5x",
        d["ratio"] <= 1.5,
    )

    # 4c. the fit plot of those rows: drawn from an even sample, so the first frame and a
    # key's frame cost what they cost for a small data set (z: no pass over the rows but
    # the snapshot's; n and b train on the whole batch of 1e6 rows, which is their cost)
    with tempfile.TemporaryDirectory() as tmp:
        data_bench.write_table(Path(tmp), n_rows)
        big = str(Path(tmp) / "big.toml")
        t_big = pty_bench.first_frame_seconds(big, 1 if q else 3)
        add(
            "4",
            f"first painted frame, CSV of {n_rows:.0e} rows vs noisy-line (item 1)",
            f"{t_big:.2f} s vs {t_frame:.2f} s = {t_big / t_frame:.2f}x",
            "unchanged (<= 1.1x)",
            t_big <= 1.1 * t_frame,
        )
        lat = pty_bench.key_to_screen(big, "z", presses)
        small = latency["z", 120]
        add(
            "4",
            f"`z` -> frame at the terminal, 120x40, CSV of {n_rows:.0e} rows (p50 / p95)",
            f"{lat['p50']:.1f} / {lat['p95']:.1f} ms (noisy-line {small['p50']:.1f} / "
            f"{small['p95']:.1f} ms)",
            "p95 <= 50 ms",
            lat["p95"] <= 50,
        )

    # 6. memory after a long run
    steps = 20_000 if q else 1_000_000
    mem = _memory_subprocess("noisy-line", steps)
    add(
        "6",
        f"peak RSS after {steps:.0e} steps vs RSS after start",
        f"{mem['peak_mib']:.0f} vs {mem['start_mib']:.0f} MiB = {mem['ratio']:.2f}x",
        "<= 1.2x",
        mem["ratio"] <= 1.2,
    )

    # 7. GPU
    if torch.cuda.is_available():
        for preset in ("noisy-line", "xor"):
            r = engine_bench.compare(preset, "cuda", 500 if q else 3000, 2 if q else 5)
            add(
                "7",
                f"CUDA run mode vs bare CUDA loop ({preset})",
                f"{r['session']:.0f} vs {r['bare']:.0f} steps/s = {r['ratio']:.2f}x",
                ">= 0.9x",
                r["ratio"] >= 0.9,
            )
    else:
        add("7", "CUDA run mode vs bare CUDA loop", "no CUDA device here", ">= 0.9x", None)

    machine = (
        f"{_cpu_name()} ({platform.machine()}), {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"torch {torch.__version__}, {default_threads} torch threads by default"
    )
    lines = [
        "# Benchmark results",
        "",
        f"`python bench/run.py{' --quick' if q else ''}` on {datetime.date.today()}: {machine}.",
        "",
        "| # | measure | value | target | met |",
        "|---|---|---|---|---|",
        *[f"| {' | '.join(r)} |" for r in rows],
        "",
    ]
    if not q:
        Path(args.out).write_text("\n".join(lines), encoding="utf-8")
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
