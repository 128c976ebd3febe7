"""Session files from the TUI: default names, the autosave and its sidecar, the save call.

Saving and loading need torch (``playground.training.persist``), so the function that saves
is built here and run on the runner thread (a ``Call``, or ``Runner.stop(on_exit=...)``),
importing persist only there. The resume offer at start-up must not wait for torch, so
the autosave gets a small JSON sidecar (preset, title, step, time) that the UI reads.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Saved:
    """What a save did: the file written, or the reason it was not."""

    path: str
    error: str = ""


@dataclass(frozen=True)
class AutosaveInfo:
    """The sidecar of an autosave: enough to offer resuming it without loading torch."""

    path: Path  # the .npz
    preset: str
    title: str
    step: int
    saved_at: str


def file_stem(preset: str) -> str:
    """``playground_<preset>`` with anything but letters and digits as ``_``."""
    return "playground_" + "".join(c if c.isalnum() else "_" for c in preset)


def sidecar_path(path: Path) -> Path:
    return path.with_suffix(".json")


def read_autosave(path: Path) -> AutosaveInfo | None:
    """The autosave's sidecar, or None when there is no usable autosave."""
    try:
        doc = json.loads(sidecar_path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(doc, dict) or not path.is_file():
        return None
    preset, title, step = doc.get("preset"), doc.get("title"), doc.get("step")
    if not isinstance(preset, str) or not isinstance(step, int) or isinstance(step, bool):
        return None
    return AutosaveInfo(
        path,
        preset,
        title if isinstance(title, str) else preset,
        step,
        str(doc.get("saved_at", "")),
    )


def saver(path: Path, sidecar: bool = False) -> Callable[[Any], Saved]:
    """``fn(session)`` for the runner thread: save to ``path`` (its folder is created),
    and with ``sidecar`` write the autosave's JSON next to it. Errors come back in
    ``Saved.error`` rather than raising: a bad path is the user's to fix, not a crash."""

    def save(session: Any) -> Saved:
        from playground.training.persist import SessionFileError, save_session

        try:
            written = save_session(session, path)
            if sidecar:
                _write_sidecar(session, written)
        except (SessionFileError, OSError) as exc:
            return Saved(str(path), f"{type(exc).__name__}: {exc}")
        return Saved(str(written))

    return save


def _write_sidecar(session: Any, written: Path) -> None:
    doc = {
        "preset": session.preset.name,
        "title": session.preset.title,
        "step": int(session.step_count),
        "saved_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    target = sidecar_path(written)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(doc), encoding="utf-8")
    os.replace(tmp, target)
