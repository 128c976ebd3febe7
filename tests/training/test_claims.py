"""Every number a preset's description promises is checked by running it: the claims
under ``[[expected.claims]]`` (the "Try:" text says the same numbers)."""

from __future__ import annotations

import pytest

from playground.training.catalog import PresetError, preset_infos
from playground.training.claims import check, parse_claims
from playground.training.presets import find_preset
from playground.training.session import Session

CLAIMS = [
    (info.name, i, claim)
    for info in preset_infos()[0]
    for i, claim in enumerate(find_preset(info.name).claims)
]


def test_the_presets_make_claims() -> None:
    assert len({name for name, _, _ in CLAIMS}) >= 10


@pytest.mark.slow
@pytest.mark.parametrize("name, i, claim", CLAIMS, ids=[f"{n}: {c.says}" for n, _, c in CLAIMS])
def test_a_claim_of_a_preset_holds(name: str, i: int, claim) -> None:
    preset = find_preset(name)
    s = Session(preset, device="cpu", **claim.settings)
    value, ok = check(s, claim)
    assert ok, f"{name}: {claim.says!r}: measured {value!r}, wanted {claim.between or claim.reason}"


@pytest.mark.parametrize(
    "claims, field",
    [
        ("nope", "expected.claims"),
        ([{"says": "x"}], "expected.claims[0]"),
        ([{"says": "x", "metric": "train_accuracy"}], "expected.claims[0].between"),
        ([{"says": "x", "metric": "wat", "between": [0, 1]}], "expected.claims[0].metric"),
        ([{"says": "x", "reason": "exploded"}], "expected.claims[0].reason"),
        ([{"says": "", "reason": "diverged"}], "expected.claims[0].says"),
        ([{"says": "x", "reason": "diverged", "steps": 0}], "expected.claims[0].steps"),
        ([{"says": "x", "reason": "diverged", "colour": 1}], "expected.claims[0].colour"),
    ],
)
def test_a_malformed_claim_names_the_claim_and_the_field(claims, field) -> None:
    with pytest.raises(PresetError) as e:
        parse_claims({"claims": claims}, "p.toml")
    assert e.value.field == field and e.value.file == "p.toml"


def test_a_claims_settings_are_checked_when_the_preset_loads(tmp_path) -> None:
    from playground.training.presets import load_preset

    text = (find_preset("five-points").path.read_text() + "\n[expected]\n"
            '[[expected.claims]]\nsays = "x"\nsettings = { lr = -1 }\nreason = "diverged"\n')  # fmt: skip
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(PresetError) as e:
        load_preset(path)
    assert e.value.field == "expected.claims[0].settings" and "lr" in e.value.reason
