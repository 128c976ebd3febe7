"""Choosing the torch device: auto picks cuda, then mps, then cpu."""

from __future__ import annotations

import torch


class DeviceError(ValueError):
    """The requested device is not there (the message lists those that are)."""


def available_devices() -> list[str]:
    names = ["cpu"]
    if torch.cuda.is_available():
        names += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        names.append("mps")
    return names


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> cuda, else mps, else cpu; anything else must exist on this machine."""
    name = (name or "auto").strip().lower()
    available = available_devices()
    if name == "auto":
        for pick in ("cuda", "mps"):
            if pick in available:
                return torch.device(pick)
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise DeviceError(
            f"device {name!r} is not a device name; available: {', '.join(available)}"
        ) from exc
    if device.type == "cuda" and device.index is None:
        device = (
            torch.device("cuda", torch.cuda.current_device()) if "cuda" in available else device
        )
    canonical = f"{device.type}:{device.index}" if device.index is not None else device.type
    if canonical not in available and device.type not in ("cpu",):
        raise DeviceError(
            f"device {name!r} is not available here; available: {', '.join(available)}"
        )
    if device.type == "cpu" and device.index not in (None, 0):
        raise DeviceError(
            f"device {name!r} is not available here; available: {', '.join(available)}"
        )
    return device


def describe(device: torch.device) -> str:
    """'cpu', or 'cuda:0 NVIDIA H100 (80 GB)' - for the status bar and the CLI."""
    if device.type == "cuda":
        idx = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(idx)
        return f"cuda:{idx} {props.name} ({props.total_memory / 2**30:.0f} GiB)"
    return str(device)
