"""Start-up fast path: read `ollamamax [globals] ports check|logs ...` from argv without typer.

pre-commit runs the check on every commit, so its start-up counts; `logs --grep` is meant to
stay near `grep` itself. Anything this parser does not
know for certain (help, `--`, an unknown option, a bad value) returns None and typer, which
defines the command line, handles it as always; tests keep the two in step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from ollamamax_stack.commands.check_run import CheckOptions
from ollamamax_stack.commands.common import GlobalOptions
from ollamamax_stack.commands.logs_run import LogsOptions
from ollamamax_stack.markers import RUN_DIR_ENV

# option -> (GlobalOptions field, environment variable), as the root callback declares them.
GLOBAL_OPTIONS = {"--config": ("config", "OLLAMAMAX_CONFIG"), "-c": ("config", "OLLAMAMAX_CONFIG"),
                  "--run-dir": ("run_dir", RUN_DIR_ENV),
                  "--offset": ("offset", "OLLAMAMAX_OFFSET"),
                  "--profile": ("profile", "OLLAMAMAX_PROFILE"),
                  "-p": ("profile", "OLLAMAMAX_PROFILE")}
CHECK_FLAGS = {"--no-host": "no_host", "--strict": "strict", "--fix": "fix", "--diff": "diff"}
CHECK_VALUES = {"--format": "output", "-f": "output", "--exclude": "exclude"}
LOGS_FLAGS = {"--follow": "follow", "-f": "follow", "--timestamps": "timestamps",
              "-t": "timestamps", "--invert": "invert", "-v": "invert",
              "--no-prefix": "no_prefix", "--json": "as_json"}
LOGS_VALUES = {"--lines": "lines", "-n": "lines", "--since": "since", "--until": "until",
               "--grep": "grep", "-g": "grep"}


def _split(arg: str) -> tuple[str, str | None]:
    if arg.startswith("--") and "=" in arg:
        name, _, value = arg.partition("=")
        return name, value
    return arg, None


def _globals(args: Sequence[str], environ: Mapping[str, str]) -> tuple[GlobalOptions, int] | None:
    values: dict[str, str] = {}
    index = 0
    while index < len(args) and args[index].startswith("-"):
        name, value = _split(args[index])
        if name not in GLOBAL_OPTIONS:
            return None
        if value is None:
            index += 1
            if index >= len(args):
                return None
            value = args[index]
        values[GLOBAL_OPTIONS[name][0]] = value
        index += 1
    for field, env in set(GLOBAL_OPTIONS.values()):
        if field not in values and environ.get(env):
            values[field] = environ[env]
    try:
        offset = int(values.get("offset", "0"))
    except ValueError:
        return None  # typer says what is wrong with it
    config, run_dir = values.get("config"), values.get("run_dir")
    return GlobalOptions(config=Path(config) if config else None,
                         run_dir=Path(run_dir) if run_dir else None,
                         offset=offset, profile=values.get("profile")), index


def parse(argv: Sequence[str], environ: Mapping[str, str]) -> tuple[GlobalOptions,
                                                                     CheckOptions] | None:
    """The options of a plain `ports check` invocation, or None for typer to handle."""
    head = _globals(argv, environ)
    if head is None:
        return None
    globals_, index = head
    if list(argv[index:index + 2]) != ["ports", "check"]:
        return None
    flags: dict[str, bool] = {}
    output = "text"
    exclude: list[str] = []
    files: list[Path] = []
    rest = list(argv[index + 2:])
    while rest:
        arg = rest.pop(0)
        if not arg.startswith("-") or arg == "-":
            files.append(Path(arg))
            continue
        name, value = _split(arg)
        if name in CHECK_FLAGS and value is None:
            flags[CHECK_FLAGS[name]] = True
        elif name in CHECK_VALUES:
            if value is None:
                if not rest:
                    return None
                value = rest.pop(0)
            if CHECK_VALUES[name] == "output":
                output = value
            else:
                exclude.append(value)
        else:
            return None  # --help, --, -fjson, an unknown option: typer's to answer
    return globals_, CheckOptions(files=files, output=output, exclude=exclude, **flags)


def parse_logs(argv: Sequence[str], environ: Mapping[str, str]) -> tuple[GlobalOptions,
                                                                          LogsOptions] | None:
    """The options of a plain `logs` invocation, or None for typer to handle."""
    head = _globals(argv, environ)
    if head is None:
        return None
    globals_, index = head
    if list(argv[index:index + 1]) != ["logs"]:
        return None
    values: dict[str, object] = {}
    services: list[str] = []
    rest = list(argv[index + 1:])
    while rest:
        arg = rest.pop(0)
        if not arg.startswith("-") or arg == "-":
            services.append(arg)
            continue
        name, value = _split(arg)
        if name in LOGS_FLAGS and value is None:
            values[LOGS_FLAGS[name]] = True
        elif name in LOGS_VALUES:
            if value is None:
                if not rest:
                    return None
                value = rest.pop(0)
            if LOGS_VALUES[name] == "lines":
                try:
                    values["lines"] = int(value)
                except ValueError:
                    return None  # typer says what is wrong with it
            else:
                values[LOGS_VALUES[name]] = value
        else:
            return None  # --help, --, -ft, an unknown option: typer's to answer
    return globals_, LogsOptions(services=services, **values)  # type: ignore[arg-type]
