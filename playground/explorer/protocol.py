"""What the autograd explorer screen and its worker thread say to each other.

The screen ``submit``s commands to the ``ExplorerWorker``; the worker answers each command
with exactly one event through its ``publish`` callback, and the event names the command it
answers. Everything here is a frozen dataclass of plain data (``GraphView`` is already
tensor-free), so nothing that crosses the thread boundary can be changed by the side that
did not make it.

Torch-free, sympy-free and textual-free: the UI imports this module, the worker imports
torch on its own thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from playground.explorer.presets import ExpressionPreset
from playground.explorer.views import GraphView

ExplorerActionName = Literal["backward", "step_backward", "reset_steps", "zero_grad", "forward"]
EXPLORER_ACTIONS: tuple[ExplorerActionName, ...] = ExplorerActionName.__args__  # type: ignore[attr-defined]


# --- commands (screen -> worker) ----------------------------------------------------------


@dataclass(frozen=True)
class ExplorerCommand:
    """Base class of everything the screen can ask the explorer's worker for."""


@dataclass(frozen=True)
class Explore(ExplorerCommand):
    """Build a fresh graph of ``expression`` at ``values`` and run one backward (Enter).

    ``values`` is the text as typed (``x=1 y=2 requires_grad=x``): the worker parses it, so
    the command is complete on its own even when the screen has not validated it.
    """

    expression: str
    values: str
    retain_graph: bool = False


@dataclass(frozen=True)
class ExplorerAct(ExplorerCommand):
    """One action on the current graph.

    ``backward`` is ``out.backward(retain_graph=...)`` (the .grads ADD); ``step_backward``
    walks the chain rule one node further and starts over after the last node;
    ``reset_steps`` forgets the walk; ``zero_grad`` zeroes every .grad; ``forward`` builds a
    new graph from the same leaves (their .grad is kept).
    """

    name: ExplorerActionName


@dataclass(frozen=True)
class SetRetainGraph(ExplorerCommand):
    """``retain_graph`` for the next backward (the screen remembers it for new graphs too)."""

    on: bool


@dataclass(frozen=True)
class LoadExpressionPreset(ExplorerCommand):
    """Build the graph of the preset called ``name`` (presets/expressions.toml)."""

    name: str
    retain_graph: bool = False


@dataclass(frozen=True)
class ListExpressionPresets(ExplorerCommand):
    """Every expression preset, for the picker (``p``)."""


# --- events (worker -> screen) ------------------------------------------------------------


@dataclass(frozen=True)
class ExplorerEvent:
    """Base class of the worker's answers; ``command`` is the command answered."""

    command: ExplorerCommand


@dataclass(frozen=True)
class GraphShown(ExplorerEvent):
    """The graph after ``command``: what the screen draws.

    ``note`` replaces the view's own note and warnings in the message line (a preset's
    "title: description"); ``preset`` is set when the graph comes from a preset, so the
    screen can fill its two inputs with the preset's expression and values.
    """

    view: GraphView
    note: str | None = None
    preset: ExpressionPreset | None = None


@dataclass(frozen=True)
class ExpressionPresets(ExplorerEvent):
    """The expression presets, in file order."""

    presets: tuple[ExpressionPreset, ...]


@dataclass(frozen=True)
class ExplorerFailed(ExplorerEvent):
    """``command`` could not be done; the current graph (if any) is unchanged.

    ``field`` is the input at fault ("expression" or "values", with ``pointer``: the line
    and a caret under the column) or None for anything else (an engine error, a bad preset,
    no graph yet), where ``message`` is the whole text to show.
    """

    field: Literal["expression", "values"] | None
    message: str
    pointer: str = ""

    @property
    def text(self) -> str:
        """The message line as the screen shows it."""
        if self.field is None:
            return self.message
        return f"{self.field}: {self.message}\n{self.pointer}"


# --- the worker, as the screen sees it -----------------------------------------------------


class ExplorerHandle(Protocol):
    """What the screen needs of its worker (``playground.explorer.worker.ExplorerWorker``)."""

    def start(self) -> None: ...

    def submit(self, command: ExplorerCommand) -> None: ...

    def stop(self, timeout: float | None = 5.0) -> bool: ...


ExplorerFactory = Callable[[Callable[[ExplorerEvent], None]], ExplorerHandle]
"""``factory(publish)``: how the screen gets its worker; ``publish`` is called on the
worker's thread with each event."""
