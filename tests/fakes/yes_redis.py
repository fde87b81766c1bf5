"""A stranger's redis: answers `+OK` to every command and `:1` to EXISTS, and logs what it got.

Run as a process:  python -m tests.fakes.yes_redis --port 6379 --log commands.log
It stands for a local user who listens on the stack's redis port to answer its revocation
checks ("every token is revoked") and to learn what the services send.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path


async def _command(reader: asyncio.StreamReader) -> list[str] | None:
    """One RESP array of bulk strings (what redis clients send), or None at EOF."""
    head = await reader.readline()
    if not head:
        return None
    if not head.startswith(b"*"):  # an inline command
        return head.decode(errors="replace").split()
    words = []
    for _ in range(int(head[1:])):
        size = int((await reader.readline())[1:])
        words.append((await reader.readexactly(size + 2))[:-2].decode(errors="replace"))
    return words


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", type=Path, required=True)
    args = parser.parse_args()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while (words := await _command(reader)) is not None:
                with args.log.open("a") as log:
                    log.write(" ".join(words) + "\n")
                writer.write(b":1\r\n" if words and words[0].upper() == "EXISTS" else b"+OK\r\n")
                await writer.drain()
        except (OSError, ValueError, asyncio.IncompleteReadError):
            pass
        writer.close()

    async def run() -> None:
        server = await asyncio.start_server(serve, "127.0.0.1", args.port)
        async with server:
            await server.serve_forever()

    asyncio.run(run())


if __name__ == "__main__":
    main()
