"""Data-parallel training on real torch.distributed ranks (gloo on the CPU, nccl on GPUs).

The oracle is the one-process session: N ranks, each taking its share of every step and
all-reducing the gradient with DistributedDataParallel, must end where gradient
accumulation over the same N x K micro-batches ends on one process. A rank that dies or
hangs is named, and no rank process outlives the run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from playground.training.accumulation import LabComputation, lab_views
from playground.training.ddp import DDPRun, Job, Shares, script_for, split
from playground.training.parallel import RankError, choose_backend
from playground.training.rank_pool import RankPool
from playground.training.session import Session


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _final_of_accumulate(preset, steps: int, **overrides) -> dict[str, np.ndarray]:
    """The oracle: the same preset trained on one process, K micro-batches a step."""
    s = Session(preset, device="cpu", **overrides)
    s.run(steps)
    return {n: p.detach().numpy() for n, p in s.model.params.items()}


def _max_diff(final: dict[str, list], oracle: dict[str, np.ndarray]) -> float:
    return max(float(np.max(np.abs(np.asarray(final[n]) - oracle[n]))) for n in oracle)


def test_two_gloo_ranks_end_on_the_parameters_of_accumulate_2(presets) -> None:
    """run noisy-line --ranks 2 --steps 50 == --accumulate 2 on one process, to 1e-6."""
    p = presets["noisy-line"]
    run = DDPRun(Job(p, p.config, 50, 25), 2, "cpu")
    assert run.backend.name == "gloo"
    final = run.run()
    assert _max_diff(final, _final_of_accumulate(p, 50, accumulate=2)) < 1e-6
    assert all(_gone(pid) for pid in run.pids)


def test_ranks_times_k_micro_batches_with_no_sync_match_accumulate_ranks_x_k(presets) -> None:
    """2 ranks x K = 2 (no_sync on the first backward) over shuffled micro-batches of 32
    walk the data as --accumulate 4 does - each epoch in the DataLoader's order, steps
    running across epochs (5 micro-batches an epoch): the same parameters after 20 steps."""
    p = presets["noisy-line"]
    cfg = p.config.with_overrides(batch_size=32, accumulate=2, shuffle=True)
    final = DDPRun(Job(p, cfg, 20, 20), 2, "cpu").run()
    oracle = _final_of_accumulate(p, 20, batch_size=32, accumulate=4, shuffle=True)
    assert _max_diff(final, oracle) < 1e-6
    unshuffled = _final_of_accumulate(p, 20, batch_size=32, accumulate=4)
    assert _max_diff(final, unshuffled) > 1e-3, "the order mattered, and was followed"


def test_uneven_shards_are_weighted_by_their_samples(presets) -> None:
    """160 samples on 3 ranks (54, 53, 53): each shard's mean weighted by its share, so
    the all-reduced gradient is the full-batch mean, as --accumulate 3 has it."""
    p = presets["noisy-line"]
    final = DDPRun(Job(p, p.config, 10, 10), 3, "cpu").run()
    assert _max_diff(final, _final_of_accumulate(p, 10, accumulate=3)) < 1e-6


def test_every_sample_is_in_exactly_one_share() -> None:
    """The shares cut the training set: each sample once per step, the weights making
    the average over the ranks the full-batch mean; with B > 0 the micro-batches one
    process would take, in its order."""
    shares = Shares(world=3, k=2, n_train=160, batch_size=0, sum_loss=False)
    parts = [part for r in range(3) for part in shares.parts(r, step=0)]
    covered = sorted(i for a, b, _ in parts for i in range(a, b))
    assert covered == list(range(160))
    # DDP averages over the 3 ranks: a sample of a micro-batch of n counts w / (3 n),
    # which must be 1/160 for every sample, as in the full-batch mean
    assert all(w / (3 * (b - a)) == pytest.approx(1 / 160) for a, b, w in parts)
    assert split(0, 160, 3) == [(0, 54), (54, 107), (107, 160)]  # as torch.tensor_split
    walked = Shares(world=2, k=2, n_train=160, batch_size=48, sum_loss=False)
    starts = [a for r in range(2) for a, _, _ in walked.parts(r, step=1)]
    assert starts == [(c % 4) * 48 for c in range(4, 8)]  # micro-batches 4-7, wrapping


def test_a_killed_rank_is_named_within_10_s_and_no_process_is_left(presets) -> None:
    """SIGKILL to rank 1 mid-run: the run stops with "rank 1 died", at once, and both
    rank processes are gone."""
    p = presets["noisy-line"]
    run = DDPRun(Job(p, p.config, 10**8, 500), 2, "cpu", quiet=True, timeout=10.0).start()
    pids = run.pids
    rows = run.rows()
    next(rows)  # training is under way
    os.kill(pids[1], signal.SIGKILL)
    t0 = time.monotonic()
    with pytest.raises(RankError) as err:
        for _ in rows:
            pass
    waited = time.monotonic() - t0
    assert err.value.rank == 1 and err.value.kind == "died"
    assert "rank 1 died (killed by SIGKILL)" in str(err.value)
    assert waited < 10.0, "reported by the rank's exit, not by the timeout"
    assert all(_gone(pid) for pid in pids)


def test_a_stopped_rank_is_reported_as_hung_with_its_number(presets) -> None:
    """SIGSTOP to rank 1: it no longer answers, rank 0 waits in the all-reduce; after
    the timeout the run names rank 1, and no process is left (a stopped one included)."""
    p = presets["noisy-line"]
    run = DDPRun(Job(p, p.config, 10**8, 500), 2, "cpu", quiet=True, timeout=2.0).start()
    pids = run.pids
    rows = run.rows()
    next(rows)
    os.kill(pids[1], signal.SIGSTOP)
    with pytest.raises(RankError) as err:
        for _ in rows:
            pass
    assert err.value.rank == 1 and err.value.kind == "hung"
    assert "rank 1 hung" in str(err.value)
    assert all(_gone(pid) for pid in pids)


def test_the_lab_pool_is_reused_names_a_dead_rank_and_starts_afresh(make_session) -> None:
    """The lab's ranks are started once and reused; one killed while idle is named by
    the next computation, which stops the others and starts new ranks for its numbers."""
    session = make_session("noisy-line")
    lab = LabComputation(session, k=2)
    pool = RankPool(device="cpu")
    try:
        first = pool.allreduce(lab.tasks())
        pids = pool.pids
        pool.allreduce(lab.tasks())
        assert pool.pids == pids and pool.starts == 1
        os.kill(pids[1], signal.SIGKILL)
        while pool.group is not None and pool.group.alive:
            time.sleep(0.01)
        pending, done = list(lab_views(session, pool, k=2))
        assert pending.rank_note.startswith("rank 1 died (killed by SIGKILL) since the last")
        assert "starting 2 gloo ranks" in pending.rank_note and pending.params[0].allreduced is None
        assert done.rank_note == "" and "rank 1 died" in done.rank_event
        assert pool.starts == 2 and all(_gone(pid) for pid in pids)
        for p in done.params:
            assert np.array_equal(p.allreduced, first.grads[p.name])
        fresh = pool.pids
    finally:
        pool.stop()
    assert all(_gone(pid) for pid in fresh)


def test_more_ranks_than_gpus_on_cuda_is_refused_with_the_count() -> None:
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(ValueError, match=f"this machine has {gpus}"):
        choose_backend("cuda", gpus + 1)
    assert choose_backend("cpu", 4).name == "gloo"


@pytest.mark.cuda
@pytest.mark.skipif(
    not torch.cuda.is_available() or torch.cuda.device_count() < 2, reason="needs 2 GPUs"
)
def test_two_nccl_ranks_on_two_gpus_end_on_the_parameters_of_accumulate_2(presets) -> None:
    p = presets["noisy-line"]
    run = DDPRun(Job(p, p.config, 50, 50), 2, "cuda")
    assert run.backend.name == "nccl"
    final = run.run()
    assert _max_diff(final, _final_of_accumulate(p, 50, accumulate=2)) < 1e-5


@pytest.mark.slow
def test_the_exported_ddp_script_runs_under_torchrun_and_ends_there_too(
    presets, tmp_path: Path
) -> None:
    """The script a user exports runs with torchrun (2 processes, gloo) and prints the
    parameters --accumulate 2 ends on."""
    import json

    p = presets["noisy-line"]
    path = tmp_path / "noisy_line_ddp.py"
    path.write_text(script_for(Job(p, p.config, 50, 50)), encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         str(path)],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    final = json.loads(out.stdout.strip().splitlines()[-1])["final"]
    assert _max_diff(final, _final_of_accumulate(p, 50, accumulate=2)) < 1e-6
