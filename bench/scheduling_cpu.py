"""Gateway CPU per request with slots and the queue against today's least-in-flight, one run.

Two stacks of this checkout (inference + gateway) side by side in front of the same stand-in
node (4 slots, `--num-parallel 4`): one with `OLLAMAMAX_ROUTING=slots` (the default: a
stack-wide slot per request, the queue when the four are taken), one with
`OLLAMAMAX_ROUTING=least-in-flight`. `wrk` (16 connections, so the slots stack queues 12)
loads each gateway in turn, interleaved; the figure is the gateways' CPU ms per 1,000
requests and its ratio, whole and streamed answers. Also the cost of one slot taken and
given back (two `flock` calls) measured alone. Issue 19's target: ratio <= 1.1.
Run: .venv/bin/python -m bench.scheduling_cpu [--seconds 4] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.gateway_baseline import interleaved, stack  # noqa: E402
from ollamamax_stack.services.routing.node import Node  # noqa: E402
from ollamamax_stack.services.routing.slots import SlotLocks  # noqa: E402
from tests.integration.services_procs import ROOT, fake_nodes  # noqa: E402

MODES = {"slots": {"OLLAMAMAX_ROUTING": "slots"},
         "least-in-flight": {"OLLAMAMAX_ROUTING": "least-in-flight"}}


def slot_cost(folder: Path, rounds: int = 100_000) -> float:
    """Microseconds to take and give back one slot of a node (flock on a run-dir file)."""
    locks = SlotLocks(folder / "slots")
    node = Node(url="http://127.0.0.1:1", slots=4)
    started = time.perf_counter()
    for _ in range(rounds):
        lease = locks.take(node)
        assert lease is not None
        lease.release()
    spent = time.perf_counter() - started
    locks.close()
    return 1e6 * spent / rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--slots", type=int, default=4, help="the node's slots (and its "
                        "--num-parallel)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        node = fake_nodes(folder, [("fast", "llama3.2",
                                         ["--num-parallel", str(args.slots)])])[0].start()
        taken: list[int] = []
        try:
            entry = f"{node.url};slots={args.slots}"
            with stack(ROOT, sys.executable, entry, folder / "slots", taken,
                       MODES["slots"]) as slots, \
                    stack(ROOT, sys.executable, node.url, folder / "lif", taken,
                          MODES["least-in-flight"]) as lif:
                per_k, rates = interleaved({"slots": slots, "least-in-flight": lif}, folder,
                                           args.seconds, args.repeats, args.connections)
            cost = slot_cost(folder)
        finally:
            assert node.proc is not None
            node.proc.stop()
    print(f"gateway CPU ms per 1,000 plain chat requests (wrk, {args.connections} "
          f"connections on a node of {args.slots} slots, {args.seconds:g}s runs, {args.repeats} "
          "interleaved repeats, medians)")
    for kind, figures in per_k.items():
        new = statistics.median(figures["slots"])
        old = statistics.median(figures["least-in-flight"])
        print(f"  {kind:<9} slots {new:7.1f}   least-in-flight {old:7.1f}   "
              f"ratio {new / old:.3f}   (runs: slots "
              f"{' '.join(f'{v:.0f}' for v in figures['slots'])}; least-in-flight "
              f"{' '.join(f'{v:.0f}' for v in figures['least-in-flight'])}; requests/s "
              f"{statistics.median(rates[kind]['slots']):.0f} vs "
              f"{statistics.median(rates[kind]['least-in-flight']):.0f})")
    print(f"one slot taken and given back (flock, run dir): {cost:.2f} us")


if __name__ == "__main__":
    main()
