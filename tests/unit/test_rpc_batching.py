"""Calls made together go to supervisord in one system.multicall, and each caller still gets
its own answer: its result, its own fault, or its own cancellation."""

from __future__ import annotations

import asyncio
import xmlrpc.client
from pathlib import Path
from typing import Any

import pytest

from ollamamax_stack.supervise.rpc import BAD_NAME, AsyncSupervisor, SupervisorFault

PROGRAMS = {"a": 101, "b": 102, "c": 103}


def _info(name: str) -> dict[str, Any]:
    return {"name": name, "statename": "RUNNING", "pid": PROGRAMS[name], "exitstatus": 0,
            "start": 1.0, "stop": 0.0}


def _one(method: str, params: list[Any]) -> Any:
    """One call as supervisord answers it: a value, or a fault (raised)."""
    name = params[0]
    if name not in PROGRAMS:
        raise xmlrpc.client.Fault(BAD_NAME, f"BAD_NAME: {name}")
    return _info(name) if method == "supervisor.getProcessInfo" else True


class Recorder:
    """A supervisord stand-in on a Unix socket that records each request's method(s)."""

    def __init__(self) -> None:
        self.requests: list[list[str]] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length")))
        params, method = xmlrpc.client.loads(await reader.readexactly(length))
        await asyncio.sleep(0.05)  # a supervisord busy with what it just forked
        if method == "system.multicall":
            calls = params[0]
            self.requests.append([c["methodName"] for c in calls])
            results: list[Any] = []
            for call in calls:
                try:
                    results.append(_one(call["methodName"], call["params"]))
                except xmlrpc.client.Fault as fault:
                    results.append({"faultCode": fault.faultCode,
                                    "faultString": fault.faultString})
            body = xmlrpc.client.dumps((results,), methodresponse=True)
        else:
            self.requests.append([str(method)])
            try:
                body = xmlrpc.client.dumps((_one(str(method), list(params)),),
                                           methodresponse=True)
            except xmlrpc.client.Fault as fault:
                body = xmlrpc.client.dumps(fault, methodresponse=True)
        data = body.encode()
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/xml\r\nContent-Length: "
                     + str(len(data)).encode() + b"\r\n\r\n" + data)
        await writer.drain()
        writer.close()


def _run(tmp_path: Path, scenario: Any) -> Recorder:
    recorder = Recorder()

    async def main() -> None:
        path = tmp_path / "supervisord.sock"
        server = await asyncio.start_unix_server(recorder.handle, str(path))
        try:
            await scenario(AsyncSupervisor(path, timeout=10))
        finally:
            server.close()

    asyncio.run(main())
    return recorder


def test_calls_made_together_are_one_request_each_with_its_own_answer(tmp_path: Path) -> None:
    async def scenario(client: AsyncSupervisor) -> None:
        infos = await asyncio.gather(*(client.info(n) for n in ("a", "b", "c")))
        assert [i.pid for i in infos] == [101, 102, 103]
        await asyncio.gather(client.start("a"), client.start("b"))

    recorder = _run(tmp_path, scenario)
    assert recorder.requests == [["supervisor.getProcessInfo"] * 3,
                                 ["supervisor.startProcess"] * 2]


def test_a_fault_reaches_only_its_caller(tmp_path: Path) -> None:
    async def scenario(client: AsyncSupervisor) -> None:
        found = await asyncio.gather(client.info("a"), client.info("nope"), client.info("c"),
                                     return_exceptions=True)
        assert found[0].pid == 101 and found[2].pid == 103  # type: ignore[union-attr]
        assert isinstance(found[1], SupervisorFault) and found[1].code == BAD_NAME
        assert "getProcessInfo('nope',)" in str(found[1])
        with pytest.raises(SupervisorFault):  # alone: a plain call, the same fault
            await client.start("nope")

    recorder = _run(tmp_path, scenario)
    assert recorder.requests[-1] == ["supervisor.startProcess"]


def test_calls_made_while_one_is_on_its_way_wait_for_the_next_request(tmp_path: Path) -> None:
    async def scenario(client: AsyncSupervisor) -> None:
        first = asyncio.ensure_future(client.info("a"))
        await asyncio.sleep(0.01)  # on its way now
        later = [asyncio.ensure_future(client.info(n)) for n in ("b", "c")]
        cancelled = asyncio.ensure_future(client.info("a"))
        await asyncio.sleep(0)
        cancelled.cancel()  # its caller gave up: the others still get theirs
        assert (await first).pid == 101
        assert [(await f).pid for f in later] == [102, 103]

    recorder = _run(tmp_path, scenario)
    assert recorder.requests[0] == ["supervisor.getProcessInfo"]
    assert len(recorder.requests) == 2 and len(recorder.requests[1]) in (2, 3)
