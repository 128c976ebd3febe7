"""Item 2: a malformed session file never crash-loops the TUI. Opening it is refused
with the file and the field named and the app goes on; the crash path never autosaves
over the file the session came from; a corrupt sidecar (JSON nested 100k deep) only
means its autosave is not offered."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from playground.paths import autosave_path
from tests.hostile.conftest import doc_of, read_arrays, session, write_session


def _malformed(saved: Path, target: Path, how: str) -> Path:
    arrays = read_arrays(saved)
    doc = doc_of(arrays)
    if how == "label":
        doc["undo"][-1]["label"] = 5  # once, a non-string status message
    elif how == "note":
        doc["undo"][-1]["note"] = ["not", "text"]
    elif how == "counter":
        doc["progress"]["step"] = 2**63
    elif how == "optimizer":
        doc["optimizer"]["state"]["0"] = {"momentum_buffer": {"array": "nowhere"}}
    elif how == "lr":
        doc["live"]["lr"] = "0.5"
    return write_session(target, arrays, doc)


def _autosave_of(saved: Path, how: str) -> Path:
    """A malformed autosave in slot 1 with a sidecar that offers it."""
    target = autosave_path(1)
    target.parent.mkdir(parents=True, exist_ok=True)
    _malformed(saved, target, how)
    side = {"preset": "multiple-regression", "title": "t", "step": 3, "saved_at": "2024"}
    target.with_suffix(".json").write_text(json.dumps(side))
    return target


async def _wait(pilot: Any, check: Any, what: str) -> None:
    for _ in range(400):
        if check():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.parametrize("how", ["label", "note", "counter", "optimizer", "lr"])
async def test_resuming_a_malformed_autosave_is_refused_and_the_app_goes_on(
    how: str, saved_sgd: Path, state_home: Path
) -> None:
    from playground.tui import make_app
    from playground.ui.dialogs.preset_picker import PresetPicker
    from playground.ui.dialogs.resume_offer import ResumeOffer

    bad = _autosave_of(saved_sgd, how)
    before = bad.read_bytes()
    app = make_app(device="cpu", autosave=True)
    async with app.run_test() as pilot:
        await _wait(pilot, lambda: isinstance(app.screen, ResumeOffer), "the offer")
        await pilot.press("y")
        await _wait(pilot, lambda: app.last_failure is not None, "the refusal")
        assert app.last_failure.command == "Open"
        assert bad.name in app.last_failure.message
        assert app.last_failure.message.isprintable()
        await pilot.press("p")  # the app answers keys: the preset picker opens
        await _wait(pilot, lambda: isinstance(app.screen, PresetPicker), "the picker")
        await pilot.press("escape")
        await pilot.press("q")
        await _wait(pilot, lambda: app._exit, "quitting")
    assert app.return_code in (None, 0)
    assert bad.read_bytes() == before, "the malformed file is left as it was"


async def test_a_crash_never_autosaves_over_the_file_it_resumed(
    saved_sgd: Path, state_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app fails while a resumed session is open: as it ends, the runner saves the
    session to a new autosave file; the one it was resumed from keeps its contents."""
    from playground.training.persist import load_session, save_session
    from playground.tui import make_app
    from playground.ui.dialogs.resume_offer import ResumeOffer
    from playground.ui.training.main_screen import MainScreen
    from tests.ui.helpers import wait_for

    s = session()
    for _ in range(4):
        s.train_step()
    resumed = save_session(s, autosave_path(1))
    side = {"preset": "five-points", "title": "t", "step": 4, "saved_at": "2024"}
    resumed.with_suffix(".json").write_text(json.dumps(side))
    before = resumed.read_bytes()
    original = MainScreen.apply

    def apply(self: Any, ev: Any) -> None:
        if ev.snapshot.step == 5:
            raise RuntimeError("a bug in the UI")
        original(self, ev)

    monkeypatch.setattr(MainScreen, "apply", apply)
    app = make_app(device="cpu", autosave=True)
    with pytest.raises(RuntimeError, match="a bug in the UI"):
        async with app.run_test() as pilot:
            await _wait(pilot, lambda: isinstance(app.screen, ResumeOffer), "the offer")
            await pilot.press("y")
            await wait_for(pilot, lambda snap: snap.step == 4, what="resumed")
            await pilot.press("n")  # step 5: the UI fails on it
            await _wait(pilot, lambda: app._exit, "the crash")
    assert resumed.read_bytes() == before
    saved = [p for p in (state_home / "playground").glob("autosave*.npz") if p != resumed]
    assert len(saved) == 1, saved
    assert load_session(saved[0]).step_count == 5, "the session as it was at the crash"


@pytest.mark.parametrize(
    "sidecar",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"preset": {"a": ' * 50_000 + "1" + "}" * 50_000,
        '{"preset": 5, "step": "3"}',
        '{"preset": "p", "step": 1e400}',
        "\xff\xfe not utf-8",
        "",
    ],
)
async def test_a_corrupt_sidecar_never_stops_a_start(sidecar: str, state_home: Path) -> None:
    from playground.tui import make_app
    from playground.ui.dialogs.preset_picker import PresetPicker

    npz = autosave_path(1)
    npz.parent.mkdir(parents=True)
    npz.write_bytes(b"whatever")
    npz.with_suffix(".json").write_bytes(sidecar.encode("utf-8", "surrogateescape"))
    app = make_app(device="cpu", autosave=True)
    async with app.run_test() as pilot:
        await _wait(pilot, lambda: isinstance(app.screen, PresetPicker), "the picker")
        await pilot.press("escape")
    assert app.return_code in (None, 0)


def test_a_runner_given_malformed_files_keeps_answering(saved_sgd: Path, tmp_path: Path) -> None:
    from playground.protocol import Act, Failed, Load, Open, Published
    from playground.runner import Runner
    from tests.test_runner import Events

    events = Events()
    r = Runner(events, device="cpu")
    r.start()
    try:
        r.submit(Load("five-points", {}))
        events.next(Published)
        for step, how in enumerate(("label", "note", "counter", "optimizer", "lr"), 1):
            bad = _malformed(saved_sgd, tmp_path / f"{how}.npz", how)
            r.submit(Open(str(bad)))
            failed = events.next(Failed)
            assert bad.name in failed.message
            r.submit(Act("train_step"))
            ev = events.until(lambda ev, step=step: ev.snapshot.step == step)
            assert ev.snapshot.preset == "five-points"
    finally:
        r.stop()
