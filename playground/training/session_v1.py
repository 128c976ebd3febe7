"""Version 1 session files, in today's shape (read, converted on the way in).

Version 1 kept the counters and the status as lists and the validation indices as a
list; its transcript was code, which is never loaded (``session_reader.read_entries``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from playground.training.session_reader import LIVE_SETTINGS, Reader, columns, is_count


def from_version_1(r: Reader, doc: dict[str, Any]) -> dict[str, Any]:
    """A version 1 document in today's shape: counters and status lists become the
    progress, the validation index list becomes the ``val/tag`` array."""

    def state(level: Any, lengths: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(level, dict):
            raise r.error("undo level malformed")
        counters = r.field(level, "counters", list)
        if len(counters) != 4:
            raise r.error("counters must be four non-negative integers")
        step, cursor, samples, backwards = counters
        hyper = level.get("hyper", doc.get("config", {}))
        return {
            **level,
            "progress": {
                "step": step,
                "cursor": cursor,
                "samples_trained": samples,
                "samples_pending": 0,
                "backward_total": backwards,
                "epochs_done": 0,
                "epoch_mark": 0,
                "last_batch": None,
            },
            "live": {
                k: v
                for k, v in (hyper if isinstance(hyper, dict) else {}).items()
                if k in LIVE_SETTINGS
            },
            "lengths": lengths,
            "transcript": "version 1",  # its code is never loaded (see _read_entries)
            "label": "an earlier step",
        }

    val_index = r.field(doc, "val_index", list)
    if not all(is_count(i) for i in val_index):
        raise r.error("val_index must be a list of non-negative integers")
    r.arrays["val/tag"] = np.asarray(val_index, dtype=np.int64)
    r.arrays.pop("val/kind", None)
    for column in columns("val_acc"):  # version 1 had no accuracy curve
        r.arrays[column] = np.zeros(0, dtype=np.float32 if column.endswith("loss") else np.int64)

    def lengths(found: Any) -> dict[str, Any]:
        n = found if isinstance(found, list) and len(found) >= 2 else [None, None]
        return {"batch": n[0], "val": n[1], "val_acc": 0}

    n = [len(r.arrays.get("history/loss", ())), len(val_index)]
    levels = [
        state(level, lengths(level.get("lengths") if isinstance(level, dict) else None))
        for level in r.field(doc, "undo", list)
    ]
    return {**state(doc, lengths(n)), "undo": levels}
