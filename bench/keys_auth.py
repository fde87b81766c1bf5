"""What a stored key costs a request: `Authenticator.authenticate` in-process, against an
environment key measured in the same run (the baseline).

(a) an `OLLAMAMAX_API_KEYS` key among 10 (the baseline); (b) a stored key among 1,000 in the
service's copy (sha256 and a dict lookup); (c) the same with the follower reading the change
counter every 0.25 s meanwhile (SQLite). Prints medians per call and ratios to (a).
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ollamamax_stack.keystore.locate import locate, open_store  # noqa: E402
from ollamamax_stack.services.common.apikeys import ApiKey  # noqa: E402
from ollamamax_stack.services.common.auth import Authenticator  # noqa: E402
from ollamamax_stack.services.common.stored_keys import StoredKeys  # noqa: E402

CALLS = 20_000
ROUNDS = 7
STORED = 1000


async def per_call(auth: Authenticator, key: str) -> float:
    """Median seconds per authenticate call over ROUNDS rounds of CALLS."""
    rounds = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(CALLS):
            await auth.authenticate(key)
        rounds.append((time.perf_counter() - start) / CALLS)
    return statistics.median(rounds)


async def main() -> None:
    env_keys = {f"sk-env-{n}": ApiKey(f"env-{n}") for n in range(10)}
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp)
        store = open_store(locate({}, run_dir))
        keys = [store.create(f"k{n}", "user")[0] for n in range(STORED)]
        store.close()
        stored = StoredKeys(locate({}, run_dir), last_used_every=3600)
        stored.refresh()
        auth = Authenticator(env_keys, b"s" * 48, "bench", stored=stored)
        baseline = await per_call(auth, "sk-env-9")
        lookup = await per_call(auth, keys[-1])
        follow = stored.lifecycle(web.Application())  # the follower, as a service runs it
        await follow.__anext__()
        try:
            followed = await per_call(auth, keys[-1])
        finally:
            with contextlib.suppress(StopAsyncIteration):
                await follow.__anext__()
    print(f"(a) environment key         {baseline * 1e6:7.2f} us/call  1.00x (baseline)")
    print(f"(b) stored key (1,000)      {lookup * 1e6:7.2f} us/call  {lookup / baseline:.2f}x")
    print(f"(c) (b) while following     {followed * 1e6:7.2f} us/call  "
          f"{followed / baseline:.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
