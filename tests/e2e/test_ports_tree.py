"""`ollamamax ports check` on whole trees, as CI runs it: directories, git lists, odd files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = """\
[stack]
drift_files = ["deploy/.env"]

[services.api]
port = 13100
external = true
env_keys = ["API_PORT"]
config_files = ["src/server.js"]

[services.prometheus]
port = 9090
external = true
images = ["prom/prometheus"]
"""


def ollamamax(*args: str, cwd: Path, stdin: str | None = None,
              ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ollamamax_stack", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120, input=stdin)


def tree(root: Path) -> Path:
    """A small repository: a drifting .env, ignored junk, binaries, templates, three servers."""
    files: dict[str, str | bytes] = {
        "ports.toml": REGISTRY,
        "deploy/.env": "API_PORT=13000\n",
        ".gitignore": "build/\n*.log\n",
        "build/docker-compose.yml": "services:\n  x:\n    image: y\n    ports: ['9090:1']\n",
        "debug.log": "listening on http://localhost:9090\n",
        "logo.png": b"\x89PNG\r\n\x1a\n\0\0",
        "app.pyc": b"\xa7\r\r\n\0\0\0\0",
        "chart/templates/svc.yaml": "port: {{ .Values.port }}\n",
        "tsconfig.json": "{\n  // comment\n  \"a\": 1,\n}\n",
        "README.md": "Open http://localhost:13000\n",
        "a/server.js": "const port = process.env.PORT || 3000;\napp.listen(port);\n",
        "b/server.js": "const port = process.env.PORT || 3000;\napp.listen(port);\n",
        "c/server.js": "const port = process.env.PORT || 3000;\napp.listen(port);\n",
        # Third-party code, committed or installed: never the tree's own servers.
        "node_modules/x/server.js": "const port = process.env.PORT || 3000;\napp.listen(port);\n",
        "vendor/y/main.go": 'var port = ":9090"\nhttp.ListenAndServe(":9090", nil)\n',
    }
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


def report(result: subprocess.CompletedProcess[str]) -> list[tuple[object, ...]]:
    assert "Traceback" not in result.stderr, result.stderr
    data = json.loads(result.stdout)
    return sorted((f["code"], f["port"], f["file"], f["line"]) for f in data["findings"])


EXPECTED = [("conflict", 3000, "b/server.js", 1), ("conflict", 3000, "c/server.js", 1),
            ("drift", 13000, "deploy/.env", 1)]


def test_a_git_tree_is_walked_honouring_gitignore(tmp_path: Path) -> None:
    root = tree(tmp_path)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    result = ollamamax("--config", "ports.toml", "ports", "check", "--no-host", ".",
                       "--format", "json", cwd=root)
    assert result.returncode == 1
    assert report(result) == EXPECTED
    text = ollamamax("--config", "ports.toml", "ports", "check", "--no-host", ".", cwd=root)
    # Read: deploy/.env and the three servers; the rest skipped, build/ and *.log never seen.
    assert text.stdout.splitlines()[-1].endswith("; 4 files read, 7 skipped)"), text.stdout


def test_a_git_ls_files_list_is_input(tmp_path: Path) -> None:
    root = tree(tmp_path)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)
    listed = subprocess.run(["git", "-C", str(root), "ls-files"], check=True,
                            capture_output=True, text=True).stdout
    by_args = ollamamax("--config", "ports.toml", "ports", "check", "--no-host",
                        "--format", "json", *listed.split(), cwd=root)
    by_stdin = ollamamax("--config", "ports.toml", "ports", "check", "--no-host",
                         "--format", "json", "-", cwd=root, stdin=listed)
    assert report(by_args) == report(by_stdin) == EXPECTED
    # A list naming vendored code (a committed node_modules/) still leaves it out.
    vendored = ollamamax("--config", "ports.toml", "ports", "check", "--no-host", "--format",
                         "json", "node_modules/x/server.js", "a/server.js", "b/server.js",
                         cwd=root)
    assert report(vendored) == [("conflict", 3000, "b/server.js", 1),
                                ("drift", 13000, "deploy/.env", 1)]


def test_a_tree_outside_git_honours_gitignore_with_pathspec(tmp_path: Path) -> None:
    root = tree(tmp_path)
    result = ollamamax("--config", "ports.toml", "ports", "check", "--no-host", ".",
                       "--format", "json", cwd=root)
    assert report(result) == EXPECTED


def test_a_fifo_and_a_device_are_skipped_never_read(tmp_path: Path) -> None:
    root = tree(tmp_path)
    os.mkfifo(root / "pipe.env")
    (root / "linked").symlink_to(root / "a")
    (root / "dangling.yml").symlink_to(root / "nowhere.yml")
    walked = ollamamax("--config", "ports.toml", "ports", "check", "--no-host", ".",
                       "--format", "json", cwd=root)
    assert report(walked) == EXPECTED  # links are not followed: no error, no loop
    result = ollamamax("--config", "ports.toml", "ports", "check", "--no-host", "pipe.env",
                       "/dev/null", "deploy/.env", cwd=root)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "2 skipped" in result.stdout.splitlines()[-1]


def test_findings_name_the_registrys_files_relative_to_the_working_directory(
        tmp_path: Path) -> None:
    root = tree(tmp_path)
    (root / "sub").mkdir()
    result = ollamamax("--config", "../ports.toml", "ports", "check", "--no-host",
                       "--format", "json", cwd=root / "sub")
    assert report(result) == [("drift", 13000, os.path.join("..", "deploy", ".env"), 1)]


def test_an_exclusion_applies_inside_a_walked_directory(tmp_path: Path) -> None:
    from ollamamax_stack.ports.drift import scan
    from ollamamax_stack.registry import load_registry

    root = tree(tmp_path)
    registry = load_registry(root / "ports.toml")
    everything = scan(registry, [root])
    without_b = scan(registry, [root], excluded=lambda p, named: p.parent.name == "b")
    assert len([f for f in everything.findings if f.code == "conflict"]) == 2
    assert len([f for f in without_b.findings if f.code == "conflict"]) == 1
