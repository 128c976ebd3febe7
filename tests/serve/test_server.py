"""``playground serve`` over plain HTTP, as the instructor starts it: what it prints, which
requests it refuses, and a page that loads nothing from anywhere else."""

from __future__ import annotations

import http.client
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest

from tests.serve.helpers import ROOT, in_group, serve_env, serving, wait_until


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


def without_query(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def test_binding_every_address_without_a_token_refuses_to_start(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "playground", "serve", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=serve_env(tmp_path),
        timeout=60,
    )
    assert proc.returncode == 2
    assert "0.0.0.0" in proc.stderr and "--token" in proc.stderr
    assert "open" not in proc.stdout  # it never listened


def test_an_unknown_preset_refuses_to_start(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "playground", "serve", "no-such-preset", "--port", "0"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=serve_env(tmp_path),
        timeout=60,
    )
    assert proc.returncode == 2
    assert "no-such-preset" in proc.stderr and "five-points" in proc.stderr


def test_with_a_generated_token_every_request_without_it_gets_403(tmp_path: Path) -> None:
    with serving(["five-points", "--host", "0.0.0.0", "--token"], tmp_path) as served:
        token = re.search(r"token=([\w-]+)", served.printed)
        assert token is not None, served.output()
        assert len(token.group(1)) >= 24
        base = without_query(served.url)
        assert get(served.url)[0] == 200
        for url in (
            base,
            f"{base}?token=wrong",
            f"{base}static/js/textual.js",
            f"{base}static/fonts/RobotoMono-VariableFont_wght.ttf",
            f"{base}ws",
            f"{base}download/anything",
        ):
            status, body = get(url)
            assert status == 403, url
            assert "token" in body
        assert get(f"{base}static/js/textual.js?token={token.group(1)}")[0] == 200
        assert not served.sessions()  # nothing was started for any of them


def test_a_given_token_is_printed_in_the_url(tmp_path: Path) -> None:
    with serving(["--host", "0.0.0.0", "--token", "class-of-2026"], tmp_path) as served:
        assert served.printed.endswith("/?token=class-of-2026")
        assert "ssh -N -L" in served.output()
        assert get(served.url)[0] == 200


async def test_a_websocket_without_the_token_gets_403(tmp_path: Path) -> None:
    with serving(["five-points", "--host", "0.0.0.0", "--token", "t0k"], tmp_path) as served:
        base = without_query(served.url)
        async with aiohttp.ClientSession() as client:
            for url in (f"{base}ws", f"{base}ws/wrong"):
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    await client.ws_connect(url)
                assert refused.value.status == 403
        assert not served.sessions()


def test_on_localhost_the_page_is_relative_and_names_no_other_host(tmp_path: Path) -> None:
    with serving(["five-points"], tmp_path) as served:
        assert "ssh -N -L" in served.output()
        assert f"{served.port}:localhost:{served.port}" in served.output()
        status, page = get(served.url)
        assert status == 200
        html = re.sub(r"<!--.*?-->", "", page, flags=re.S)
        assert "://" not in html  # no absolute URL: no font service, works under a prefix
        links = re.findall(r'(?:href|src)="([^"]+)"', html) + re.findall(r'url\("([^"]+)"', html)
        assert links and all(not u.startswith("/") for u in links if u != "data:,")
        assert "RobotoMono" in html and "fonts.googleapis" not in html
        for url in links:
            if url != "data:,":
                assert get(served.url + url)[0] == 200, url


def test_on_localhost_other_host_names_and_other_pages_are_refused(tmp_path: Path) -> None:
    """A name rebound to 127.0.0.1, or a page of another site opening the websocket."""
    with serving(["five-points"], tmp_path) as served:
        conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
        conn.request("GET", "/", headers={"Host": f"attacker.example:{served.port}"})
        response = conn.getresponse()
        assert response.status == 403 and "localhost" in response.read().decode()
        conn.close()
        status, _ = get(served.url + "ws", headers={"Origin": "https://attacker.example"})
        assert status == 403
        assert not served.sessions()


def test_the_server_loads_no_torch_nor_textual() -> None:
    """`playground serve` starts fast: the tabs' processes import what the TUI needs."""
    probe = (
        "import sys, playground.cli.main, playground.serve.server\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'sympy', 'textual'}))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


async def test_a_websocket_over_the_cap_is_told_the_classroom_is_full(tmp_path: Path) -> None:
    """A page served just before the last seat went: its websocket starts no process."""
    with serving(["five-points", "--device", "cpu", "--max-sessions", "1"], tmp_path) as served:
        ws_url = served.url + "ws?width=100&height=30"
        origin = {"Origin": served.origin}
        async with aiohttp.ClientSession() as client:
            first = await client.ws_connect(ws_url, headers=origin)
            first_bytes = await first.receive(timeout=60)  # the app's first output
            assert first_bytes.type == aiohttp.WSMsgType.BINARY
            (pid,) = served.sessions()

            second = await client.ws_connect(ws_url, headers=origin)
            told = await second.receive(timeout=30)
            assert b"the classroom is full: 1 session is open" in told.data
            assert (await second.receive(timeout=30)).type == aiohttp.WSMsgType.CLOSE
            assert second.close_code == 1013  # try again later
            assert served.sessions() == {pid}

            status, page = get(served.url)
            assert status == 503 and "the classroom is full" in page
            await first.close()
        wait_until(lambda: not in_group(pid), 5.0, f"the first session's process {pid}")
        assert get(served.url)[0] == 200  # the seat is free again


async def test_a_malformed_message_ends_its_session_not_the_server(tmp_path: Path) -> None:
    with serving(["five-points", "--device", "cpu"], tmp_path) as served:
        async with aiohttp.ClientSession() as client:
            ws = await client.ws_connect(
                served.url + "ws?width=100&height=30", headers={"Origin": served.origin}
            )
            assert (await ws.receive(timeout=60)).type == aiohttp.WSMsgType.BINARY
            (pid,) = served.sessions()
            await ws.send_str("this is not a message")
            while (await ws.receive(timeout=30)).type == aiohttp.WSMsgType.BINARY:
                pass  # what the app drew before its session ended
            wait_until(lambda: not in_group(pid), 5.0, f"the session's process {pid}")
        assert get(served.url)[0] == 200


def test_a_preset_taken_for_the_token_is_pointed_out(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "playground",
            "serve",
            "--host",
            "0.0.0.0",
            "--token",
            "five-points",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=serve_env(tmp_path),
        timeout=60,
    )
    assert proc.returncode == 2
    assert "playground serve five-points --token" in proc.stderr
