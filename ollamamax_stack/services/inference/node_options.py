"""A node's scheduling options: `slots`, `weight`, `tier`, from an `OLLAMA_NODES` entry
(`http://gpu1:11434;slots=2;weight=2;tier=0`) or a registration body (`{"url", "slots"...}`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ollamamax_stack.services.routing.node import DEFAULT_SLOTS

MAX_SLOTS = 256
MAX_TIER = 9


class BadOption(ValueError):
    """An option that is unknown or out of range; the message names it."""


@dataclass(frozen=True)
class NodeOptions:
    """How many requests the node takes at once, its share among its tier, and its tier."""

    slots: int = DEFAULT_SLOTS
    weight: float = 1.0
    tier: int = 0


def _whole(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise BadOption(f"{name} must be a whole number {low}-{high}, got {value!r}")
    try:
        number = int(value)
    except ValueError:
        raise BadOption(f"{name} must be a whole number {low}-{high}, got {value!r}") from None
    if not low <= number <= high:
        raise BadOption(f"{name} must be a whole number {low}-{high}, got {number}")
    return number


def _weight(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadOption(f"weight must be a number > 0, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise BadOption(f"weight must be a number > 0, got {value!r}") from None
    if not 0 < number <= 1000:  # also false for NaN
        raise BadOption(f"weight must be a number in (0, 1000], got {value!r}")
    return number


def node_options(values: dict[str, Any]) -> NodeOptions:
    """Options from a mapping (a registration body's fields, or an entry's `k=v` pairs)."""
    unknown = set(values) - {"slots", "weight", "tier"}
    if unknown:
        raise BadOption(f"unknown node option {sorted(unknown)[0]!r} (known: slots, weight, "
                        "tier)")
    defaults = NodeOptions()
    return NodeOptions(
        slots=_whole("slots", values["slots"], 1, MAX_SLOTS) if "slots" in values
        else defaults.slots,
        weight=_weight(values["weight"]) if "weight" in values else defaults.weight,
        tier=_whole("tier", values["tier"], 0, MAX_TIER) if "tier" in values else defaults.tier)


def parse_entry(entry: str) -> tuple[str, NodeOptions]:
    """`url;slots=2;tier=1` -> (url, options)."""
    url, *pairs = [part.strip() for part in entry.split(";")]
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise BadOption(f"node option {pair!r} of {url} is not name=value")
        values[name.strip()] = value.strip()
    try:
        return url, node_options(values)
    except BadOption as exc:
        raise BadOption(f"{url}: {exc}") from None
