"""The losses in large digits, where the screen has room for them (the wide layout).

The batch loss (the micro-batch the last forward or backward used: the last point of
the loss curve), the train loss (the whole training set at the current parameters) and,
when the preset has a validation split, the val loss - each under its name, so the room
sees the number that training drives down. The same digits as the status line
(``.4g``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text
from textual.renderables.digits import Digits
from textual.widget import Widget

if TYPE_CHECKING:
    from playground.training.snapshot import Snapshot


def losses(s: Snapshot) -> tuple[tuple[str, str], ...]:
    """(name, value as shown) for each loss the snapshot has; "—" for none yet."""
    out = [("batch loss", "—" if s.batch_loss is None else f"{s.batch_loss:.4g}")]
    if s.train_loss is not None:
        out.append(("train loss", f"{s.train_loss:.4g}"))
    if s.val_loss is not None:
        out.append(("val loss", f"{s.val_loss:.4g}"))
    return tuple(out)


GAP = 4  # cells between two losses


class BigLosses(Widget):
    """One column per loss: its name, its value in three-line digits (one row per loss
    where the columns do not fit)."""

    DEFAULT_CSS = """
    BigLosses {
        height: auto;
        padding: 0 1;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.shown: tuple[tuple[str, str], ...] = ()

    def update_snapshot(self, snapshot: Snapshot) -> None:
        shown = losses(snapshot)
        if shown != self.shown:
            self.shown = shown
            self.refresh(layout=True)

    def render(self) -> RenderableType:
        if not self.shown:
            return Text("")
        colour = self.app.theme_variables.get("primary", "")
        cells = [
            Text(value, style="bold") if value == "—" else Digits(value.upper(), f"bold {colour}")
            for _, value in self.shown
        ]
        across = sum(max(len(n), Digits.get_width(v.upper())) + GAP for n, v in self.shown)
        if across <= self.content_region.width:  # side by side, each under its name
            table = Table(box=None, padding=(0, GAP, 0, 0), show_edge=False, header_style="bold")
            for name, _ in self.shown:
                table.add_column(name, no_wrap=True)
            table.add_row(*cells)
            return table
        table = Table(box=None, padding=(0, GAP, 0, 0), show_edge=False, show_header=False)
        table.add_column(no_wrap=True, vertical="middle")
        table.add_column(no_wrap=True)
        for (name, _), cell in zip(self.shown, cells, strict=True):  # one above the other
            table.add_row(Text(name, style="bold"), cell)
        return table
