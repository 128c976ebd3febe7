"""Model & hyper-parameters: a small form whose changes go to the runner as ``Configure``.

Every value is checked here first (a finite number, an integer torch can hold, and what
``TrainConfig.problem()`` accepts); a bad one shows its error next to the field and is
never sent, so the value in force stays - and once the user leaves the field, it shows
that value again, not the rejected text. The runner checks again (e.g. a batch larger
than the data set, a device that is not there) and its ``Failed`` event lands on the
same field through ``show_failure``. The form shows the values in force from each
snapshot, except in the field being edited.

While a field has the focus the letter keys type into it instead of driving the session,
so the focused field is drawn unmistakably (and its label with it) and a hint says so
(``Hint``: the screen puts it on the panel's bottom border, always in sight); Escape
leaves the field, putting back the value in force.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid
from textual.message import Message
from textual.validation import ValidationResult, Validator
from textual.widgets import Input, Label, Select

from playground.training.config import KINDS, SETTINGS, USER_SETTINGS, parse_setting

if TYPE_CHECKING:
    from playground.training.snapshot import Snapshot


@dataclass(frozen=True)
class Field:
    name: str  # the TrainConfig field
    label: str
    kind: type  # float or int for inputs, str for selects


# the form's fields, from the settings' own declarations (config.SETTINGS)
FIELDS = tuple(Field(n, SETTINGS[n].label, KINDS[n]) for n in USER_SETTINGS)
# (label, value) of each dropdown: a setting's choices, or on / off for a yes-or-no one
CHOICES: dict[str, list[tuple[str, Any]]] = {
    n: [(c, c) for c in SETTINGS[n].choices]
    if SETTINGS[n].choices
    else [("on", True), ("off", False)]
    for n in USER_SETTINGS
    if SETTINGS[n].choices or KINDS[n] is bool
}


INT_LIMIT = 2**63  # torch and numpy hold integers in int64
IDLE_HINT = "Tab: edit a setting (Enter applies it)"


def parse(field: Field, text: str) -> tuple[Any, str | None]:
    """The typed value of ``text`` for ``field``, or an error message that names the
    text as typed (``'1e999' is not a finite number``, not ``inf must be ...``)."""
    shown = text.strip()
    try:
        if field.kind is float and not math.isfinite(float(shown)):
            return None, f"{shown!r} is not a finite number"
        if field.kind is int and abs(int(shown)) >= INT_LIMIT:
            return None, f"{shown!r} is too large (at most {INT_LIMIT - 1})"
    except ValueError:
        pass  # not a number at all: parse_setting says so
    try:
        return parse_setting(field.name, text), None
    except ValueError as exc:
        return None, str(exc)


def shown_text(value: Any) -> str:
    """A setting's value as its field shows it (layer sizes as "8, 8")."""
    if isinstance(value, tuple):
        return ", ".join(str(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


class FieldValidator(Validator):
    """Input validator built on ``parse`` (so the input turns red on a bad value)."""

    def __init__(self, field: Field) -> None:
        super().__init__()
        self.field = field

    def validate(self, value: str) -> ValidationResult:
        _, error = parse(self.field, value)
        return self.failure(error) if error else self.success()


def values_of(s: Snapshot) -> dict[str, Any]:
    """The settings in force, as the form shows them (the device as resolved: "cpu",
    not "auto"). Settings the optimizer does not use (momentum with Adam) keep their
    value: they are back in force when the optimizer is."""
    values = {f.name: getattr(s.config, f.name) for f in FIELDS}
    values["device"] = s.device.split()[0]
    return values


class Hyperparams(Grid):
    """The settings form."""

    BINDINGS = [Binding("escape", "leave", "leave the field", show=False)]

    class Left(Message):
        """The user left the form with Escape: the screen puts the focus elsewhere."""

    class Hint(Message):
        """What the keys do in the form now; ``editing``: a field has the focus."""

        def __init__(self, text: str, editing: bool) -> None:
            super().__init__()
            self.text = text
            self.editing = editing

    class Changed(Message):
        """The user set valid new values (field -> value); send them to the runner."""

        def __init__(self, changes: dict[str, Any]) -> None:
            super().__init__()
            self.changes = changes

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._shown: dict[str, Any] = {}
        self._devices: tuple[str, ...] = ("auto", "cpu")

    def compose(self) -> ComposeResult:
        for f in FIELDS:
            yield Label(f.label, id=f"label-{f.name}", classes="field-label")
            if f.name in CHOICES:
                yield Select(
                    CHOICES[f.name],
                    id=f"set-{f.name}",
                    allow_blank=True,
                    compact=True,
                    classes="field",
                )
            elif f.name == "device":
                yield Select(
                    [(d, d) for d in self._devices],
                    id="set-device",
                    allow_blank=True,
                    compact=True,
                    classes="field",
                )
            else:
                yield Input(
                    id=f"set-{f.name}",
                    compact=True,
                    classes="field",
                    validators=[FieldValidator(f)],
                    validate_on=["submitted"],
                    type="text",
                )
            yield Label("", id=f"err-{f.name}", classes="field-error", markup=False)

    def on_mount(self) -> None:
        self._show_focus()

    def set_devices(self, devices: tuple[str, ...]) -> None:
        """The devices this machine has (from the runner's Ready event)."""
        self._devices = ("auto", *devices)
        select = self.query_one("#set-device", Select)
        current = self._shown.get("device")
        with select.prevent(Select.Changed):
            select.set_options([(d, d) for d in self._devices])
            if current in self._devices:
                select.value = current

    def update_snapshot(self, snapshot: Snapshot) -> None:
        for name, value in values_of(snapshot).items():
            if self._shown.get(name) == value:
                continue
            self._shown[name] = value
            widget = self.query_one(f"#set-{name}")
            if isinstance(widget, Select):
                # showing the value in force is not a user's choice: no Changed message
                # (a queued one would arrive after the next snapshot and undo it)
                options = CHOICES.get(name, [(d, d) for d in self._devices])
                with widget.prevent(Select.Changed):
                    if value not in [v for _, v in options]:
                        widget.set_options([*options, (str(value), value)])
                    widget.value = value
            elif isinstance(widget, Input) and not widget.has_focus:
                self._put(widget, value)
            self.clear_error(name)

    def show_error(self, name: str, message: str) -> None:
        self.query_one(f"#err-{name}", Label).update(message)
        self.query_one(f"#set-{name}").add_class("-bad")

    def clear_error(self, name: str) -> None:
        self.query_one(f"#err-{name}", Label).update("")
        self.query_one(f"#set-{name}").remove_class("-bad")

    def show_in_force(self, names: tuple[str, ...]) -> None:
        """Put these fields back to the values in force (a change the user took back)."""
        for name in names:
            widget = self.query_one(f"#set-{name}")
            value = self._shown.get(name)
            if value is None:
                continue
            if isinstance(widget, Select):
                with widget.prevent(Select.Changed):
                    widget.value = value
            elif isinstance(widget, Input):
                self._put(widget, value)
            self.clear_error(name)

    @staticmethod
    def _put(widget: Input, value: Any) -> None:
        with widget.prevent(Input.Changed):
            widget.value = shown_text(value)

    def show_failure(self, message: str) -> str | None:
        """Put a runner error ('ValueError: lr: ...') next to its field; the field name."""
        text = message.partition(": ")[2] or message
        for f in FIELDS:
            if text.startswith(f"{f.name}:") or text.startswith(f"{f.name} "):
                widget = self.query_one(f"#set-{f.name}")
                if isinstance(widget, Select) and f.name in self._shown:
                    with widget.prevent(Select.Changed):
                        widget.value = self._shown[f.name]  # back to the value in force
                self.show_error(f.name, text.removeprefix(f"{f.name}:").strip())
                return f.name
        return None

    @on(Input.Submitted, ".field")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._apply_input(event.input)

    @on(Input.Blurred, ".field")
    def _blurred(self, event: Input.Blurred) -> None:
        self._apply_input(event.input, leaving=True)
        self._show_focus()

    def _apply_input(self, widget: Input, leaving: bool = False) -> None:
        """Send a valid new value; show why an invalid one is not taken. Leaving the field
        puts the value in force back in it, so the text never shows a value not in force."""
        name = (widget.id or "").removeprefix("set-")
        field = next(f for f in FIELDS if f.name == name)
        value, error = parse(field, widget.value)
        if error:
            if leaving and name in self._shown:
                error += f" - {field.label} stays {shown_text(self._shown[name])}"
                self._put(widget, self._shown[name])
            self.show_error(name, error)
            return
        self.clear_error(name)
        if value != self._shown.get(name):
            self.post_message(self.Changed({name: value}))

    # --- which field has the focus -----------------------------------------------------

    def on_descendant_focus(self) -> None:
        self._show_focus()

    def on_descendant_blur(self) -> None:
        self._show_focus()

    def _show_focus(self) -> None:
        """Mark the focused field's label, and say what the keys do now."""
        focused = self.screen.focused if self.is_mounted else None
        name = None
        if focused is not None and focused.has_class("field") and focused.parent is self:
            name = (focused.id or "").removeprefix("set-")
        for f in FIELDS:
            self.query_one(f"#label-{f.name}").set_class(f.name == name, "-editing")
        if name is None:
            hint = IDLE_HINT
        else:
            label = next(f.label for f in FIELDS if f.name == name)
            widget = self.query_one(f"#set-{name}")
            how = "type, Enter applies" if isinstance(widget, Input) else "Enter opens the list"
            hint = f"editing {label}: {how} · Esc leaves the field"
        self.set_class(name is not None, "-editing")
        self.post_message(self.Hint(hint, name is not None))

    def action_leave(self) -> None:
        """Escape: put back the value in force in the field being edited, and leave it."""
        focused = self.screen.focused
        if isinstance(focused, Input) and focused.has_class("field"):
            name = (focused.id or "").removeprefix("set-")
            if name in self._shown:
                self._put(focused, self._shown[name])
            self.clear_error(name)
        self.post_message(self.Left())

    @on(Select.Changed, ".field")
    def _selected(self, event: Select.Changed) -> None:
        event.stop()
        name = (event.select.id or "").removeprefix("set-")
        if event.select.is_blank():  # the empty entry is no choice: show the one in force
            self.show_in_force((name,))
            return
        if event.value == self._shown.get(name):
            return  # nothing new
        self.post_message(self.Changed({name: event.value}))
