"""Wall time of `ollamamax ports check --no-host`, against a bare interpreter start in the same run.

(a) the project's registry and its drift files (the validated registry in the cache); (a') the
same with the cache unusable, so pydantic validates the registry each time; (a'') the walk of
the whole checkout, as the pre-commit hook runs it (`ports check --no-host .`);
(b) a generated registry of 1,000 services with 50 drift files;
(c) the real-world corpus of tests/corpus, as a ratio to (a).
Targets: (a) within 5x `python3 -c pass`; (b) within 3x (a). Prints medians and ratios.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OLLAMAMAX = Path(sys.executable).parent / "ollamamax"
RUNS = 9
SERVICES = 1000
FILES = 50
PER_FILE = 100  # services each drift file mentions
BASE_PORT = 20000


def write_big_stack(root: Path) -> Path:
    """A registry of SERVICES external services and FILES drift files that agree with it."""
    names = [f"svc{i}" for i in range(SERVICES)]
    files: list[str] = []
    for n in range(FILES):
        chosen = [(names[(n * PER_FILE + k) % SERVICES], BASE_PORT + (n * PER_FILE + k) % SERVICES)
                  for k in range(PER_FILE)]
        kind = n % 5
        if kind == 0:
            name = f"env/{n}.env"
            text = "".join(f"{s.upper()}_PORT={p}\n{s.upper()}_URL=http://localhost:{p}/v1\n"
                           for s, p in chosen)
        elif kind == 1:
            name = f"compose/{n}.yml"
            text = "services:\n" + "".join(
                f"  {s}:\n    image: x\n    ports:\n      - \"{p}:{p}\"\n"
                f"    environment:\n      - PORT={p}\n" for s, p in chosen)
        elif kind == 2:
            name = f"nginx/{n}.conf"
            text = "".join(f"upstream {s} {{\n  server 127.0.0.1:{p};\n}}\n" for s, p in chosen)
        elif kind == 3:
            name = f"web/{n}.js"
            text = "".join(f"export const {s.upper()}_BASE = 'http://localhost:{p}/api';\n"
                           for s, p in chosen)
        else:
            name = f"prom/{n}.yml"
            text = "scrape_configs:\n" + "".join(
                f"  - job_name: {s}\n    static_configs:\n      - targets: ['127.0.0.1:{p}']\n"
                for s, p in chosen)
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        files.append(name)
    lines = ["[stack]", 'name = "big"', "drift_files = ["]
    lines += [f'  "{name}",' for name in files]
    lines.append("]")
    for i, name in enumerate(names):
        lines += [f"[services.{name}]", f"port = {BASE_PORT + i}", "external = true",
                  f'env_keys = ["{name.upper()}_PORT", "{name.upper()}_URL", '
                  f'"{name.upper()}_BASE"]', f'compose_names = ["{name}"]']
    registry = root / "ports.toml"
    registry.write_text("\n".join(lines) + "\n")
    return registry


def wall(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    """Wall time of one run; the command must exit 0 (a failing check is not a benchmark)."""
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {result.returncode}:\n"
                         f"{result.stdout}{result.stderr}")
    return elapsed


def medians(commands: list[tuple[list[str], Path, dict[str, str] | None]]) -> list[float]:
    """Median wall time of each command, runs interleaved so a busy machine slows all alike."""
    samples: list[list[float]] = [[] for _ in commands]
    for round_ in range(RUNS + 1):
        for index, (command, cwd, env) in enumerate(commands):
            elapsed = wall(command, cwd, env)
            if round_:  # the first round warms the page cache
                samples[index].append(elapsed)
    return [statistics.median(s) for s in samples]


CORPUS = ROOT / "tests" / "corpus"


def corpus_run() -> None:
    """(c) The real-world corpus (tests/corpus, a directory walk) against the default check.

    The corpus holds labelled errors, so its check exits 1; each run must exit 0 or 1, never 2.
    """
    commands = [[str(OLLAMAMAX), "ports", "check", "--no-host"],
                [str(OLLAMAMAX), "ports", "check", "--no-host", str(CORPUS)]]
    samples: list[list[float]] = [[], []]
    for round_ in range(RUNS + 1):
        for index, command in enumerate(commands):
            start = time.perf_counter()
            result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
            elapsed = time.perf_counter() - start
            if result.returncode not in (0, 1):
                raise SystemExit(f"{' '.join(command)} exited {result.returncode}:\n"
                                 f"{result.stdout}{result.stderr}")
            if round_:
                samples[index].append(elapsed)
    default, corpus = (statistics.median(s) for s in samples)
    files = sum(1 for p in CORPUS.rglob("*") if p.is_file())
    print(f"(c) ... + corpus, {files} files          {corpus * 1000:8.1f} ms  "
          f"{corpus / default:5.1f}x default check")


def main() -> None:
    # An installed package runs from bytecode; this shell may set PYTHONDONTWRITEBYTECODE.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "ollamamax_stack")],
                   check=True)
    with tempfile.TemporaryDirectory() as tmp:
        big = write_big_stack(Path(tmp))
        # A cache directory below a plain file can be neither read nor written: every run
        # validates the registry with pydantic, as the first run after an edit does.
        (Path(tmp) / "not-a-directory").write_text("")
        cold = {**os.environ, "OLLAMAMAX_CACHE_DIR": str(Path(tmp) / "not-a-directory" / "c")}
        warm = {**os.environ, "OLLAMAMAX_CACHE_DIR": str(Path(tmp) / "cache")}
        check = [str(OLLAMAMAX), "ports", "check", "--no-host"]
        bare, default, uncached, walked, large = medians([
            ([sys.executable, "-c", "pass"], ROOT, None),
            (check, ROOT, warm),
            (check, ROOT, cold),
            ([*check, "."], ROOT, warm),
            ([str(OLLAMAMAX), "--config", str(big), "ports", "check", "--no-host"], Path(tmp),
             warm),
        ])
    print(f"python3 -c pass                          {bare * 1000:8.1f} ms")
    print(f"(a) ports check --no-host, default       {default * 1000:8.1f} ms  "
          f"{default / bare:5.1f}x bare  (target <= 5x)")
    print(f"(a') ... registry not in the cache       {uncached * 1000:8.1f} ms  "
          f"{uncached / bare:5.1f}x bare")
    print(f"(a'') ... the hook, the checkout walked  {walked * 1000:8.1f} ms  "
          f"{walked / bare:5.1f}x bare")
    print(f"(b) ... {SERVICES} services, {FILES} drift files {large * 1000:8.1f} ms  "
          f"{large / default:5.1f}x (a)   (target <= 3x)")
    corpus_run()


if __name__ == "__main__":
    main()
