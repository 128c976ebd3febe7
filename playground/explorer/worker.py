"""The autograd explorer's worker thread: the one place the explorer screen's tensors live.

``ExplorerWorker`` owns the current ``GradExplorer`` (live tensors and their graph). The
screen submits the commands of ``playground.explorer.protocol``; the worker applies them in
order and answers each with exactly one frozen, tensor-free event through ``publish``. A
command that fails (a bad expression, a bad preset, any engine error) is answered with
``ExplorerFailed`` and the thread carries on with the graph it had.

Importing this module imports neither torch nor sympy: ``playground.explorer.graph`` is
imported in ``setup``, on the worker's own thread, so building the app and opening the
screen never wait for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from playground.explorer.presets import (
    ExpressionPresetError,
    find_expression_preset,
    load_expression_presets,
)
from playground.explorer.protocol import (
    Explore,
    ExplorerAct,
    ExplorerCommand,
    ExplorerEvent,
    ExplorerFailed,
    ExpressionPresets,
    GraphShown,
    ListExpressionPresets,
    LoadExpressionPreset,
    SetRetainGraph,
)
from playground.explorer.tree import ExpressionError
from playground.explorer.values import InputValues, parse_values
from playground.explorer.views import GraphView
from playground.threads import CommandThread

if TYPE_CHECKING:
    from playground.explorer.graph import GradExplorer

NO_GRAPH = "enter an expression and values first (Enter)"


class ExplorerWorker(CommandThread):
    """Commands in, one event per command out; holds at most one ``GradExplorer``."""

    name = "playground-explorer"

    def __init__(self, publish: Callable[[ExplorerEvent], None]) -> None:
        super().__init__(publish)
        self._explorer: GradExplorer | None = None  # the current graph; only this thread uses it
        self._engine: type[GradExplorer] | None = None
        self._import_error: str | None = None

    # --- the thread ---------------------------------------------------------------------

    def setup(self) -> None:
        """Load torch and sympy now, on this thread, so the first Enter does not wait."""
        try:
            import sympy  # noqa: F401 - the first check would otherwise pay for it

            from playground.explorer.graph import GradExplorer
        except Exception as exc:  # noqa: BLE001 - a broken install is told, per command
            self._import_error = f"error: the autograd explorer cannot start: {_describe(exc)}"
            return
        self._engine = GradExplorer

    def apply(self, command: Any) -> None:
        try:
            event = self._answer(command)
        except ExpressionError as exc:  # from the expression; the values are parsed apart
            event = ExplorerFailed(command, "expression", str(exc), exc.pointer())
        except ExpressionPresetError as exc:
            event = ExplorerFailed(command, None, f"error: {exc}")
        except Exception as exc:  # noqa: BLE001 - any engine failure is told, never fatal
            event = ExplorerFailed(command, None, f"error: {_describe(exc)}")
        self.publish(event)

    # --- the commands -------------------------------------------------------------------

    def _answer(self, command: ExplorerCommand) -> ExplorerEvent:
        if isinstance(command, ListExpressionPresets):
            return ExpressionPresets(command, load_expression_presets())
        if self._import_error is not None:
            return ExplorerFailed(command, None, self._import_error)
        if isinstance(command, Explore):
            return self._explore(command)
        if isinstance(command, LoadExpressionPreset):
            preset = find_expression_preset(command.name)
            view = self._build(preset.expression, preset.values, command.retain_graph)
            return GraphShown(command, view, f"{preset.title}: {preset.description}", preset)
        if self._explorer is None:
            return ExplorerFailed(command, None, NO_GRAPH)
        if isinstance(command, SetRetainGraph):
            return GraphShown(command, self._explorer.set_retain_graph(command.on))
        if isinstance(command, ExplorerAct):
            return GraphShown(command, self._act(self._explorer, command))
        raise TypeError(f"not an explorer command: {command!r}")

    def _explore(self, command: Explore) -> ExplorerEvent:
        try:
            values = parse_values(command.values)
        except ExpressionError as exc:
            return ExplorerFailed(command, "values", str(exc), exc.pointer())
        return GraphShown(command, self._build(command.expression, values, command.retain_graph))

    def _build(self, expression: str, values: InputValues, retain_graph: bool) -> GraphView:
        """A fresh graph with one backward done (what Enter does); replaces the current one
        only once it is built, so a failure leaves the old graph in place."""
        assert self._engine is not None  # set by setup, or _import_error is
        explorer = self._engine(expression, values, retain_graph=retain_graph)
        view = explorer.backward()
        self._explorer = explorer
        return view

    @staticmethod
    def _act(explorer: GradExplorer, command: ExplorerAct) -> GraphView:
        if command.name == "step_backward":
            # the worker, not the screen, decides "after the last node": the screen's view
            # may be a few commands old when keys are pressed quickly
            if explorer.step_backward() is None:
                explorer.reset_steps()
                explorer.step_backward()
            return explorer.view()
        actions: dict[str, Callable[[], GraphView]] = {
            "backward": explorer.backward,
            "reset_steps": explorer.reset_steps,
            "zero_grad": explorer.zero_grad,
            "forward": explorer.forward,
        }
        return actions[command.name]()


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
