"""The supervisord config: supervisord's own parser reads it back to what the registry says."""

from __future__ import annotations

from pathlib import Path

import pytest
from supervisor.options import ServerOptions

from ollamamax_stack.registry import load_registry
from ollamamax_stack.render.supervisord import render_supervisord
from ollamamax_stack.supervise.config import (
    ConfigError,
    environment_value,
    executable,
    shell_command,
)
from ollamamax_stack.supervise.paths import SOCKET_PATH_MAX, RunPaths

STACKS = Path(__file__).resolve().parents[1] / "fixtures" / "stacks"


def _parsed(text: str, tmp_path: Path) -> ServerOptions:
    conf = tmp_path / "supervisord.conf"
    conf.write_text(text)
    options = ServerOptions()
    options.realize(["-c", str(conf)])
    return options


def test_supervisord_reads_every_program_as_rendered(tmp_path: Path) -> None:
    registry = load_registry(STACKS / "basic" / "ports.toml", offset=7, run_dir=tmp_path / "run")
    RunPaths(registry.run_dir).prepare()  # supervisord insists its log directories exist
    options = _parsed(render_supervisord(registry), tmp_path)
    programs = {g.name: g.process_configs[0] for g in options.process_group_configs}
    watcher = programs.pop("ollamamax-watcher")
    assert set(programs) == {"db", "api", "worker", "stubborn", "edge"}
    # The watcher is supervisord's event listener, restarted by it like any program.
    assert type(watcher).__name__ == "EventListenerConfig"
    assert watcher.autorestart and watcher.autostart
    assert watcher.stderr_logfile == str(tmp_path / "run" / "watcher.log")
    assert "--offset 7" in watcher.command
    api = programs["api"]
    assert (api.autostart, api.autorestart, api.startsecs) == (False, False, 0)
    assert api.stopasgroup and api.killasgroup and api.redirect_stderr
    assert api.stdout_logfile == str(tmp_path / "run" / "logs" / "api.log")
    assert api.environment["PORT"] == str(21002 + 7)
    assert api.environment["PORT_ADMIN"] == str(21006 + 7)
    assert api.environment["OLLAMAMAX_DB_URL"] == f"http://127.0.0.1:{21001 + 7}"
    assert options.server_configs[0]["file"] == str(tmp_path / "run" / "supervisord.sock")


def test_percent_signs_and_commas_survive_supervisords_parser(tmp_path: Path) -> None:
    registry = load_registry(STACKS / "basic" / "ports.toml", run_dir=tmp_path / "run%20x")
    RunPaths(registry.run_dir).prepare()
    options = _parsed(render_supervisord(registry), tmp_path)
    db = next(g for g in options.process_group_configs if g.name == "db").process_configs[0]
    assert db.environment["OLLAMAMAX_RUN_DIR"] == str(tmp_path / "run%20x")
    assert db.environment["OLLAMAMAX_SUPERVISOR"] == str(tmp_path / "run%20x")
    line = environment_value("URL", "http://x/?a=1,b=2%3")
    assert line == 'URL="http://x/?a=1,b=2%%3"'


def test_values_supervisord_cannot_carry_are_refused() -> None:
    with pytest.raises(ConfigError, match="line break"):
        environment_value("K", "a\nb")
    with pytest.raises(ConfigError, match="both kinds of quotes"):
        environment_value("K", "it's \"x\"")
    assert environment_value("K", 'say "hi" now') == "K='say \"hi\" now'"


def test_commands_with_shell_syntax_are_wrapped_with_exec() -> None:
    assert shell_command("python3 app.py --port 1") == "python3 app.py --port 1"
    assert shell_command("redis-server --port $PORT") == (
        "/bin/sh -c 'exec redis-server --port $PORT'")
    assert shell_command("a && b") == "/bin/sh -c 'a && b'"  # no exec: it is not one command
    assert shell_command("sh -c 'a; exec b'") == "sh -c 'a; exec b'"  # one shell, not two
    assert executable("FOO=1 redis-server --port $PORT") == "redis-server"
    assert executable("$CMD run") is None


def test_a_deep_run_dir_gets_a_short_socket_elsewhere(tmp_path: Path) -> None:
    deep = tmp_path / ("x" * 120)
    socket = RunPaths(deep).socket
    assert len(str(socket)) <= SOCKET_PATH_MAX and deep not in socket.parents
    assert RunPaths(deep).socket == socket  # the same place every time: status can find it
    assert RunPaths(tmp_path).socket == tmp_path / "supervisord.sock"
