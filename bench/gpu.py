"""GPU-only checks (target 7): run-mode throughput on CUDA against the bare CUDA loop, and
that CPU and CUDA sessions agree. Needs no terminal libraries, so it runs on a bare GPU box:

    python bench/gpu.py [--steps N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import engine_bench  # noqa: E402
import torch  # noqa: E402

from playground.training.presets import find_preset  # noqa: E402
from playground.training.session import Session  # noqa: E402


def agreement(preset: str, steps: int) -> float:
    """Largest parameter difference between CPU and CUDA after ``steps`` train steps."""
    a = Session(find_preset(preset), device="cpu")
    b = Session(find_preset(preset), device="cuda")
    a.run(steps)
    b.run(steps)
    return max(
        float((p.detach() - q.detach().cpu()).abs().max())
        for p, q in zip(a.model.params.values(), b.model.params.values(), strict=True)
    )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3000)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device")
        return 0
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}")
    for preset in ("noisy-line", "xor", "spiral"):
        r = engine_bench.compare(preset, "cuda", args.steps)
        print(
            f"{preset:<12} session {r['session']:8.0f} steps/s  bare {r['bare']:8.0f} steps/s"
            f"  ratio {r['ratio']:.2f}"
        )
    for preset in ("noisy-line", "shallow-linear", "softmax", "xor"):
        print(f"{preset:<14} max |cpu - cuda| after 100 steps: {agreement(preset, 100):.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
