"""Which Host names and Origins a service answers: none that a rebinding or foreign page uses."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from ollamamax_stack.services.common.errors import error_middleware
from ollamamax_stack.services.common.guard import (
    allowed_hosts,
    browser_guard,
    host_allowed,
    host_name,
)
from ollamamax_stack.services.common.settings import ServiceSettings, page_origins


def settings(host: str = "127.0.0.1", **extra: object) -> ServiceSettings:
    return ServiceSettings(name="gateway", host=host, ports={"main": 1}, env={},
                           run_dir=Path("."), **extra)  # type: ignore[arg-type]


def test_host_names_a_rebinding_page_cannot_use() -> None:
    names = allowed_hosts(settings(hosts=["ollamamax.lan", "gateway"]))
    for header in ("localhost:1", "127.0.0.1:1", "[::1]:1", "OllamaMax.LAN.", "gateway:1",
                   "127.0.0.2"):
        assert host_allowed(host_name(header), names, wildcard=False), header
    for header in ("evil.example:1", "localhost.evil.example", "10.0.0.5:1", "0.0.0.0:1",
                   "gateway.evil.example"):
        assert not host_allowed(host_name(header), names, wildcard=False), header
    # Bound to every interface (containers, Kubernetes): the pod's private IP is fine.
    assert host_allowed("10.244.1.5", names, wildcard=True)
    assert not host_allowed("evil.example", names, wildcard=True)


def statuses(service: ServiceSettings, requests: list[tuple[str, dict[str, str], str]],
             json_paths: tuple[str, ...] = ()) -> list[int]:
    """The status of each (method, headers, path) on a real server behind the guard; a
    header value may name `{port}`, the server's own port."""

    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def run() -> list[int]:
        app = web.Application(middlewares=[error_middleware,
                                           browser_guard(service, json_paths)])
        app.router.add_route("*", "/{tail:.*}", hello)
        async with TestServer(app, host="127.0.0.1") as server, ClientSession() as session:
            out = []
            for method, headers, path in requests:
                sent = {k: v.format(port=server.port) for k, v in headers.items()}
                async with session.request(method, server.make_url(path), headers=sent,
                                           data=None if method == "GET" else b"x=1") as resp:
                    out.append(resp.status)
            return out

    return asyncio.run(run())


def test_a_page_of_the_service_itself_is_served_and_one_on_another_local_port_is_not() -> None:
    assert statuses(settings(), [
        ("GET", {}, "/v1/models"),  # no Origin: curl, the SDKs
        ("GET", {"Origin": "http://127.0.0.1:{port}"}, "/v1/models"),  # its own page
        ("GET", {"Origin": "http://127.0.0.1:{port}1"}, "/v1/models"),
        ("GET", {"Origin": "http://127.0.0.1"}, "/v1/models"),
        ("GET", {"Origin": "http://localhost:{port}"}, "/v1/models"),  # another host name
    ]) == [200, 200, 403, 403, 403]


def test_listed_origins_foreign_hosts_and_non_json_changes() -> None:
    service = settings(cors=["http://localhost:3000/"], hosts=["ollamamax.lan"])
    assert statuses(service, [
        ("GET", {"Origin": "http://LOCALHOST:3000"}, "/x"),
        ("GET", {"Origin": "http://localhost:3001"}, "/x"),
        ("GET", {"Host": "evil.example:{port}"}, "/x"),
        ("GET", {"Host": "ollamamax.lan"}, "/x"),
        ("POST", {"Content-Type": "text/plain"}, "/auth/token"),
        ("POST", {"Content-Type": "application/json"}, "/auth/token"),
        ("POST", {"Content-Type": "application/merge-patch+json"}, "/auth/token"),
        ("POST", {"Content-Type": "text/plain"}, "/api/chat"),  # model calls take curl -d
    ], json_paths=("/auth",)) == [200, 403, 403, 200, 415, 200, 200, 200]


def test_host_headers_lose_port_brackets_case_and_the_final_dot() -> None:
    assert host_name(" [::1]:80 ") == "::1"
    assert host_name("[::1]") == "::1"
    assert host_name("A.Lan.:13100") == "a.lan"
    assert host_name("a.lan") == "a.lan"
    assert host_name("fe80::1") == "fe80::1"  # a bare IPv6 address has no port to drop


def test_the_names_of_a_bind_address_and_of_a_wildcard_bind() -> None:
    names = allowed_hosts(settings(host="10.1.2.3"))
    assert {"localhost", "127.0.0.1", "::1", "10.1.2.3"} <= names
    wildcard = allowed_hosts(settings(host="0.0.0.0"))
    assert {"localhost", "127.0.0.1", "::1", socket.gethostname().lower(),
            socket.getfqdn().lower()} <= wildcard
    assert "0.0.0.0" not in wildcard


def test_a_wildcard_bind_serves_private_addresses_and_a_loopback_bind_does_not() -> None:
    requests = [("GET", {"Host": "10.0.0.5:{port}"}, "/x"),
                ("GET", {"Host": "10.0.0.5:{port}"}, "/x")]  # the second from the memory
    assert statuses(settings(host="0.0.0.0"), requests) == [200, 200]
    assert statuses(settings(), requests) == [403, 403]


def test_json_only_paths_and_what_counts_as_json() -> None:
    assert statuses(settings(), [
        ("POST", {"Content-Type": "application/json; charset=utf-8"}, "/auth/token"),
        ("POST", {"Content-Type": "application/json;a=1;b=2"}, "/auth/token"),
        ("POST", {"Content-Type": "application/x-www-form-urlencoded"}, "/auth/token"),
        ("POST", {"Content-Type": "text/x+json"}, "/auth/token"),
        ("POST", {"Content-Type": "text/plain"}, "/auth"),
        ("POST", {"Content-Type": "text/plain"}, "/authority"),  # another path
        ("GET", {"Content-Type": "text/plain"}, "/auth/me"),  # reads change nothing
    ], json_paths=("/auth/",)) == [200, 200, 415, 415, 200, 200, 200]
    assert statuses(settings(), [
        ("POST", {"Content-Type": "text/plain"}, "/auth"),
        ("DELETE", {"Content-Type": "text/plain"}, "/auth/x"),
    ], json_paths=("/auth",)) == [415, 415]


def test_an_origin_is_compared_whole_and_json_paths_are_path_prefixes() -> None:
    service = settings(cors=["http://ollamamax.lan"])
    assert statuses(service, [
        ("GET", {"Origin": "http://ollamamax.lan/"}, "/x"),
        ("GET", {"Origin": "http://ollamamax.lanX"}, "/x"),
        ("GET", {"Origin": "http://ollamamax.lan.evil"}, "/x"),
    ]) == [200, 403, 403]
    assert statuses(settings(), [
        ("POST", {"Content-Type": "text/plain"}, "/X/y"),
        ("POST", {"Content-Type": "text/plain"}, "/other"),
    ], json_paths=("/X",)) == [415, 200]


def test_the_front_ends_page_origins_by_both_loopback_names_and_no_other() -> None:
    env = {"OLLAMAMAX_GATEWAY_URL": "http://127.0.0.1:13100",
           "OLLAMAMAX_HUB_URL": "https://chat.lan:13101", "OLLAMAMAX_INFERENCE_URL":
           "http://127.0.0.1:8080"}  # inference serves no page
    assert page_origins(env) == ["http://127.0.0.1:13100", "http://localhost:13100",
                                 "https://chat.lan:13101"]


def test_the_page_of_another_front_end_may_open_chat_and_a_foreign_page_may_not() -> None:
    # The hub: the gateway's page falls back to its /chat (a cross-origin socket).
    hub = settings(page_origins=page_origins({"OLLAMAMAX_GATEWAY_URL": "http://127.0.0.1:13100"}))
    assert statuses(hub, [
        ("GET", {"Origin": "http://127.0.0.1:13100"}, "/chat"),
        ("GET", {"Origin": "http://localhost:13100"}, "/chat"),
        ("GET", {"Origin": "http://127.0.0.1:13103"}, "/chat"),
        ("GET", {"Origin": "http://evil.example"}, "/chat"),
    ]) == [200, 200, 403, 403]
