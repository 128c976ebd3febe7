"""The autosave's sidecar: a small JSON file next to it with what the resume offer shows.

The offer appears at start-up, before torch has loaded (loading a session needs torch),
so the runner writes the preset, title, step and time next to the ``.npz`` when it saves
the autosave, and the UI reads only this. Torch-free.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class AutosaveInfo:
    """The sidecar of an autosave: enough to offer resuming it without loading torch."""

    path: Path  # the .npz
    preset: str
    title: str
    step: int
    saved_at: str


def sidecar_path(path: Path) -> Path:
    return path.with_suffix(".json")


def read_sidecar(path: Path) -> AutosaveInfo | None:
    """The autosave's sidecar, or None when there is no usable autosave."""
    try:
        doc = json.loads(sidecar_path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(doc, dict) or not path.is_file():
        return None
    preset, title, step = doc.get("preset"), doc.get("title"), doc.get("step")
    if not isinstance(preset, str) or not isinstance(step, int) or isinstance(step, bool):
        return None
    saved_at = doc.get("saved_at", "")
    return AutosaveInfo(
        path,
        preset,
        title if isinstance(title, str) else preset,
        step,
        saved_at if isinstance(saved_at, str) else "",
    )


def write_sidecar(written: Path, preset: str, title: str, step: int) -> Path:
    """Write the sidecar of the session file ``written`` (replaced atomically)."""
    doc = {
        "preset": preset,
        "title": title,
        "step": int(step),
        "saved_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    target = sidecar_path(written)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
