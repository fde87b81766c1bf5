"""The worker limits the stack's own services declare beside their definitions.

The registry reads this table when a service asks for more than one worker. It imports only the
services' package `__init__` modules (constants), never their apps: the registry is on the
`ports check` fast path. A service not named here takes the registry's range (1-64, "auto").
"""

from __future__ import annotations

from ollamamax_stack.services import inference

# own service name (`ollamamax serve NAME`) -> (most workers, why no more)
WORKER_LIMITS: dict[str, tuple[int, str]] = {
    "inference": (inference.MAX_WORKERS, inference.MAX_WORKERS_WHY),
}
