"""`ollamamax logs` on a real stack: interleaved by time, filtered, as JSON, followed across a
rotation and a restart; and env files that reach the services, or that `up` refuses."""

from __future__ import annotations

import json
import os
import re
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.stacks.harness import STACKS, Stack


def _say(stack: Stack, service: str, text: str, n: int = 1) -> None:
    url = f"http://127.0.0.1:{stack.port(service)}/say?text={text}&n={n}"
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200


def _json_lines(stack: Stack, *args: str) -> list[dict[str, Any]]:
    done = stack.cli("logs", "--json", *args)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def _wait_for_line(stack: Stack, text: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(text in entry["line"] for entry in _json_lines(stack, "--grep", text)):
            return
        time.sleep(0.1)
    raise AssertionError(f"no log line with {text!r}")


@pytest.fixture
def logs_stack(make_stack: Any) -> Stack:
    stack: Stack = make_stack("logs")
    done = stack.cli("up", "-d", timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return stack


def test_logs_interleave_by_time_and_filter(logs_stack: Stack) -> None:
    stack = logs_stack
    _say(stack, "alpha", "first-alpha")
    _wait_for_line(stack, "first-alpha 0")
    _say(stack, "beta", "then-beta")
    _wait_for_line(stack, "then-beta 0")
    middle = time.time()
    time.sleep(0.05)
    _say(stack, "alpha", "last-alpha", n=2)
    _wait_for_line(stack, "last-alpha 1")

    entries = _json_lines(stack, "--grep", "-(alpha|beta) ")
    assert [(e["service"], e["line"].split(": ", 1)[1]) for e in entries] == [
        ("alpha", "first-alpha 0"), ("beta", "then-beta 0"), ("alpha", "last-alpha 0"),
        ("alpha", "last-alpha 1")]  # by time across the two files, not file after file
    assert all(e["time"].endswith("Z") for e in entries)
    stamps = [e["time"] for e in entries]
    assert stamps == sorted(stamps)

    since = datetime.fromtimestamp(middle).isoformat()  # local time, as a user types it
    assert [e["line"].split(": ", 1)[1] for e in _json_lines(stack, "--since", since)] == [
        "last-alpha 0", "last-alpha 1"]
    until = [e["line"] for e in _json_lines(stack, "--until", since)]
    assert any("then-beta 0" in line for line in until)
    assert not any("last-alpha" in line for line in until)
    assert _json_lines(stack, "--since", "1h", "--grep", "nothing-says-this") == []

    inverted = _json_lines(stack, "--grep", "-alpha|-beta", "--invert")
    assert inverted and not any("-alpha " in e["line"] or "-beta " in e["line"]
                                for e in inverted)
    assert {e["service"] for e in inverted} == {"alpha", "beta"}  # their start-up lines

    plain = stack.cli("logs", "--no-prefix", "--grep", "then-beta")
    assert plain.stdout.splitlines() == [f"beta[{stack.service('beta')['pid']}]: then-beta 0"]
    stamped = stack.cli("logs", "beta", "-t", "--grep", "then-beta").stdout.splitlines()
    assert len(stamped) == 1 and stamped[0].startswith("beta | 20")
    assert stamped[0].split(" ")[2].endswith("Z")

    anchored = _json_lines(stack, "--grep", r"^alpha\[\d+\]: last")  # `^`: the service's text
    assert [e["line"].split(": ", 1)[1] for e in anchored] == ["last-alpha 0", "last-alpha 1"]


def test_bad_filters_are_one_line_usage_errors(logs_stack: Stack) -> None:
    for args, named in ((["--grep", "("], "--grep"), (["--since", "yesterday"], "--since"),
                        (["--until", "soon"], "--until"), (["--invert"], "--invert"),
                        (["gamma"], "gamma")):
        done = logs_stack.cli("logs", *args)
        assert done.returncode == 2, done
        assert named in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_follow_across_rotation_and_restart(logs_stack: Stack, tmp_path: Path) -> None:
    stack = logs_stack
    out = tmp_path / "follow.jsonl"
    follower = stack.popen("logs", "-f", "--json", "-n", "0", "alpha", out=out)
    try:
        def followed(text: str, timeout: float = 30.0) -> list[str]:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                lines = [json.loads(line)["line"] for line in out.read_text().splitlines()
                         if line.strip()]
                if any(text in line for line in lines):
                    return lines
                time.sleep(0.1)
            raise AssertionError(f"logs -f never printed {text!r}: {out.read_text()[-2000:]}")

        for attempt in range(120):  # until the follower runs: what comes after it is new
            _say(stack, "alpha", f"ping{attempt}")
            try:
                followed(f"ping{attempt} 0", timeout=1.0)
                break
            except AssertionError:
                continue
        log = stack.run_dir / "logs" / "alpha.log"
        first_inode = log.stat().st_ino
        for burst in range(3):  # ~2.5 KB each against a 4 KB max_bytes: rotations between
            _say(stack, "alpha", f"burst{burst}", n=60)
            followed(f"burst{burst} 59")
        _say(stack, "alpha", "big", n=150)  # ~6 KB at once: more than one rotation may fall
        lines = followed("big 149")          # between two polls
        assert log.stat().st_ino != first_inode, "the log never rotated"
        assert (stack.run_dir / "logs" / "alpha.log.1").exists()
        said = [line.split(": ", 1)[1] for line in lines if ": burst" in line or ": big" in line]
        assert said == [f"burst{b} {i}" for b in range(3) for i in range(60)] + [
            f"big {i}" for i in range(150)]  # each once, in order, across every rotation

        before = stack.service("alpha")["pid"]
        done = stack.cli("restart", "alpha", timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        after = stack.service("alpha")["pid"]
        assert after != before
        _say(stack, "alpha", "after-restart")
        lines = followed("after-restart 0")
        assert f"alpha[{after}]: after-restart 0" in lines
        assert follower.poll() is None  # still following
    finally:
        follower.terminate()
        follower.wait(timeout=10)
    kept = stack.registry.stack.logs.backups
    assert not (stack.run_dir / "logs" / f"alpha.log.{kept + 1}").exists()  # the registry's count


def test_env_files_reach_the_service_in_compose_order(logs_stack: Stack) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{logs_stack.port('alpha')}/env") as response:
        env = json.loads(response.read())["env"]
    assert env["FIXTURE_GREETING"] == "hello"  # the stack's file
    assert env["FIXTURE_WHO"] == "hello alpha"  # ${VAR} from the file before it
    assert env["FIXTURE_FROM"] == "registry"  # stack file < alpha's file < the registry's env
    with urllib.request.urlopen(f"http://127.0.0.1:{logs_stack.port('beta')}/env") as response:
        beta = json.loads(response.read())["env"]
    assert beta["FIXTURE_FROM"] == "stack-file" and "FIXTURE_WHO" not in beta


def _copy_with(tmp_path: Path, alpha_env: str) -> Path:
    directory = tmp_path / "stack"
    directory.mkdir()
    text = (STACKS / "logs" / "ports.toml").read_text()
    root = str(STACKS.parent)
    text = text.replace('root = "../.."', f'root = "{root}"').replace(
        '"stacks/logs/alpha.env"', f'"{directory / "alpha.env"}"')
    (directory / "ports.toml").write_text(text)
    (directory / "alpha.env").write_text(alpha_env)
    return directory / "ports.toml"


def test_up_refuses_an_env_file_whose_port_disagrees(tmp_path: Path, make_stack: Any) -> None:
    config = _copy_with(tmp_path, "# alpha's own\nFIXTURE_WHO=x\nBETA_PORT=21199\n")
    stack: Stack = make_stack("logs", tmp_path / "run", config)
    done = stack.cli("up", "-d", timeout=120)
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if "error" in line]
    assert len(errors) == 1, done.stderr
    assert re.fullmatch(
        r"ollamamax: error: \S*/stack/alpha\.env:3: BETA_PORT=21199 says port 21199, but the "
        r"registry gives beta port 21102 \(\S*ports\.toml\): the registry is the truth; "
        r"change the line to 21102 or remove it", errors[0]), errors[0]
    assert stack.processes() == []  # nothing started
    check = stack.cli("ports", "check", "--no-host")
    assert check.returncode == 1
    assert "alpha.env:3 error env-file-port BETA_PORT=21199" in check.stdout


def test_up_names_a_missing_env_file(tmp_path: Path, make_stack: Any) -> None:
    config = _copy_with(tmp_path, "")
    os.unlink(tmp_path / "stack" / "alpha.env")
    stack: Stack = make_stack("logs", tmp_path / "run", config)
    done = stack.cli("up", "-d", timeout=120)
    assert done.returncode == 1
    assert "alpha.env: env file not found (named by services.alpha.env_file" in done.stderr
    assert "Traceback" not in done.stderr
    assert stack.processes() == []


def test_logs_of_a_stack_never_started_print_nothing(tmp_path: Path) -> None:
    stack = Stack("logs", tmp_path / "never")
    done = stack.cli("logs", "--grep", "x")
    assert (done.returncode, done.stdout) == (0, "")
