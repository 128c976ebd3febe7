"""Exports of a session: the code as a script or a notebook, the loss history as CSV.

The script and the notebook are the same cells (``Transcript.cells``): the script in the
``# %%`` percent format, the notebook built with nbformat and validated against its
schema before it is written. Both run on plain Python + torch and end on the session's
parameters. Every export goes through the one atomic writer (``playground.files``).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import IO

from playground.files import write_atomic
from playground.training.history import Recorder
from playground.training.snapshot import KIND_BACKWARD, KIND_FORWARD, KIND_TRAIN
from playground.training.transcript import Transcript

KIND_NAMES = {KIND_FORWARD: "forward", KIND_BACKWARD: "backward", KIND_TRAIN: "train"}


def _write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` (creating parent folders), replaced atomically."""
    return write_atomic(path, text)


def write_script(transcript: Transcript, path: str | Path, style: str = "plain") -> Path:
    """The session as a runnable .py file (percent-format cells)."""
    return _write_text(path, transcript.script(style))


def notebook_json(transcript: Transcript, style: str = "plain") -> str:
    """The session as a Jupyter notebook (nbformat 4, validated), as JSON text."""
    import nbformat
    from nbformat import v4

    nb = v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    for cell in transcript.cells(style):
        make = v4.new_markdown_cell if cell.kind == "markdown" else v4.new_code_cell
        nb.cells.append(make(cell.source))
    nbformat.validate(nb)
    return nbformat.writes(nb)


def write_notebook(transcript: Transcript, path: str | Path, style: str = "plain") -> Path:
    """The session as an .ipynb file: a markdown cell per action saying what it does, a
    code cell per action, a final cell printing the parameters."""
    return _write_text(path, notebook_json(transcript, style))


def write_loss_csv(history: Recorder, val_history: Recorder, path: str | Path) -> Path:
    """One row per batch loss: index, optimizer step, action kind, loss, and the
    validation loss measured after that step (empty where there is none)."""
    losses, steps, kinds = history.views()
    val_loss, _, val_index = val_history.views()
    val_at = dict(zip(val_index.tolist(), val_loss.tolist(), strict=True))

    def rows(raw: IO[bytes]) -> None:
        fh = io.TextIOWrapper(raw, encoding="utf-8", newline="", write_through=True)
        w = csv.writer(fh)
        w.writerow(["index", "step", "kind", "loss", "val_loss"])
        for i in range(len(losses)):
            val = val_at.get(i + 1, "")
            w.writerow(
                [
                    i,
                    int(steps[i]),
                    KIND_NAMES.get(int(kinds[i]), "?"),
                    repr(float(losses[i])),
                    repr(val) if val != "" else "",
                ]
            )
        fh.flush()
        fh.detach()  # the writer closes the file itself

    return write_atomic(path, rows)
