"""The preset picker (``p``): every exercise with its title and description, filtered by typing.

It reads only the presets' TOML headers (``preset_infos``), so it opens instantly even
while torch is still loading. Dismisses with the chosen preset's name, or None. A line
under the list says which keys do what, and a filter that matches nothing says so
(the list alone would just be empty).
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from playground.training.catalog import PresetError, PresetInfo, preset_infos


def _prompt(info: PresetInfo) -> Content:
    description = " ".join(info.description.split())
    if len(description) > 160:
        description = description[:157] + "..."
    lines = [Content.assemble((info.title, "bold"), (f"  [{info.name}]", "$text-muted"))]
    if description:
        lines.append(Content.styled(description, "$text-muted"))
    return Content("\n").join(lines)


KEYS = "type to filter · ↑ ↓ choose · Enter loads · Esc cancels"


def matches(info: PresetInfo, query: str) -> bool:
    """Every word of the query occurs in the name, title or description."""
    haystack = f"{info.name} {info.title} {info.description}".lower()
    return all(word in haystack for word in query.lower().split())


class PresetPicker(ModalScreen[str | None]):
    """Choose a preset: type to filter, up/down to move, Enter to load, Escape to cancel."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("down", "move(1)", "Down", show=False),
        Binding("up", "move(-1)", "Up", show=False),
    ]

    def __init__(self, current: str | None = None) -> None:
        super().__init__()
        self.current = current
        infos, errors = preset_infos()
        self.infos: list[PresetInfo] = infos
        self.errors: list[PresetError] = errors

    def compose(self) -> ComposeResult:
        with Vertical(id="picker"):
            yield Label("Load a preset (loading one starts a fresh session)", id="picker-title")
            yield Input(placeholder="type to filter", id="picker-filter", compact=True)
            yield OptionList(id="picker-list")
            yield Label("", id="picker-none", markup=False)
            yield Label(KEYS, id="picker-keys", markup=False)
            if self.errors:
                yield Label(
                    "\n".join(f"skipped {e}" for e in self.errors), id="picker-errors", markup=False
                )

    def on_mount(self) -> None:
        self._fill("")
        self.query_one("#picker-filter", Input).focus()

    def _fill(self, query: str) -> None:
        options = self.query_one("#picker-list", OptionList)
        options.clear_options()
        shown = [i for i in self.infos if matches(i, query)]
        options.add_options(Option(_prompt(i), id=i.name) for i in shown)
        names = [i.name for i in shown]
        if names:
            options.highlighted = names.index(self.current) if self.current in names else 0
        none = self.query_one("#picker-none", Label)
        none.display = not names
        none.update(f"no preset matches {query.strip()!r} - Backspace widens the filter")

    @on(Input.Changed, "#picker-filter")
    def _filter(self, event: Input.Changed) -> None:
        self._fill(event.value)

    @on(Input.Submitted, "#picker-filter")
    def _submit(self, event: Input.Submitted) -> None:
        options = self.query_one("#picker-list", OptionList)
        if options.highlighted is not None:
            self.dismiss(options.get_option_at_index(options.highlighted).id)

    @on(OptionList.OptionSelected, "#picker-list")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_move(self, delta: int) -> None:
        options = self.query_one("#picker-list", OptionList)
        if options.option_count:
            current = options.highlighted if options.highlighted is not None else -delta
            options.highlighted = (current + delta) % options.option_count

    def action_cancel(self) -> None:
        self.dismiss(None)
