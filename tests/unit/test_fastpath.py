"""The start-up fast path reads `ports check` exactly as typer does, and leaves the rest to it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from ollamamax_stack import cli, fastpath
from ollamamax_stack.commands import check_run
from ollamamax_stack.commands.check_run import CheckOptions
from ollamamax_stack.commands.common import GlobalOptions
from ollamamax_stack.commands.logs_run import LogsOptions

ENV = {"OLLAMAMAX_CONFIG": "", "OLLAMAMAX_RUN_DIR": "", "OLLAMAMAX_OFFSET": "",
       "OLLAMAMAX_PROFILE": ""}


def typer_parse(argv: list[str], env: dict[str, str],
                monkeypatch: pytest.MonkeyPatch) -> tuple[GlobalOptions, CheckOptions]:
    seen: list[tuple[GlobalOptions, CheckOptions]] = []

    def record(globals_: GlobalOptions, options: CheckOptions) -> int:
        seen.append((globals_, options))
        return 0

    monkeypatch.setattr(check_run, "run_check", record)
    result = CliRunner().invoke(cli.app, argv, env={**ENV, **env})
    assert result.exit_code == 0, result.output
    return seen[0]


def option_names(command: Any) -> set[str]:
    return {name for p in command.params if p.param_type_name == "option" for name in p.opts}


def test_the_fast_path_knows_every_option_typer_declares() -> None:
    root: Any = typer.main.get_command(cli.app)
    check = root.commands["ports"].commands["check"]
    assert option_names(root) - {"--help", "-h"} == set(fastpath.GLOBAL_OPTIONS)
    assert option_names(check) - {"--help", "-h"} == (set(fastpath.CHECK_FLAGS)
                                                       | set(fastpath.CHECK_VALUES))


CASES = [
    (["ports", "check"], {}),
    (["ports", "check", "--no-host", "--strict", "a.env", "b/c.yml"], {}),
    (["--config", "x/ports.toml", "--offset", "-7", "-p", "full", "ports", "check", "-f", "json"],
     {}),
    (["-c", "a.toml", "--run-dir=/tmp/r", "--offset=3", "ports", "check", "--format=sarif",
      "--fix", "--exclude", "vendor", "--exclude=*.lock", "f.env", "--diff"], {}),
    (["ports", "check", "--no-host"], {"OLLAMAMAX_CONFIG": "env.toml", "OLLAMAMAX_OFFSET": "5",
                                       "OLLAMAMAX_PROFILE": "full",
                                       "OLLAMAMAX_RUN_DIR": "/tmp/x"}),
    (["--offset", "1", "ports", "check"], {"OLLAMAMAX_OFFSET": "5"}),
    (["ports", "check", "-"], {}),
]


@pytest.mark.parametrize(("argv", "env"), CASES)
def test_fast_and_typer_parse_alike(argv: list[str], env: dict[str, str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    fast = fastpath.parse(argv, {**ENV, **env})
    assert fast is not None
    assert fast == typer_parse(argv, env, monkeypatch)
    if "f.env" in argv:
        assert fast[1].files == [Path("f.env")]


@pytest.mark.parametrize("argv", [
    [], ["ports", "list"], ["ports", "check", "--help"], ["ports", "check", "-h"],
    ["ports", "check", "--", "x"], ["ports", "check", "-fjson"], ["ports", "check", "--format"],
    ["--offset", "x", "ports", "check"], ["--bogus", "ports", "check"],
    ["ports", "check", "--no-host=1"], ["ports", "check", "--unknown"], ["version"],
])
def test_anything_else_goes_to_typer(argv: list[str]) -> None:
    assert fastpath.parse(argv, ENV) is None


def test_the_logs_fast_path_knows_every_option_typer_declares() -> None:
    root: Any = typer.main.get_command(cli.app)
    assert option_names(root.commands["logs"]) - {"--help", "-h"} == (
        set(fastpath.LOGS_FLAGS) | set(fastpath.LOGS_VALUES))


def typer_parse_logs(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> LogsOptions:
    from ollamamax_stack.commands import logs

    seen: list[LogsOptions] = []

    def record(registry: Any, options: LogsOptions) -> int:
        seen.append(options)
        return 0

    monkeypatch.setattr(logs, "run_logs", record)
    result = CliRunner().invoke(cli.app, argv, env=ENV)
    assert result.exit_code == 0, result.output
    return seen[0]


LOGS_CASES = [
    ["logs"],
    ["logs", "gateway", "hub", "-f", "-t", "--since", "10m", "--until=2026-12-03T12:00",
     "--grep", "err(or)?", "-v", "--no-prefix", "--json", "-n", "-1"],
    ["logs", "--follow", "--timestamps", "-g", "x", "--invert", "--lines=5", "gateway"],
]


@pytest.mark.parametrize("argv", LOGS_CASES)
def test_logs_fast_and_typer_parse_alike(argv: list[str], monkeypatch: pytest.MonkeyPatch,
                                         project_root: Path) -> None:
    config = ["--config", str(project_root / "config" / "ports.toml")]
    fast = fastpath.parse_logs([*config, *argv], ENV)
    assert fast is not None
    assert fast[1] == typer_parse_logs([*config, *argv], monkeypatch)


@pytest.mark.parametrize("argv", [
    ["logs", "--help"], ["logs", "-ft"], ["logs", "--", "x"], ["logs", "-n", "x"],
    ["logs", "--grep"], ["logs", "--json=1"], ["logs", "--bogus"], ["ports", "logs"],
])
def test_other_logs_command_lines_go_to_typer(argv: list[str]) -> None:
    assert fastpath.parse_logs(argv, ENV) is None
