"""A device asked for (``--device cuda``) that this machine does not have.

The runner's ``Ready`` event lists the devices torch found. When the one asked for is not
among them, every preset fails to load the same way; the app offers the CPU instead (one
key, ``c``) and loads every later preset there too.
"""

from __future__ import annotations

FALLBACK_DEVICE = "cpu"


def device_unavailable(requested: str | None, devices: tuple[str, ...]) -> bool:
    """``requested`` ("cuda", "cuda:1", "mps", "tpu" ...) is not one of ``devices``; "auto"
    and the CPU are always there."""
    name = (requested or "auto").strip().lower()
    return name not in ("auto", "cpu", "cpu:0") and name not in devices
