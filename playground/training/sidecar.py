"""The autosaves' sidecars: a small JSON file next to each with what the resume offer shows.

The offer appears at start-up, before torch has loaded (loading a session needs torch),
so the runner writes the preset, title, step and time next to the ``.npz`` when it saves
an autosave, and the UI reads only this. A sidecar is read like every file the
playground reads (a regular file, bounded in size and depth, ``playground.files``) and its
texts are made safe for a terminal; one that cannot be read only means its autosave is
not offered - it never stops a start. Torch-free.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from playground.files import FileError, JSONRefused, held, read_json, write_atomic
from playground.paths import autosave_files
from playground.text import clean

MAX_SIDECAR_BYTES = 64 * 2**10
OFFERED = 9  # autosaves the resume offer lists (keys 1-9)


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
        doc = read_json(sidecar_path(path), MAX_SIDECAR_BYTES, "sidecar")
    except (FileError, JSONRefused, OSError):
        return None
    if not isinstance(doc, dict) or not path.is_file():
        return None
    preset, title, step = doc.get("preset"), doc.get("title"), doc.get("step")
    if not isinstance(preset, str) or type(step) is not int or not 0 <= step < 2**62:
        return None
    saved_at = doc.get("saved_at", "")
    return AutosaveInfo(
        path,
        clean(preset, limit=100),
        clean(title if isinstance(title, str) else preset, limit=200),
        step,
        clean(saved_at, limit=40) if isinstance(saved_at, str) else "",
    )


def resume_list(current: Path) -> list[AutosaveInfo]:
    """The autosaves to offer at start-up, the newest first: ``current`` (this app's own
    autosave file) and, when it is one of the state directory's, the others there that
    no running instance holds."""
    found = [current]
    if current.name.startswith("autosave"):
        found += [p for p in autosave_files(current.parent) if p != current and not held(p)]
    infos = [i for i in map(read_sidecar, found) if i is not None]
    infos.sort(key=lambda i: (i.saved_at, _mtime(i.path)), reverse=True)
    return infos[:OFFERED]


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def write_sidecar(written: Path, preset: str, title: str, step: int) -> Path:
    """Write the sidecar of the session file ``written`` (replaced atomically)."""
    doc = {
        "preset": preset,
        "title": title,
        "step": int(step),
        "saved_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    return write_atomic(sidecar_path(written), json.dumps(doc))
