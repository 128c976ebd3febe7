"""``playground accumulate`` and ``playground run --ranks``, as a script would call them.

The three gradients agree (to 1e-6 of the gradient's size: fp32 sums are not equal bit
for bit), the mistakes come with their numbers, and N DDP ranks end on the parameters of
``--accumulate N`` on one process - all checked from the printed JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from playground.cli.main import main

SCHEMA = json.loads((Path(__file__).parents[2] / "playground/schemas/run.schema.json").read_text())


def _json_lines(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]


def test_accumulate_k4_json_has_three_gradients_that_agree_and_the_mistakes(capsys) -> None:
    assert main(["accumulate", "noisy-line", "--k", "4", "--json"]) == 0
    (out,) = _json_lines(capsys)
    assert out["k"] == 4 and out["ranks"] == 4 and out["backend"] == "gloo"
    assert out["micro_batch_sizes"] == [40, 40, 40, 40]
    scale = max(abs(np.asarray(p["full_batch"])).max() for p in out["params"].values())
    for p in out["params"].values():
        full = np.asarray(p["full_batch"])
        assert np.max(np.abs(np.asarray(p["accumulated"]) - full)) <= 1e-6 * scale
        assert np.max(np.abs(np.asarray(p["all_reduced"]) - full)) <= 1e-6 * scale
        assert np.allclose(p["accumulated_without_1_over_k"], 4 * full, rtol=1e-6)
        assert len(p["micro_batches"]) == 4
    assert all(v <= 1e-6 * scale for v in out["max_abs_diff"].values())
    assert out["accumulated_over_full"] == pytest.approx(1.0, rel=1e-6)
    assert "fp32 sums agree to ~1e-7, not bit for bit" in out["note"]
    pitfalls = out["pitfalls"]
    assert set(pitfalls) == {"forgot_zero_grad", "forgot_scale", "uneven", "shuffled"}
    sgd, adam = pitfalls["forgot_scale"]["steps"]
    assert sgd["length_ratio"] == pytest.approx(4.0, rel=1e-6)
    assert adam["length_ratio"] == pytest.approx(1.0, abs=1e-4)
    assert pitfalls["uneven"]["numbers"]["max |sum/N - full|"] < 1e-6 * scale


def test_accumulate_text_labels_every_number(capsys) -> None:
    assert main(["accumulate", "noisy-line", "--k", "3", "--ranks", "3"]) == 0
    text = capsys.readouterr().out
    for label in (
        "full batch",
        "accum. 1/K",
        "all-reduced (3 ranks)",
        "max |full batch vs accumulated|",
        "fp32 sums agree to ~1e-7, not bit for bit",
        "54+54+52",
        "uneven last micro-batch",
        'reduction="sum"',
    ):
        assert label in text


def test_accumulate_bad_input_is_named_with_exit_code_2(capsys) -> None:
    assert main(["accumulate", "noisy-line", "--k", "4", "--ranks", "3"]) == 2
    assert "ranks: 3 ranks cannot share 4 micro-batches" in capsys.readouterr().err
    assert main(["accumulate", "no-such-preset"]) == 2


def test_run_ranks_2_ends_on_the_parameters_of_accumulate_2(capsys) -> None:
    """run noisy-line --ranks 2 --steps 50 and --accumulate 2: the same final parameters
    to 1e-6; both print rows and a summary that follow the run schema."""
    assert main(["run", "noisy-line", "--ranks", "2", "--steps", "50", "--json"]) == 0
    ranks = _json_lines(capsys)
    assert main(["run", "noisy-line", "--accumulate", "2", "--steps", "50", "--json"]) == 0
    one = _json_lines(capsys)
    for record in ranks:
        jsonschema.validate(record, SCHEMA)
    a, b = ranks[-1]["final"], one[-1]["final"]
    assert max(float(np.max(np.abs(np.asarray(a[n]) - np.asarray(b[n])))) for n in b) < 1e-6
    assert ranks[-1]["steps"] == 50 and "2 gloo ranks" in ranks[-1]["message"]
    # the rows say what one process would: the same step, epoch and losses
    assert [r["step"] for r in ranks[:-1]] == [r["step"] for r in one[:-1]]
    assert ranks[-2]["epoch"] == one[-2]["epoch"]
    assert ranks[-2]["train_loss"] == pytest.approx(one[-2]["train_loss"], rel=1e-6)


def test_run_ranks_refuses_what_it_cannot_do(capsys) -> None:
    assert main(["run", "noisy-line", "--ranks", "2", "--resume", "x.npz"]) == 2
    assert "--resume does not go with --ranks" in capsys.readouterr().err
    assert main(["run", "five-points", "--ranks", "8", "--steps", "1"]) == 2
    assert "5 training samples cannot be split into 8 ranks" in capsys.readouterr().err


def test_run_ranks_exports_the_ddp_script(tmp_path: Path, capsys) -> None:
    path = tmp_path / "ddp.py"
    args = ["run", "noisy-line", "--ranks", "2", "--steps", "2", "--export-script", str(path)]
    assert main(args) == 0
    code = path.read_text()
    assert "DistributedDataParallel" in code and "torchrun --standalone" in code
    assert "model.no_sync()" in code
    compile(code, str(path), "exec")


@pytest.mark.slow
def test_the_same_command_runs_under_torchrun(tmp_path: Path, capsys) -> None:
    """torchrun starts two processes of `playground run --ranks 2`: each is one rank
    (torchrun's rendezvous), rank 0 prints rows and the summary, the same final."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
           "2", "-m", "playground", "run", "noisy-line", "--ranks", "2", "--steps", "20",
           "--every", "10", "--json"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=True, cwd=tmp_path)
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert [r["type"] for r in lines] == ["row", "row", "summary"]
    for record in lines:
        jsonschema.validate(record, SCHEMA)
    assert main(["run", "noisy-line", "--accumulate", "2", "--steps", "20", "--json"]) == 0
    one = _json_lines(capsys)[-1]["final"]
    final = lines[-1]["final"]
    assert max(float(np.max(np.abs(np.asarray(final[n]) - np.asarray(one[n])))) for n in one) < 1e-6
