"""shuffle: a new order of the training samples each epoch, exactly the one
``DataLoader(shuffle=True)`` gives with a generator seeded with the session's seed."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from playground.cli.main import main
from playground.training.presets import find_preset
from playground.training.session import Session


def plain_loop(s: Session, epochs: int) -> list[torch.Tensor]:
    """softmax regression by hand (the seed-002 model) over a shuffling DataLoader."""
    x, y = s.dataset.train.x, s.dataset.train.y
    model = copy.deepcopy(s.model.module)
    opt = torch.optim.SGD(model.parameters(), lr=s.cfg.lr)
    g = torch.Generator().manual_seed(s.cfg.seed)
    loader = DataLoader(TensorDataset(x, y), batch_size=s.cfg.batch_size, shuffle=True, generator=g)
    for _ in range(epochs):
        for xb, yb in loader:
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xb), yb.long()).backward()
            opt.step()
    return [p.detach() for p in model.parameters()]


@pytest.mark.parametrize("how", ["run", "train steps"])
def test_shuffled_training_equals_a_shuffling_dataloader_loop(how: str) -> None:
    s = Session(find_preset("softmax"), device="cpu", shuffle=True, optimizer="sgd")
    want = plain_loop(s, 3)
    if how == "run":
        s.run(3 * s.n_batches)
    else:
        for _ in range(3 * s.n_batches):
            s.train_step()
    for got, w in zip(s.model.params.values(), want, strict=True):
        assert torch.equal(got.detach(), w)


def test_the_order_changes_each_epoch_and_follows_the_seed() -> None:
    s = Session(find_preset("softmax"), device="cpu", shuffle=True)
    a, b = s.build.order.perm(0), s.build.order.perm(1)
    assert sorted(a.tolist()) == list(range(len(a))) and not torch.equal(a, b)
    other = Session(find_preset("softmax"), device="cpu", shuffle=True, seed=1)
    assert not torch.equal(other.build.order.perm(0), a)
    in_order = Session(find_preset("softmax"), device="cpu")
    s.backward()
    in_order.backward()
    assert not torch.equal(s.model.params["W"].grad, in_order.model.params["W"].grad)


def test_the_exported_script_shuffles_with_a_real_dataloader(tmp_path: Path) -> None:
    """Shuffle switched on part-way, a change of batch size, a run: the script (which
    uses torch.utils.data.DataLoader) ends on the session's parameters."""
    s = Session(find_preset("softmax"), device="cpu")
    s.train_step()
    s.configure(shuffle=True)
    s.run(7)
    s.backward()
    s.step()
    s.configure(batch_size=16)
    s.run(9)
    path = s.export_script(tmp_path / "shuffled.py")
    text = path.read_text()
    assert "DataLoader(" in text and "shuffle=True" in text
    out = subprocess.run(
        [sys.executable, "-I", str(path)], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    lines = out.split("final parameters:")[1].split("\n")
    printed = [np.array(json.loads(line)) for line in lines if line]
    for got, p in zip(printed, s.snapshot().params, strict=True):
        np.testing.assert_allclose(got.reshape(p.value.shape), p.value, rtol=1e-6, atol=1e-7)


def test_shuffle_from_the_command_line(capsys) -> None:
    assert main(["run", "softmax", "--shuffle", "--steps", "10", "--json", "--device", "cpu"]) == 0
    assert (
        main(["run", "softmax", "--no-shuffle", "--steps", "10", "--json", "--device", "cpu"]) == 0
    )
    outs = capsys.readouterr().out.strip().splitlines()
    assert outs[-1] != outs[len(outs) // 2 - 1], "a different order: different parameters"
