"""A throwaway copy of the project's registry and Procfile, for render tests that edit them."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def project_copy(dest: Path, edit: dict[str, str] | None = None,
                 procfile_edit: dict[str, str] | None = None) -> Path:
    """Copy config/ports.toml and procfiles/Procfile under `dest`, applying text replacements."""
    (dest / "config").mkdir(parents=True, exist_ok=True)
    (dest / "procfiles").mkdir(parents=True, exist_ok=True)
    procfile = (ROOT / "procfiles" / "Procfile").read_text()
    for old, new in (procfile_edit or {}).items():
        procfile = procfile.replace(old, new)
    (dest / "procfiles" / "Procfile").write_text(procfile)
    text = (ROOT / "config" / "ports.toml").read_text()
    for old, new in (edit or {}).items():
        assert old in text, f"{old!r} is not in the registry"
        text = text.replace(old, new)
    registry = dest / "config" / "ports.toml"
    registry.write_text(text)
    return registry
