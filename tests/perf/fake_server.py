"""A fake streaming LLM server for the load-test tests: exact, cheap and scriptable.

Run as a process (``python tests/perf/fake_server.py --ttft-ms 50 --itl-ms 20``); it prints ``PORT <n>`` once
listening on loopback. It speaks /api/chat, /api/generate (NDJSON), /v1/chat/completions, /v1/completions
(SSE with a usage chunk and ``[DONE]``) and /api/embed (anything else is a 404), with keep-alive and chunked
encoding. Each stream
keeps its own absolute schedule: first chunk ``ttft`` after the request arrived, then one chunk every ``itl``
(times ``1 + growth * (active - 1)``), ``num_predict``/``max_tokens`` tokens in chunks of
``--tokens-per-chunk`` (so a client that counts chunks instead of ``eval_count`` is caught). At most
``--slots`` requests generate at once; the rest wait in FIFO order. Planted faults: the request numbered
``--plant-503`` gets a 503, the one numbered ``--plant-truncate`` is cut mid-stream (connection closed with no
final object). ``GET /stats`` returns every request it served with its arrival and send times (epoch
seconds), so a test can tell the fake's own lateness on a busy machine from the client's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
from typing import Any

ROUTES = ("/api/chat", "/api/generate", "/v1/chat/completions", "/v1/completions", "/api/embed")
PROMPT_ID = re.compile(r"Request (\S+?)\. ")


class FakeServer:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.slots = asyncio.Semaphore(args.slots)
        self.active = 0
        self.numbered = 0
        self.log: list[dict[str, Any]] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                arrived = time.monotonic()
                lines = head.decode().split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                if not await self.route(method, path, body, arrived, writer):
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def route(self, method: str, path: str, body: bytes, arrived: float, writer: asyncio.StreamWriter) -> bool:
        if method == "GET" and path == "/stats":
            payload = json.dumps({"requests": self.log}).encode()
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n")
            writer.write(b"content-length: %d\r\n\r\n%s" % (len(payload), payload))
            await writer.drain()
            return True
        if method != "POST" or path not in ROUTES:
            writer.write(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
            await writer.drain()
            return True
        request = json.loads(body or b"{}")
        self.numbered += 1
        number = self.numbered
        match = PROMPT_ID.search(json.dumps(request))
        entry: dict[str, Any] = {"n": number, "path": path, "prompt_id": match[1] if match else "", "sent": []}
        entry["arrived"] = time.time() - (time.monotonic() - arrived)
        entry["peer"] = writer.get_extra_info("peername")[1]
        self.log.append(entry)
        if number == self.args.plant_503:
            entry["status"] = 503
            payload = b'{"error":"server busy, please try again"}'
            writer.write(b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n")
            writer.write(b"content-length: %d\r\n\r\n%s" % (len(payload), payload))
            await writer.drain()
            return True
        if path == "/api/embed":
            entry["status"] = 200
            payload = json.dumps({"model": request.get("model"), "embeddings": [[0.5] * 8], "prompt_eval_count": 7})
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n")
            writer.write(b"content-length: %d\r\n\r\n%s" % (len(payload), payload.encode()))
            await writer.drain()
            return True
        return await self.stream(path, request, entry, arrived, writer)

    async def stream(
        self, path: str, request: dict[str, Any], entry: dict[str, Any], arrived: float, writer: asyncio.StreamWriter
    ) -> bool:
        openai = path.startswith("/v1/")
        tokens = int(request.get("max_tokens") or (request.get("options") or {}).get("num_predict") or 16)
        per_chunk = self.args.tokens_per_chunk
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n")
        writer.write(b"content-type: " + (b"text/event-stream" if openai else b"application/x-ndjson") + b"\r\n\r\n")
        await writer.drain()
        async with self.slots:
            self.active += 1
            try:
                due = max(arrived, time.monotonic()) + self.args.ttft_ms / 1000
                chunks = -(-tokens // per_chunk)
                for i in range(chunks):
                    await asyncio.sleep(max(0.0, due - time.monotonic()))
                    if entry["n"] == self.args.plant_truncate and i == chunks // 2:
                        entry["status"] = "truncated"
                        writer.transport.abort()
                        return False
                    entry["sent"].append(time.time())
                    writer.write(_chunk(_frame(path, _content(path, f"t{i} "))))
                    await writer.drain()
                    due += self.args.itl_ms / 1000 * (1 + self.args.growth * (self.active - 1))
            finally:
                self.active -= 1
        entry["status"] = 200
        entry["eval_count"] = tokens
        writer.write(_chunk(_frame(path, _final(path, tokens))))
        if openai:
            writer.write(_chunk(b"data: [DONE]\n\n"))
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True


def _content(path: str, text: str) -> dict[str, Any]:
    if path == "/api/chat":
        return {"message": {"role": "assistant", "content": text}, "done": False}
    if path == "/api/generate":
        return {"response": text, "done": False}
    if path == "/v1/chat/completions":
        return {"choices": [{"index": 0, "delta": {"content": text}}]}
    return {"choices": [{"index": 0, "text": text}]}


def _final(path: str, tokens: int) -> dict[str, Any]:
    if path.startswith("/v1/"):
        return {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": tokens, "total_tokens": 9 + tokens}}
    key = "message" if path == "/api/chat" else "response"
    value: Any = {"role": "assistant", "content": ""} if key == "message" else ""
    return {key: value, "done": True, "eval_count": tokens, "prompt_eval_count": 9}


def _frame(path: str, obj: dict[str, Any]) -> bytes:
    data = json.dumps(obj, separators=(",", ":"))
    return f"data: {data}\n\n".encode() if path.startswith("/v1/") else f"{data}\n".encode()


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ttft-ms", type=float, default=50)
    parser.add_argument("--itl-ms", type=float, default=20)
    parser.add_argument("--growth", type=float, default=0.0)
    parser.add_argument("--slots", type=int, default=1000)
    parser.add_argument("--tokens-per-chunk", type=int, default=1)
    parser.add_argument("--plant-503", type=int, default=0)
    parser.add_argument("--plant-truncate", type=int, default=0)
    fake = FakeServer(parser.parse_args())
    server = await asyncio.start_server(fake.handle, "127.0.0.1", fake.args.port)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
