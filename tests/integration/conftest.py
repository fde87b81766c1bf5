"""Fixtures shared by the supervisor's integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.stacks.harness import Stack


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[Any]:
    """Make fixture stacks on free offsets; each is brought down (and swept) afterwards."""
    made: list[Stack] = []

    def make(name: str, run_dir: Path | None = None, config: Path | None = None) -> Stack:
        stack = Stack(name, run_dir or tmp_path / f"run-{len(made)}", config)
        made.append(stack)
        return stack

    yield make
    for stack in made:
        stack.cleanup()
