"""Model & hyper-parameters: a small form whose changes go to the runner as ``Configure``.

Every value is checked here first (a number? does ``TrainConfig.problem()`` accept it?);
a bad one shows its error next to the field and is never sent, so the value in force stays.
The runner checks again (e.g. a batch larger than the data set, a device that is not
there) and its ``Failed`` event lands on the same field through ``show_failure``.
The form shows the values in force from each snapshot, except in the field being edited.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual import on
from textual.app import ComposeResult
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


def parse(field: Field, text: str) -> tuple[Any, str | None]:
    """The typed value of ``text`` for ``field``, or an error message."""
    try:
        return parse_setting(field.name, text), None
    except ValueError as exc:
        return None, str(exc)


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
            yield Label(f.label, classes="field-label")
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
                widget.value = f"{value:g}" if isinstance(value, float) else str(value)
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
                widget.value = f"{value:g}" if isinstance(value, float) else str(value)
            self.clear_error(name)

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
        self._apply_input(event.input)

    def _apply_input(self, widget: Input) -> None:
        name = (widget.id or "").removeprefix("set-")
        field = next(f for f in FIELDS if f.name == name)
        value, error = parse(field, widget.value)
        if error:
            self.show_error(name, error)
            return
        self.clear_error(name)
        if value != self._shown.get(name):
            self.post_message(self.Changed({name: value}))

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
