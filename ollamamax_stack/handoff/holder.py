"""The socket holder: binds every port of the held services once and hands them to each process.

It runs as a supervisord program beside the services. Because it keeps every listening socket
open, a port never refuses while its service restarts: connections wait in the kernel's backlog
until the next process accepts them. Each service process connects to it, takes its sockets
(`take`) and stays connected; when the holder itself is restarted, the ports are still held by
those processes, which hand them back (`give`) to the new holder.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import socket
import socketserver
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ollamamax_stack.errors import OllamamaxError
from ollamamax_stack.handoff import wire
from ollamamax_stack.handoff.paths import holder_socket
from ollamamax_stack.registry.loader import load_registry
from ollamamax_stack.registry.model import Registry
from ollamamax_stack.services.common.sockets import bind_socket

TAKE_WAIT = 10.0  # how long a `take` waits for a port a restarted holder has not got back yet
PARK_WAIT = 2.0  # how long a `park` waits for the service's last process to hang up
PR_SET_PDEATHSIG = 1

Address = tuple[str, int]


def log(message: str) -> None:
    """One line to the holder's log."""
    print(f"{time.strftime('%H:%M:%S')} sockets: {message}", flush=True)


def wanted(registry: Registry) -> dict[str, dict[str, Address]]:
    """service -> port name -> (bind host, port), for every held service of the profile."""
    return {s.name: {n: (registry.bind_host(s), p) for n, p in s.port_map.items()}
            for s in registry.managed if s.held}


@dataclass
class Held:
    """The sockets the holder has, and the processes connected to it."""

    want: dict[str, dict[str, Address]] = field(default_factory=dict)
    sockets: dict[Address, socket.socket] = field(default_factory=dict)
    problems: dict[Address, str] = field(default_factory=dict)
    workers: dict[int, dict[str, Any]] = field(default_factory=dict)  # connection id -> facts
    parked: set[str] = field(default_factory=set)  # services whose ports are closed on purpose
    changed: threading.Condition = field(default_factory=threading.Condition)

    def sync(self, want: dict[str, dict[str, Address]]) -> list[str]:
        """Bind every wanted address not held yet, close those no longer wanted; the problems."""
        with self.changed:
            self.want = want
            addresses = {a for ports in want.values() for a in ports.values()}
            for address in list(self.sockets):
                if address not in addresses:
                    self.sockets.pop(address).close()
                    log(f"closed {address[0]}:{address[1]} (no longer in the registry)")
            self.parked &= set(want)
            owner = {a: s for s, ports in want.items() for a in ports.values()}
            parked = {a for s in self.parked for a in want[s].values()}
            before, self.problems = self.problems, {}
            for address in sorted(addresses - set(self.sockets) - parked, key=lambda a: a[1]):
                try:
                    self.sockets[address] = bind_socket(address[0], address[1], owner[address])
                    log(f"holding {address[0]}:{address[1]} for {owner[address]}")
                except OllamamaxError as exc:
                    # After a restart of the holder the running processes still hold the port:
                    # they give it back when they reconnect.
                    self.problems[address] = str(exc)
                    if address not in before:
                        log(f"waiting for {address[0]}:{address[1]} ({exc})")
            self.changed.notify_all()
            return list(self.problems.values())

    def take(self, service: str, key: int, facts: dict[str, Any]) -> tuple[list[str], list[int]]:
        """The port names and fds of a service, waiting a while for ports being given back.

        A parked service's ports are bound again. The taker counts as connected (`key`) from
        here on, so a `park` can never close the ports under a process that has them.
        """
        deadline = time.monotonic() + TAKE_WAIT
        with self.changed:
            if service in self.parked:
                self.parked.discard(service)
                log(f"{service}: a process takes its ports: bound again")
                self.sync(self.want)
            while True:
                ports = self.want.get(service)
                if ports is None:
                    raise OllamamaxError(f"{service} is not a held service of this stack")
                missing = [a for a in ports.values() if a not in self.sockets]
                if not missing:
                    self.workers[key] = facts
                    # Duplicates: a `sync` may close ours while the answer is on its way.
                    return list(ports), [os.dup(self.sockets[a].fileno())
                                         for a in ports.values()]
                left = deadline - time.monotonic()
                if left <= 0:
                    address = missing[0]
                    why = self.problems.get(address) or "not bound"
                    raise OllamamaxError(f"the stack holds no socket for {address[0]}:"
                                         f"{address[1]}: {why}")
                self.changed.wait(min(left, 0.5))
                self.sync(self.want)  # a port whose holders all died is free to bind again

    def give(self, service: str, names: list[str], fds: list[int]) -> None:
        """Adopt sockets a running process hands back; close the ones not needed."""
        with self.changed:
            ports = self.want.get(service, {})
            for name, fd in zip(names, fds, strict=False):
                sock = socket.socket(fileno=fd)
                address = ports.get(name)
                if address is None or address in self.sockets or sock.getsockname()[
                        1] != address[1]:
                    sock.close()
                    continue
                sock.setblocking(False)
                self.sockets[address] = sock
                self.problems.pop(address, None)
                self.parked.discard(service)  # a process of it serves: not parked
                log(f"got {address[0]}:{address[1]} back from {service}")
            for fd in fds[len(names):]:
                os.close(fd)
            self.changed.notify_all()

    def park(self, service: str, wait: float = PARK_WAIT) -> str | None:
        """Close a service's ports, which nobody will serve now (fatal, stopped), so clients are
        refused at once; None, or why not (a process of it is still connected after `wait`)."""
        deadline = time.monotonic() + wait
        with self.changed:
            ports = self.want.get(service)
            if ports is None:
                return f"{service} is not a held service of this stack"
            while any(w.get("service") == service for w in self.workers.values()):
                left = deadline - time.monotonic()
                if left <= 0:
                    pids = sorted(str(w.get("pid")) for w in self.workers.values()
                                  if w.get("service") == service)
                    return f"{service} still has a process on its ports (pid {', '.join(pids)})"
                self.changed.wait(left)
            if service in self.parked:
                return None
            self.parked.add(service)
            for address in ports.values():
                sock = self.sockets.pop(address, None)
                if sock is not None:
                    sock.close()
                self.problems.pop(address, None)
            log(f"{service}: parked (nobody serves it): "
                + ", ".join(f"{a[0]}:{a[1]}" for a in ports.values()) + " closed until it starts")
            self.changed.notify_all()
            return None

    def forget(self, key: int) -> None:
        """A connected process hung up (it ended, or it drains)."""
        with self.changed:
            if self.workers.pop(key, None) is not None:
                self.changed.notify_all()

    def listing(self) -> dict[str, Any]:
        """What `list` answers: held addresses by service, problems, connected processes."""
        with self.changed:
            return {
                "services": {s: {n: [a[0], a[1], a in self.sockets] for n, a in ports.items()}
                             for s, ports in self.want.items()},
                "problems": list(self.problems.values()),
                "workers": list(self.workers.values()),
                "parked": sorted(self.parked),
            }


class Handler(socketserver.BaseRequestHandler):
    """One connection: a service process (take/give, then stays), or a command (list/sync)."""

    server: Server

    def handle(self) -> None:
        held = self.server.held
        conn: socket.socket = self.request
        key = id(self)
        try:
            while True:
                message, fds = wire.receive(conn)
                op = message.get("op")
                if op == "take":
                    service = str(message.get("service"))
                    try:
                        names, held_fds = held.take(service, key, _facts(message))
                    except OllamamaxError as exc:
                        wire.send(conn, {"ok": False, "error": str(exc)})
                        continue
                    try:
                        wire.send(conn, {"ok": True, "names": names}, held_fds)
                    finally:
                        for fd in held_fds:
                            os.close(fd)
                elif op == "give":
                    held.give(str(message.get("service")), list(message.get("names", [])), fds)
                    wire.send(conn, {"ok": True})
                    self._register(key, message)
                elif op == "park":
                    wait = message.get("wait")
                    problem = held.park(str(message.get("service")), *(
                        [min(float(wait), PARK_WAIT)] if isinstance(wait, int | float) else []))
                    wire.send(conn, {"ok": problem is None, "error": problem})
                elif op == "list":
                    wire.send(conn, {"ok": True, **held.listing()})
                elif op == "sync":
                    problems = held.sync(wanted(self.server.load()))
                    wire.send(conn, {"ok": not problems, "problems": problems})
                else:
                    wire.send(conn, {"ok": False, "error": f"unknown op {op!r}"})
        except OSError:
            pass  # the peer went away (a service process ended)
        except OllamamaxError as exc:
            log(f"cannot sync: {exc}")
        finally:
            held.forget(key)

    def _register(self, key: int, message: dict[str, Any]) -> None:
        with self.server.held.changed:
            self.server.held.workers[key] = _facts(message)


def _facts(message: dict[str, Any]) -> dict[str, Any]:
    """What `list` shows of a connected process."""
    return {"service": message.get("service"), "slot": message.get("slot"),
            "pid": message.get("pid")}


class Server(socketserver.ThreadingUnixStreamServer):
    """The holder's Unix socket server."""

    daemon_threads = True

    def __init__(self, path: Path, held: Held, args: argparse.Namespace) -> None:
        self.held = held
        self.args = args
        super().__init__(str(path), Handler)

    def load(self) -> Registry:
        """The registry as it is now on disk (`sync` after `reload`)."""
        return load_registry(self.args.config, offset=self.args.offset,
                             profile=self.args.profile, run_dir=self.args.run_dir)


def _die_with_parent() -> None:
    # supervisord killed -9 must not leave the ports held by an orphan.
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> int:
    """`python -m ollamamax_stack.handoff.holder --config F --run-dir D [--offset N]`."""
    parser = argparse.ArgumentParser(prog="ollamamax-sockets")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument("--profile", default=None)
    args = parser.parse_args(argv)
    parent = os.getppid()
    _die_with_parent()
    if os.getppid() != parent:
        return 1
    held = Held()
    path = holder_socket(args.run_dir.resolve())
    try:
        registry = load_registry(args.config, offset=args.offset, profile=args.profile,
                                 run_dir=args.run_dir)
        held.sync(wanted(registry))
        path.unlink(missing_ok=True)
        server = Server(path, held, args)
    except (OllamamaxError, OSError) as exc:
        print(f"ollamamax-sockets: error: {exc}", file=sys.stderr, flush=True)
        return 1
    os.chmod(path, 0o600)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    log(f"handing out sockets on {path} (pid {os.getpid()})")
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        path.unlink(missing_ok=True)
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
