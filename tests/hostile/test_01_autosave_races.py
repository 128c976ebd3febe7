"""Item 1: autosave races. Each running instance has an autosave file of its own, locked
while it runs: two instances quitting at the same moment, or one after the other, keep
both sessions; the next start offers every autosave no running instance holds, and the
one resumed becomes that instance's own."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from pathlib import Path
from typing import Any

import pytest

from playground.files import held
from playground.paths import adopt_autosave, autosave_path, claim_autosave, release_autosave

TRIALS = 20


def _instance(n: int, barrier: Any, results: Any, state_home: str, trials: int) -> None:
    """One app instance after another in this process: claim the autosave, train a
    session of its own, wait for the other process, then quit (the runner saves as it
    stops) - both processes at the same moment."""
    os.environ["XDG_STATE_HOME"] = state_home
    from playground.paths import default_autosave, release_autosave
    from playground.protocol import Act, Load
    from playground.runner import Runner

    for t in range(trials):
        path = default_autosave()
        assert path is not None
        runner = Runner(lambda ev: None, device="cpu")
        runner.start()
        steps = 1 + n + 2 * t  # a different session in each process and trial
        runner.submit(Load("five-points", {}))
        for _ in range(steps):
            runner.submit(Act("train_step"))
        while runner.applied < steps + 1:
            time.sleep(0.005)
        barrier.wait()  # both are ready to quit
        runner.stop(autosave=path)
        release_autosave(path)
        results.put((t, n, str(path), steps))
        barrier.wait()  # the test has looked at both files


@pytest.mark.slow
def test_two_instances_quitting_at_the_same_moment_keep_both_sessions(state_home: Path) -> None:
    """20 trials of two real processes quitting at once: 20 times both sessions are
    there, each whole (it loads) and each with its own numbers."""
    from playground.training.persist import load_session
    from playground.training.sidecar import read_sidecar

    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(3)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_instance, args=(n, barrier, results, str(state_home), TRIALS))
        for n in (0, 1)
    ]
    for p in procs:
        p.start()
    kept = 0
    try:
        for t in range(TRIALS):
            barrier.wait(timeout=300)
            got = [results.get(timeout=300) for _ in range(2)]
            assert {g[0] for g in got} == {t}
            paths = {g[2] for g in got}
            assert len(paths) == 2, f"trial {t}: both saved to {paths}"
            for _, _, path, steps in got:
                assert load_session(path).step_count == steps, f"trial {t}: {path}"
                info = read_sidecar(Path(path))
                assert info is not None and info.step == steps
            kept += 1
            barrier.wait(timeout=300)
    finally:
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():
                p.terminate()
    assert kept == TRIALS
    assert all(p.exitcode == 0 for p in procs)
    leftovers = [p.name for p in (state_home / "playground").iterdir() if p.suffix == ".tmp"]
    assert not leftovers


def test_quitting_one_after_the_other_keeps_both(state_home: Path) -> None:
    from playground.training.persist import load_session, save_session
    from tests.hostile.conftest import session

    first = claim_autosave()
    a = session()
    a.train_step()
    save_session(a, first)
    release_autosave(first)  # the first instance has quit
    second = claim_autosave()  # the next one starts: its own, empty file
    assert second != first and not second.exists()
    b = session("two-points")
    save_session(b, second)
    release_autosave(second)
    assert load_session(first).preset.name == "five-points"
    assert load_session(second).preset.name == "two-points"


def test_a_running_instances_autosave_is_not_offered_to_another(state_home: Path) -> None:
    from playground.training.persist import save_session
    from playground.training.sidecar import resume_list, write_sidecar
    from tests.hostile.conftest import session

    mine = claim_autosave()
    written = save_session(session(), mine)
    write_sidecar(written, "five-points", "Five", 0)
    other = claim_autosave()  # another instance, started while the first still runs
    assert other != mine and held(mine)
    assert [i.path for i in resume_list(other)] == []
    release_autosave(mine)  # the first quits
    assert [i.path for i in resume_list(other)] == [mine]


def test_resuming_an_autosave_makes_it_the_instances_own(state_home: Path) -> None:
    old = autosave_path(1)
    old.parent.mkdir(parents=True)
    old.write_bytes(b"a session")
    fresh = claim_autosave()
    assert fresh == autosave_path(2)
    now = adopt_autosave(fresh, old)
    assert now == old and held(old) and not held(fresh)
    assert claim_autosave() == autosave_path(2), "the fresh one is free again"


def test_when_every_slot_holds_a_session_the_oldest_is_reused(
    state_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playground import paths

    monkeypatch.setattr(paths, "AUTOSAVES", 3)
    for n in (1, 2, 3):
        p = autosave_path(n)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"s")
        os.utime(p, (1000 + n, 1000 + n))
    os.utime(autosave_path(2), (10, 10))
    assert claim_autosave() == autosave_path(2)
    assert claim_autosave() == autosave_path(1)


def test_a_lock_is_one_holders_at_a_time_across_processes(tmp_path: Path) -> None:
    """flock: a second process cannot take a held lock until the holder lets go."""
    from playground.files import lock, unlock

    target = tmp_path / "autosave.npz"
    assert lock(target) and not lock(target)
    ctx = mp.get_context("spawn")
    answers: Any = ctx.Queue()
    p = ctx.Process(target=_try_lock, args=(str(target), answers))
    p.start()
    assert answers.get(timeout=120) is False
    p.join(60)
    unlock(target)
    p = ctx.Process(target=_try_lock, args=(str(target), answers))
    p.start()
    assert answers.get(timeout=120) is True
    p.join(60)


def _try_lock(path: str, answers: Any) -> None:
    from playground.files import lock

    answers.put(lock(path))


async def test_the_offer_lists_several_and_resumes_the_one_chosen(state_home: Path) -> None:
    """Two autosaves: the offer lists both, newest first; 2 resumes the older one, and
    quitting saves it back into its own file - the other one is untouched."""
    from playground.training.persist import load_session, save_session
    from playground.tui import make_app
    from playground.ui.dialogs.resume_offer import ResumeOffer
    from tests.hostile.conftest import session
    from tests.ui.helpers import wait_for

    for n, steps in ((1, 2), (2, 5)):
        s = session()
        for _ in range(steps):
            s.train_step()
        written = save_session(s, autosave_path(n))
        side = {"preset": "five-points", "title": "Five", "step": steps,
                "saved_at": f"2024-01-0{n} 10:00:00"}  # fmt: skip
        written.with_suffix(".json").write_text(json.dumps(side))
    newer = autosave_path(2).read_bytes()
    app = make_app(device="cpu", autosave=True)
    async with app.run_test() as pilot:
        for _ in range(200):
            if isinstance(app.screen, ResumeOffer):
                break
            await pilot.pause(0.05)
        assert isinstance(app.screen, ResumeOffer)
        assert [i.step for i in app.screen.infos] == [5, 2]
        await pilot.press("2")
        await wait_for(pilot, lambda snap: snap.step == 2, what="the older autosave")
        assert app.autosave == autosave_path(1)
        await pilot.press("n")
        await wait_for(pilot, lambda snap: snap.step == 3, what="a step more")
        await pilot.press("q")
        for _ in range(200):
            if app._exit:
                break
            await pilot.pause(0.05)
        assert app._exit, "quit once the autosave was written"
    assert load_session(autosave_path(1)).step_count == 3
    assert autosave_path(2).read_bytes() == newer
