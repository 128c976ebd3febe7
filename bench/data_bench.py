"""Data of 1e6 rows: reading a CSV file and building a session from it, against
``numpy.loadtxt`` of the same file plus one forward pass of the same model.

    python bench/data_bench.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

PRESET = """name = "big-line"
title = "A large CSV line"
description = "y = 3x + 2 with noise"
[data]
kind = "csv"
path = "big.csv"
x_columns = ["x"]
y_column = "y"
[model]
kind = "linear"
[train]
loss = "mse"
optimizer = "sgd"
lr = 0.1
max_steps = 10
"""


def write_table(folder: Path, rows: int) -> Path:
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, rows)
    y = 3 * x + 2 + rng.normal(0, 1.3, rows)
    path = folder / "big.csv"
    with path.open("w") as fh:
        fh.write("x,y\n")
        np.savetxt(fh, np.column_stack([x, y]), delimiter=",", fmt="%.9g")
    (folder / "big.toml").write_text(PRESET)
    return path


def peer_seconds(path: Path) -> float:
    """numpy.loadtxt of the file, then one forward pass of nn.Linear(1, 1) over it."""
    t = time.perf_counter()
    table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float32)
    x = torch.from_numpy(table[:, :1].copy())
    with torch.no_grad():
        torch.nn.Linear(1, 1)(x)
    return time.perf_counter() - t


def ours_seconds(folder: Path) -> tuple[float, float]:
    """The preset read (its CSV included) and the session built: (read, total)."""
    from playground.training import data
    from playground.training.presets import load_preset
    from playground.training.session import Session

    data._last_csv = None  # a cold read each time
    t = time.perf_counter()
    preset = load_preset(folder / "big.toml")
    session = Session(preset, device="cpu")
    session.snapshot()  # what the first frame needs
    total = time.perf_counter() - t
    data._last_csv = None
    t = time.perf_counter()
    data.read_csv(folder / "big.csv", ["x"], "y")
    return time.perf_counter() - t, total


def measure(rows: int, repeats: int = 3) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = write_table(folder, rows)
        peer, read, total = [], [], []
        for _ in range(repeats):
            peer.append(peer_seconds(path))
            r, t = ours_seconds(folder)
            read.append(r)
            total.append(t)
    p, r, t = (statistics.median(v) for v in (peer, read, total))
    return {"peer_s": p, "read_s": r, "total_s": t, "ratio": t / p}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    r = measure(args.rows, args.repeats)
    print(
        f"{args.rows:.0e} rows: read + session build {r['total_s']:.2f} s (the CSV read "
        f"{r['read_s']:.2f} s) vs numpy.loadtxt + one forward {r['peer_s']:.2f} s "
        f"= {r['ratio']:.2f}x (target <= 1.5x)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
