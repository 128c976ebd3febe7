"""Session files from the TUI, driven with Pilot: ctrl+s saves, ctrl+o opens, quitting
autosaves (and the next start offers to resume), ctrl+e writes the loss history as CSV.

Every file goes under ``tmp_path``; the per-user state directory is ``XDG_STATE_HOME``
pointed there, so no test touches the real one.
"""

from __future__ import annotations

import csv
import json
import pickle
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from playground.paths import autosave_path
from playground.protocol import Act, Call
from playground.training.sidecar import read_sidecar
from playground.tui import make_app
from playground.ui.app import PlaygroundApp
from playground.ui.dialogs.path_prompt import PathPrompt
from playground.ui.dialogs.resume_offer import ResumeOffer
from tests.ui.helpers import wait_for, wait_seq

OVERRIDES = {"momentum": 0.9, "batch_size": 32}  # optimizer state and a data cursor to restore


@pytest.fixture(autouse=True)
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The per-user state directory lives in tmp_path; relative paths resolve there too."""
    home = tmp_path / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(home))
    monkeypatch.delenv("PLAYGROUND_NO_AUTOSAVE", raising=False)
    monkeypatch.chdir(tmp_path)
    return home


@asynccontextmanager
async def running(app: PlaygroundApp, size: tuple[int, int] = (80, 24)) -> AsyncIterator[Pilot]:
    """``app.run_test`` that lets the app settle before it is shut down: leaving while
    Textual still has a footer refresh pending from start-up fails in its shutdown
    ("No screens on stack"), and a resumed session can be on screen that early."""
    async with app.run_test(size=size) as pilot:
        yield pilot
        if not app._exit:
            await pilot.pause(0.1)
            await pilot.pause(0.1)


async def wait_screen(pilot: Pilot, kind: type, timeout: float = 10.0) -> Any:
    for _ in range(int(timeout / 0.05)):
        if isinstance(pilot.app.screen, kind):
            return pilot.app.screen
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {kind.__name__}; on {pilot.app.screen!r}")


async def wait_notice(pilot: Pilot, text: str, timeout: float = 30.0) -> str:
    app = pilot.app
    assert isinstance(app, PlaygroundApp)
    for _ in range(int(timeout / 0.05)):
        found = [n for n in app.notices if text in n]
        if found:
            return found[-1]
        await pilot.pause(0.05)
    raise AssertionError(f"no notice with {text!r}; notices: {app.notices}")


async def answer_prompt(pilot: Pilot, key: str, path: str | None) -> PathPrompt:
    """Press ``key`` (ctrl+s / ctrl+o), type ``path`` over the default, press Enter."""
    await pilot.press(key)
    prompt = await wait_screen(pilot, PathPrompt)
    if path is not None:
        prompt.query_one(Input).value = path
        await pilot.press("enter")
    return prompt


def engine_session(name: str, **overrides: Any) -> Any:
    from playground.training.presets import find_preset
    from playground.training.session import Session

    return Session(find_preset(name), device="cpu", **overrides)


def params_of(s: Any) -> dict[str, np.ndarray]:
    """Parameter values and grads of a Snapshot, by name."""
    out: dict[str, np.ndarray] = {}
    for p in s.params:
        out[p.name] = p.value
        out[f"{p.name}.grad"] = p.grad
    return out


async def test_ctrl_s_then_resume_continues_with_the_same_numbers(tmp_path: Path) -> None:
    """Save mid-accumulation with ctrl+s (into a folder that does not exist yet); a new
    app resumed from that file goes on to exactly the numbers of a session that never
    stopped: parameters, accumulated grads, momentum buffers and the batch cursor."""
    target = tmp_path / "new" / "folder" / "lesson.npz"
    app = make_app("noisy-line", device="cpu", overrides=OVERRIDES)
    async with running(app, (120, 40)) as pilot:
        await wait_seq(pilot, 1)
        await pilot.press("n", "n", "b")
        await wait_seq(pilot, 4)
        prompt = await answer_prompt(pilot, "ctrl+s", None)
        assert prompt.query_one(Input).value == "./playground_noisy_line.npz"
        prompt.query_one(Input).value = str(target)
        await pilot.press("enter")
        assert await wait_notice(pilot, "saved") == f"saved {target}"
        assert app.last_failure is None
    assert target.is_file()

    resumed = make_app(device="cpu", resume=str(target))
    async with running(resumed, (120, 40)) as pilot:
        s = await wait_for(pilot, lambda s: s.step == 2, what="the resumed session")
        assert s.param("weight").backwards_since_zero == 2  # the train step's backward, then b
        seq = resumed.seq
        await pilot.press("b", "s", "n")
        s = await wait_seq(pilot, seq + 3)
        assert resumed.last_failure is None

    oracle = engine_session("noisy-line", **OVERRIDES)
    for action in ("train_step", "train_step", "backward", "backward", "step", "train_step"):
        getattr(oracle, action)()
    expected = params_of(oracle.snapshot())
    got = params_of(s)
    assert s.step == oracle.step_count == 4
    for name, value in expected.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)
    np.testing.assert_array_equal(s.history.loss, oracle.snapshot().history.loss)


async def test_ctrl_s_to_an_unwritable_place_shows_the_error(tmp_path: Path) -> None:
    """A path under a plain file cannot be created: the error is shown, nothing breaks."""
    (tmp_path / "a-file").write_text("not a folder")
    app = make_app("five-points", device="cpu")
    async with running(app) as pilot:
        await wait_seq(pilot, 1)
        await answer_prompt(pilot, "ctrl+s", str(tmp_path / "a-file" / "x.npz"))
        message = await wait_notice(pilot, "Error")
        assert "a-file" in message
        assert isinstance(app.screen, type(app.main))
        await pilot.press("n")  # the session carries on
        await wait_for(pilot, lambda s: s.step == 1, what="a step after the failed save")


async def test_escape_cancels_the_save_prompt(tmp_path: Path) -> None:
    app = make_app("five-points", device="cpu")
    async with running(app) as pilot:
        await wait_seq(pilot, 1)
        await answer_prompt(pilot, "ctrl+s", None)
        await pilot.press("escape")
        assert not isinstance(app.screen, PathPrompt)
        await pilot.pause(0.2)
        assert app.runner.applied == 1
    assert not list(tmp_path.glob("*.npz"))


async def test_ctrl_o_refuses_a_pickle_and_keeps_the_session(tmp_path: Path) -> None:
    """A pickle that would create a file when unpickled: ctrl+o shows the SessionFileError,
    the pickle is never run, and the session on screen is the one there was."""
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.npz"

    class Payload:
        def __reduce__(self) -> tuple[Any, ...]:
            return (Path.touch, (marker,))

    evil.write_bytes(pickle.dumps(Payload()))
    app = make_app("five-points", device="cpu")
    async with running(app) as pilot:
        await wait_seq(pilot, 1)
        await pilot.press("n", "n")
        before = await wait_seq(pilot, 3)
        await answer_prompt(pilot, "ctrl+o", str(evil))
        await wait_notice(pilot, "pickle")
        assert app.last_failure is not None and app.last_failure.command == "Open"
        assert "SessionFileError" in app.last_failure.message
        assert "evil.npz" in app.last_failure.message
        s = await wait_seq(pilot, 4)  # the unchanged session is published again
        assert s.preset == "five-points" and s.step == 2
        for name, value in params_of(before).items():
            np.testing.assert_array_equal(params_of(s)[name], value, err_msg=name)
        await pilot.press("n")
        await wait_for(pilot, lambda s: s.step == 3, what="carrying on after the refusal")
    assert not marker.exists()


async def test_ctrl_o_opens_a_saved_session(tmp_path: Path) -> None:
    from playground.training.persist import save_session

    saved = engine_session("five-points")
    for _ in range(5):
        saved.train_step()
    path = save_session(saved, tmp_path / "five.npz")
    app = make_app("noisy-line", device="cpu")
    async with running(app) as pilot:
        await wait_seq(pilot, 1)
        await answer_prompt(pilot, "ctrl+o", "five.npz")  # relative to the working folder
        s = await wait_for(pilot, lambda s: s.preset == "five-points", what="opened")
        assert s.step == 5
        notice = await wait_notice(pilot, "resumed")
        assert notice == f"resumed {path} at step 5 (u returns to the session you had)"


async def test_quit_autosaves_and_the_next_start_offers_to_resume(state_home: Path) -> None:
    """q writes the autosave (and its sidecar) to the state directory; started without a
    preset, the app asks "Resume your last session (..., step 3)?" and y resumes it."""
    assert autosave_path() == state_home / "playground" / "autosave.npz"
    app = make_app("five-points", device="cpu", autosave=True)
    async with running(app) as pilot:
        await wait_seq(pilot, 1)
        await pilot.press("n", "n", "n")
        quitting = await wait_seq(pilot, 4)
        await pilot.press("q")
    info = read_sidecar(autosave_path())
    assert info is not None and (info.preset, info.step) == ("five-points", 3)

    again = make_app(device="cpu", autosave=True)
    async with running(again) as pilot:
        offer = await wait_screen(pilot, ResumeOffer)
        question = str(offer.query_one("#offer-question").render())
        assert "Resume your last session" in question and "step 3" in question
        await pilot.press("y")
        s = await wait_for(pilot, lambda s: s.step == 3, what="the autosave")
        for name, value in params_of(quitting).items():
            np.testing.assert_array_equal(params_of(s)[name], value, err_msg=name)


async def test_declining_the_offer_opens_the_preset_picker(state_home: Path) -> None:
    from playground.ui.dialogs.preset_picker import PresetPicker

    app = make_app("five-points", device="cpu", autosave=True)
    async with running(app) as pilot:
        await wait_seq(pilot, 1)
    again = make_app(device="cpu", autosave=True)
    async with running(again) as pilot:
        await wait_screen(pilot, ResumeOffer)
        await pilot.press("n")
        await wait_screen(pilot, PresetPicker)


async def test_quit_is_quick_with_a_thousand_commands_queued(tmp_path: Path) -> None:
    """The runner is held inside one command while 1000 more queue up; q still ends at
    once, the queued commands are dropped, and the autosave holds the state in hand."""
    autosave = tmp_path / "auto" / "session.npz"
    gate = threading.Event()
    app = make_app("five-points", device="cpu", autosave=autosave)
    async with running(app) as pilot:
        await wait_seq(pilot, 1)
        app.submit(Call(lambda _s: gate.wait(10), "hold"))
        for _ in range(1000):
            app.submit(Act("train_step"))
        threading.Timer(0.3, gate.set).start()
        t0 = time.perf_counter()
        await pilot.press("q")
    elapsed = time.perf_counter() - t0
    assert elapsed < 5.0
    assert not app.runner.alive
    doc = json.loads(autosave.with_suffix(".json").read_text())
    assert doc["step"] == 0, "queued train steps are dropped, not run before the save"
    assert autosave.is_file()


async def test_no_autosave_unless_asked(state_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default (tests, embedding) writes nothing; PLAYGROUND_NO_AUTOSAVE turns the
    CLI's autosave off."""
    app = make_app("five-points", device="cpu")
    async with running(app) as pilot:
        await wait_seq(pilot, 1)
    monkeypatch.setenv("PLAYGROUND_NO_AUTOSAVE", "1")
    app = make_app("five-points", device="cpu", autosave=True)
    assert app.autosave is None
    async with running(app) as pilot:
        await wait_seq(pilot, 1)
    assert not state_home.exists()


async def test_ctrl_e_writes_the_loss_history_as_csv(tmp_path: Path) -> None:
    app = make_app("five-points", device="cpu", export_dir=tmp_path / "out")
    async with running(app) as pilot:
        await wait_seq(pilot, 1)
        await pilot.press("n", "n", "f", "b", "s")
        s = await wait_seq(pilot, 6)
        await pilot.press("ctrl+e")
        path = tmp_path / "out" / "playground_five_points_loss.csv"
        assert await wait_notice(pilot, "wrote") == f"wrote {path}"
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["index", "step", "kind", "loss", "val_loss"]
    assert len(rows) - 1 == len(s.history.loss) == 4  # two train steps, a forward, a backward
    np.testing.assert_allclose([float(r[3]) for r in rows[1:]], s.history.loss)


async def test_the_file_keys_are_in_the_help_screen() -> None:
    """The footer is full at 80 columns; ? lists ctrl+s, ctrl+o and ctrl+e."""
    app = make_app("five-points", device="cpu")
    async with running(app, (120, 40)) as pilot:
        await wait_seq(pilot, 1)
        active = app.screen.active_bindings
        assert {"ctrl+s", "ctrl+o", "ctrl+e"} <= set(active)
        await pilot.press("question_mark")
        await pilot.pause(0.1)
        keys = str(app.screen.query_one("#help-keys").render())
        for key in ("ctrl+s", "ctrl+o", "ctrl+e"):
            assert key in keys


def test_the_runner_resume_command(tmp_path: Path) -> None:
    """Resume without a session loads one; a bad file afterwards fails with the file's
    name and leaves the session in place; queued commands act on the resumed session."""
    import queue

    from playground.protocol import Failed, Notice, Open, Published
    from playground.runner import Runner
    from playground.training.persist import save_session

    saved = engine_session("five-points")
    saved.train_step()
    path = save_session(saved, tmp_path / "one.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a session")
    events: queue.Queue[Any] = queue.Queue()
    runner = Runner(events.put, device="cpu")
    runner.start()
    try:
        runner.submit(Open(str(path)))
        runner.submit(Open(str(tmp_path / "bad.npz")))
        runner.submit(Act("train_step"))
        seen: list[Any] = []
        while sum(isinstance(e, Published) for e in seen) < 3:
            seen.append(events.get(timeout=60))
    finally:
        runner.stop()
    steps = [e.snapshot.step for e in seen if isinstance(e, Published)]
    assert steps == [1, 1, 2]
    assert any(isinstance(e, Notice) and e.message == f"resumed {path} at step 1" for e in seen)
    failed = [e for e in seen if isinstance(e, Failed)]
    assert len(failed) == 1 and failed[0].command == "Open"
    assert "bad.npz" in failed[0].message
