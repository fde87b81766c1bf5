"""The real-world corpus (tests/corpus): recall of the labelled errors, and no false error."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from ollamamax_stack.ports.drift import scan
from ollamamax_stack.registry import load_registry

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "corpus"

Key = tuple[str, str, int, int]  # file (corpus-relative), code, port, line


def labels() -> tuple[set[Key], dict[tuple[str, int], str]]:
    """The must-errors, and the places where an error would be false."""
    data = tomllib.loads((CORPUS / "labels.toml").read_text())
    must: set[Key] = set()
    false: dict[tuple[str, int], str] = {}
    for name, entry in data.items():
        assert (CORPUS / name).is_file(), f"labels.toml names a missing file {name}"
        for item in entry.get("must", []):
            must.add((name, item["code"], item["port"], item["line"]))
        for item in entry.get("false", []):
            false[(name, item["line"])] = item["why"]
    return must, false


def test_the_corpus_recall_and_no_false_error(capsys: pytest.CaptureFixture[str],
                                              tmp_path: Path) -> None:
    must, false_places = labels()
    # The default registry's services, without its own drift files: only the corpus is counted.
    text = (ROOT / "config" / "ports.toml").read_text()
    text = re.sub(r"drift_files = \[[^\]]*\]", "drift_files = []", text)
    (tmp_path / "ports.toml").write_text(text.replace('root = ".."', f'root = "{ROOT}"'))
    registry = load_registry(tmp_path / "ports.toml")
    result = scan(registry, [CORPUS])
    errors: set[Key] = set()
    for finding in result.findings:
        if finding.level != "error" or finding.file is None:
            continue
        path = Path(finding.file).resolve()
        assert CORPUS in path.parents, f"an error outside the corpus: {finding}"
        errors.add((path.relative_to(CORPUS).as_posix(), finding.code, finding.port or 0,
                    finding.line or 0))
    found = errors & must
    false_errors = errors - must
    recall = len(found) / len(must)
    precision = len(found) / len(errors) if errors else 1.0
    with capsys.disabled():
        print(f"\ncorpus: {result.read} files read, {result.skipped} skipped; "
              f"{len(must)} must-errors, {len(errors)} errors reported; "
              f"recall {recall:.0%}, precision {precision:.0%}, "
              f"{len(false_errors)} false errors")
    hit_false = sorted(f"{k[0]}:{k[3]} {k[1]} ({false_places[(k[0], k[3])]})"
                       for k in errors if (k[0], k[3]) in false_places)
    assert not hit_false, hit_false
    assert not false_errors, sorted(false_errors)
    assert recall >= 0.95, sorted(must - found)
    assert result.read >= 30


def test_the_corpus_keeps_each_sources_licence() -> None:
    readme = (CORPUS / "README.md").read_text()
    for source in sorted(p for p in CORPUS.iterdir() if p.is_dir()):
        licences = [p for p in source.iterdir() if p.name.upper().startswith("LICENSE")]
        assert licences, f"{source.name} has no licence notice"
        assert source.name in readme, f"README.md does not list {source.name}"
