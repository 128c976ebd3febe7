"""The rules of ``playground serve`` on their own: which addresses need a token, how the
token and the page's origin are checked, and how many sessions the memory holds."""

from __future__ import annotations

import argparse

import pytest

from playground.cli.main import build_parser
from playground.cli.serve import app_args, preset_problem
from playground.serve.policy import (
    FALLBACK_MAX_SESSIONS,
    available_memory,
    binding_problem,
    default_max_sessions,
    host_of,
    is_loopback,
    same_origin,
    token_matches,
)
from playground.serve.session import MAX_COLUMNS, MAX_ROWS, terminal_size

MEMINFO = """MemTotal:       16318480 kB
MemFree:          901232 kB
MemAvailable:    3276800 kB
Buffers:          215940 kB
"""


@pytest.mark.parametrize("host", ["127.0.0.1", "127.3.2.1", "localhost", "::1", "[::1]"])
def test_loopback_addresses_need_no_token(host: str) -> None:
    assert is_loopback(host)
    assert binding_problem(host, None) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "lab-gpu.example.org"])
def test_any_other_address_needs_a_token(host: str) -> None:
    assert not is_loopback(host)
    problem = binding_problem(host, None)
    assert problem is not None and "--token" in problem and host in problem
    assert binding_problem(host, "s3cret") is None


def test_an_empty_token_is_refused() -> None:
    assert "empty" in (binding_problem("0.0.0.0", "  ") or "")


def test_the_token_must_match_exactly() -> None:
    assert token_matches("abc", "abc")
    assert not token_matches("abd", "abc")
    assert not token_matches("", "abc")
    assert not token_matches(None, "abc")
    assert not token_matches("ábc", "abc")  # any text may come in a URL


def test_a_websocket_must_come_from_the_servers_own_page() -> None:
    assert same_origin("http://localhost:8000", "localhost:8000")
    assert same_origin(None, "localhost:8000")  # not a browser page
    assert not same_origin("http://localhost:8001", "localhost:8000")
    assert not same_origin("https://evil.example", "localhost:8000")
    assert not same_origin("null", "localhost:8000")
    assert host_of("[::1]:8000") == "::1" and host_of("localhost:8000") == "localhost"


def test_the_default_cap_is_the_free_memory_over_320_mb() -> None:
    assert available_memory(MEMINFO) == 3276800 * 1024
    # 3276800 kB = 3200 MiB: ten sessions of 320 MiB
    assert default_max_sessions(3276800 * 1024) == 10
    assert default_max_sessions(3276800 * 1024 - 1) == 9
    assert default_max_sessions(100 * 1024**2) == 1  # at least one, however little
    assert available_memory("MemTotal: 1 kB\n") is None
    assert default_max_sessions(None) >= 1


def test_without_meminfo_the_cap_falls_back(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setattr("playground.serve.policy.MEMINFO", tmp_path / "missing")
    assert default_max_sessions() == FALLBACK_MAX_SESSIONS


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["serve", *argv])


def test_each_tab_gets_the_preset_and_the_options_handed_on() -> None:
    assert app_args(parse()) == ()
    assert app_args(parse("five-points", "--device", "cpu", "--seed", "3")) == (
        "five-points",
        "--device",
        "cpu",
        "--seed",
        "3",
    )
    args = parse("--token")
    assert args.token is not None and args.host == "127.0.0.1" and args.port == 8000


def test_an_unknown_preset_is_named_with_the_ones_there_are() -> None:
    assert preset_problem("five-points") is None
    problem = preset_problem("no-such-preset")
    assert problem is not None and "no-such-preset" in problem and "five-points" in problem
    assert "no such file" in (preset_problem("missing.toml") or "")


def test_a_page_cannot_ask_for_a_screen_larger_than_a_wall() -> None:
    assert terminal_size(155, 42) == (155, 42)
    assert terminal_size(10**9, 10**9) == (MAX_COLUMNS, MAX_ROWS)
    assert terminal_size("80", "24") == (80, 24)  # as JSON may carry it
    assert terminal_size("wide", 24) is None and terminal_size(None, 24) is None
