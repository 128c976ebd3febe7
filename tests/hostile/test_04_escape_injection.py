"""Item 4: terminal escape injection. Text a preset or a file supplies - a preset's name,
title, description, a session's undo labels, an autosave's title - is made safe where it
is read (``playground.text.clean``), so ``playground run``, ``playground presets``, the
TUI's header, status bar and resume offer never pass an escape sequence on."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from playground.cli.main import main
from playground.text import clean, shown
from playground.training.catalog import PresetError, preset_info
from playground.training.presets import load_preset
from tests.hostile.conftest import INLINE, doc_of, preset_file, read_arrays, write_session

ESC = {
    "title": "\x1b]0;pwned\x07\x1b[2J\x1b[31mRed title",
    "csi": "\x9b2Jcleared",
    "bidi": "evil\u202egnp.exe",
    "bell": "ding\x07\x07",
}


def _no_control(text: str) -> None:
    bad = [ch for ch in text if not (ch.isprintable() or ch == "\n")]
    assert not bad, f"control characters {bad!r} in {text!r}"


def _hostile_preset(folder: Path) -> Path:
    return preset_file(
        folder,
        name="evil\x1b[2J",
        top={"title": ESC["title"], "description": f"{ESC['csi']}\nline two\r\n{ESC['bidi']}"},
        data=INLINE,
        train={"optimizer": "gd", "lr": 0.01},
    )


def test_a_presets_texts_are_clean_where_it_is_read(tmp_path: Path) -> None:
    p = _hostile_preset(tmp_path)
    for read in (preset_info, load_preset):
        info = read(p)
        for text in (info.name, info.title, info.description):
            _no_control(text)
        assert "Red title" in info.title and "line two" in info.description
        assert "\n" in info.description  # a description keeps its lines


def test_playground_run_prints_no_escape(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    p = _hostile_preset(tmp_path)
    assert main(["run", str(p), "--steps", "2"]) == 0
    out = capsys.readouterr()
    _no_control(out.out + out.err)
    assert "Red title" in out.out


def test_playground_presets_prints_no_escape(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playground.training import catalog

    _hostile_preset(tmp_path)
    (tmp_path / "broken\x1b[2J.toml").write_text('name = 3\ntitle = "\x1b[31m"\n')
    monkeypatch.setattr(catalog, "presets_dir", lambda: tmp_path)
    assert main(["presets"]) == 0
    out = capsys.readouterr()
    _no_control(out.out + out.err)
    assert "Red title" in out.out and "skipped" in out.err


def test_errors_about_a_hostile_file_are_clean(tmp_path: Path) -> None:
    p = tmp_path / "x\x1b]0;t\x07.toml"
    p.write_text('name = "x"\n[data]\nkind = "\x1b[2J"\n')
    with pytest.raises(PresetError) as info:
        load_preset(p)
    _no_control(str(info.value))


def test_a_sidecar_title_is_clean(tmp_path: Path) -> None:
    from playground.training.sidecar import read_sidecar

    npz = tmp_path / "autosave.npz"
    npz.write_bytes(b"x")
    npz.with_suffix(".json").write_text(
        json.dumps({"preset": ESC["csi"], "title": ESC["title"], "step": 3, "saved_at": "\x1b[2J"})
    )
    info = read_sidecar(npz)
    assert info is not None
    for text in (info.preset, info.title, info.saved_at):
        _no_control(text)


def test_undo_labels_from_a_session_file_reach_the_status_message_clean(
    saved_sgd: Path, tmp_path: Path
) -> None:
    from playground.protocol import Act, Open, Published
    from playground.runner import Runner
    from tests.test_runner import Events

    arrays = read_arrays(saved_sgd)
    doc = doc_of(arrays)
    doc["undo"][-1]["label"] = ESC["title"]
    doc["undo"][-1]["note"] = ESC["csi"]
    bad = write_session(tmp_path / "labels.npz", arrays, doc)
    events = Events()
    r = Runner(events, device="cpu")
    r.start()
    try:
        r.submit(Open(str(bad)))
        events.next(Published)
        r.submit(Act("undo"))
        ev = events.next(Published)
    finally:
        r.stop()
    assert "Red title" in ev.message
    _no_control(ev.message)


async def test_the_tui_header_and_status_bar_show_no_escape(tmp_path: Path) -> None:
    from playground.tui import make_app
    from playground.ui.training.status_bar import StatusBar
    from tests.ui.helpers import wait_seq

    app = make_app(str(_hostile_preset(tmp_path)), device="cpu")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_seq(pilot, 1)
        await pilot.press("n")
        await wait_seq(pilot, 2)
        await pilot.pause(0.1)
        bar = str(app.main.query_one(StatusBar).render())
        texts = [app.main.title or "", app.main.sub_title or "", app.message, bar]
        texts += [app.snapshot.title, app.snapshot.preset, app.snapshot.description]
        for text in texts:
            _no_control(text)
        assert "Red title" in " ".join(texts)


async def test_the_resume_offer_shows_no_escape(state_home: Path) -> None:
    from textual.widgets import Label

    from playground.paths import autosave_path
    from playground.tui import make_app
    from playground.ui.dialogs.resume_offer import ResumeOffer

    for n, title in ((1, ESC["title"]), (2, ESC["bidi"])):
        npz = autosave_path(n)
        npz.parent.mkdir(parents=True, exist_ok=True)
        npz.write_bytes(b"never loaded here")
        side = {"preset": ESC["csi"], "title": title, "step": n, "saved_at": f"2024-0{n}-01"}
        npz.with_suffix(".json").write_text(json.dumps(side))
    app = make_app(device="cpu", autosave=True)
    async with app.run_test() as pilot:
        for _ in range(200):
            if isinstance(app.screen, ResumeOffer):
                break
            await pilot.pause(0.05)
        offer = app.screen
        assert isinstance(offer, ResumeOffer) and len(offer.infos) == 2
        shown_text = [str(label.render()) for label in offer.query(Label)]
        for text in shown_text:
            _no_control(text)
        assert "step 2" in shown_text[0], "the newest first"
        assert any("2: " in t and "step 1" in t for t in shown_text), "the other one listed"
        await pilot.press("n")
        await pilot.pause(0.1)


@given(st.text())
def test_clean_text_is_always_printable(text: str) -> None:
    one = clean(text)
    assert one.isprintable() and len(one) <= 500
    assert clean(one) == one
    many = clean(text, lines=True)
    assert all(line.isprintable() for line in many.split("\n"))
    assert shown(text).isprintable() and len(shown(text)) <= 60


def test_clean_keeps_ordinary_text() -> None:
    for text in ("Five points: w = b = 1, lr 0.001", "Ünïcödé ok — 温度", "a  b"):
        assert clean(text) == text
    assert time.strftime("%Y") in clean(time.strftime("%Y-%m-%d %H:%M:%S"))


def test_every_text_of_a_preset_file_is_clean_as_it_is_read(tmp_path: Path) -> None:
    """Lessons, claims, anything a preset may show: cleaned once, in ``read_toml``."""
    from playground.paths import presets_dir
    from playground.training.catalog import read_toml

    p = tmp_path / "lesson.toml"
    p.write_text(
        'name = "x"\n[[lessons]]\nprompt = "press b\\u001b[2J"\n'
        'steps = [{say = "\\u009b31mred\\nnext line"}]\n'
    )
    doc = read_toml(p)
    assert doc["lessons"][0]["prompt"] == "press b [2J"
    assert doc["lessons"][0]["steps"][0]["say"] == " 31mred\nnext line"
    import tomllib

    for shipped in presets_dir().glob("*.toml"):  # the shipped presets are clean already
        assert read_toml(shipped) == tomllib.loads(shipped.read_text(encoding="utf-8"))
