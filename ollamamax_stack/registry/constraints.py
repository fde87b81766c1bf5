"""Field constraints the model declares without importing pydantic; pydantic reads them lazily.

Each marker sits in an `Annotated[...]` and tells pydantic, through
`__get_pydantic_core_schema__`, how to validate the field, so importing the model (and a check
that finds a validated registry in the cache) never pays for pydantic.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Check:
    """Run `func` on the value after its type is validated (pydantic's AfterValidator)."""

    func: Callable[[Any], Any]

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema

        return core_schema.no_info_after_validator_function(self.func, handler(source))


@dataclass(frozen=True)
class Strict:
    """Take only the exact type: no `"13100"` for a port, no `1` for `true`."""

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        schema = handler(source)
        schema["strict"] = True
        return schema


def matches(pattern: str) -> Check:
    """A string that matches `pattern`."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.match(value):
            raise ValueError(f"String should match pattern '{pattern}'")
        return value

    return Check(check)


def at_least(low: int) -> Check:
    """A number no smaller than `low`."""

    def check(value: int) -> int:
        if value < low:
            raise ValueError(f"Input should be greater than or equal to {low}")
        return value

    return Check(check)


def _positive(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("Input should be a finite number")
    if value <= 0:
        raise ValueError("Input should be greater than 0")
    return value


POSITIVE = Check(_positive)
