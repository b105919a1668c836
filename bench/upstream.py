"""A fast fake OpenAI upstream for the benchmarks, meant to run as its own process.

``python -m bench.upstream --port 0`` prints the bound port as the first line of stdout, then serves until killed:

- ``POST …/chat/completions``: one fixed ``chat.completion`` (with usage), or with ``"stream": true`` a role chunk,
  ``--chunks`` content chunks ``--gap-ms`` apart, a finish chunk, a usage chunk and ``data: [DONE]``; the model
  ``bench-model-unpaced`` streams the same events with no gaps (all written at once);
- ``GET …/models``: a one-model list;
- ``GET /bench/requests``: how many chat completions it has answered so far (the harness checks that every timed
  call really reached the upstream, so a client-side cache or de-duplication cannot pass for speed);
- anything else: 404.

It is a bare :class:`asyncio.Protocol` with every response pre-rendered to bytes: no framework, no per-request
JSON work, so the upstream's own cost stays far below the clients' it is used to compare. A separate process keeps
it off the client's event loop and GIL. Payloads come from ``tests/fakes/openai_wire.py``, the builders the
contract tests check against the official SDK, so every client parses the real wire shape.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `tests.fakes` lives at the repo root, which is not an installed package

from tests.fakes import openai_wire as wire  # noqa: E402

MODEL = "bench-model"
# The same model, streaming with zero latency: every event written at once (the model name picks the pacing, so
# each gateway passes the choice through as it would for a real model).
UNPACED_MODEL = "bench-model-unpaced"
# ~60 tokens of plausible prose: the answer body size matters for parse cost, so keep it realistic.
ANSWER = (
    "The anomaly is a periodic latency spike every fifteen minutes on the ingest path, coinciding with the "
    "compaction job on the primary store. Error rates stay flat, so requests are slowed, not dropped. Moving "
    "compaction off-peak or throttling it should remove the spikes; confirm by comparing the two schedules."
)
COUNT_PATH = "/bench/requests"
_STREAM_FLAG = re.compile(rb'"stream"\s*:\s*true')
_UNPACED_FLAG = re.compile(rb'"model"\s*:\s*"%s"' % UNPACED_MODEL.encode())
_HEADER_END = b"\r\n\r\n"


def stream_pieces(count: int) -> list[str]:
    """``count`` text pieces whose concatenation is a prefix-free, checkable answer (word-sized, like tokens)."""
    words = ANSWER.split(" ")
    return [(" " if i else "") + words[i % len(words)] for i in range(count)]


def expected_stream_text(count: int) -> str:
    """What a client must assemble from a stream of ``count`` chunks (used to check every client's result)."""
    return "".join(stream_pieces(count))


def _head(status: str, content_type: str, extra: str = "") -> bytes:
    # A few of the headers api.openai.com sends, so clients parse a realistic header block (not a minimal one).
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\n"
        "date: Mon, 01 Jan 2024 00:00:00 GMT\r\nx-request-id: req_bench0000000000000000\r\n"
        f"openai-processing-ms: 0\r\nopenai-version: 2020-10-01\r\n{extra}\r\n"
    ).encode()


def _whole(status: str, body: bytes) -> bytes:
    return _head(status, "application/json", f"content-length: {len(body)}\r\n") + body


def _compact(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _frame(event: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(event), event)


class Replies:
    """Every response, rendered once at start-up."""

    def __init__(self, chunks: int) -> None:
        body = wire.completion(ANSWER, model=MODEL, completion_tokens=len(ANSWER.split()), id="chatcmpl-bench")
        self.completion = _whole("200 OK", _compact(body))
        self.models = _whole("200 OK", _compact(wire.models_list(MODEL)))
        self.not_found = _whole("404 Not Found", b'{"error":{"message":"not found","type":"invalid_request_error"}}')
        self.stream_head = _head(
            "200 OK", "text/event-stream", "cache-control: no-cache\r\ntransfer-encoding: chunked\r\n"
        )
        frames = [_frame(e) for e in wire.stream_events(stream_pieces(chunks), model=MODEL)]
        # frames = [role, content x chunks, finish, usage, DONE]; the role chunk rides with the first content chunk,
        # the finish, usage and [DONE] events with the last (that is when OpenAI sends them: right after the text).
        self.role = frames[0]
        self.content = frames[1 : 1 + chunks]
        self.tail = b"".join(frames[1 + chunks :]) + b"0\r\n\r\n"


class Counter:
    """Chat completions answered, across all connections."""

    def __init__(self) -> None:
        self.chat = 0

    def reply(self) -> bytes:
        return _whole("200 OK", b'{"chat_completions":%d}' % self.chat)


class UpstreamProtocol(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection. Requests are answered in order; a stream holds later ones back."""

    def __init__(self, replies: Replies, counter: Counter, gap_s: float) -> None:
        self.replies = replies
        self.counter = counter
        self.gap_s = gap_s
        self.buf = b""
        self.streaming = False
        self.transport: asyncio.Transport | None = None
        self.timers: list[asyncio.TimerHandle] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, _exc: Exception | None) -> None:
        for timer in self.timers:
            timer.cancel()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self.drain()

    def drain(self) -> None:
        """Answer every complete request in the buffer (unless a stream is still being written)."""
        while not self.streaming and self.transport is not None:
            parsed = parse_request(self.buf)
            if parsed is None:
                return
            head, body, used = parsed
            self.buf = self.buf[used:]
            self.answer(head, body)

    def answer(self, head: bytes, body: bytes) -> None:
        assert self.transport is not None
        method, path = head.split(b" ", 2)[:2]
        if method == b"POST" and path.endswith(b"/chat/completions"):
            self.counter.chat += 1
            if _STREAM_FLAG.search(body):
                self.start_stream(paced=_UNPACED_FLAG.search(body) is None)
            else:
                self.transport.write(self.replies.completion)
        elif method == b"GET" and path.endswith(b"/models"):
            self.transport.write(self.replies.models)
        elif method == b"GET" and path == COUNT_PATH.encode():
            self.transport.write(self.counter.reply())
        else:
            self.transport.write(self.replies.not_found)

    def start_stream(self, paced: bool) -> None:
        assert self.transport is not None
        r = self.replies
        self.transport.write(r.stream_head + r.role + r.content[0])
        last = len(r.content) - 1
        if last == 0 or self.gap_s <= 0 or not paced:
            # Timers due at the same instant have no guaranteed order, so a zero gap writes everything now.
            self.transport.write(b"".join(r.content[1:]) + r.tail)
            return
        self.streaming = True
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        # Absolute deadlines (call_at), not chained sleeps: late wake-ups do not accumulate over 50 chunks.
        self.timers = [loop.call_at(t0 + i * self.gap_s, self.send_chunk, i) for i in range(1, last + 1)]

    def send_chunk(self, i: int) -> None:
        if self.transport is None:
            return
        r = self.replies
        if i < len(r.content) - 1:
            self.transport.write(r.content[i])
            return
        self.transport.write(r.content[i] + r.tail)
        self.streaming = False
        self.timers = []
        self.drain()


def parse_request(buf: bytes) -> tuple[bytes, bytes, int] | None:
    """``(head, body, bytes used)`` for the first complete request in ``buf``, or ``None`` if it is not all here."""
    end = buf.find(_HEADER_END)
    if end < 0:
        return None
    head = buf[:end]
    start = end + len(_HEADER_END)
    lower = head.lower()
    if b"transfer-encoding: chunked" in lower:
        return _chunked(head, buf, start)
    length = 0
    marker = lower.find(b"content-length:")
    if marker >= 0:
        line_end = lower.find(b"\r\n", marker)
        length = int(lower[marker + len(b"content-length:") : line_end if line_end >= 0 else None])
    if len(buf) < start + length:
        return None
    return head, buf[start : start + length], start + length


def _chunked(head: bytes, buf: bytes, pos: int) -> tuple[bytes, bytes, int] | None:
    # No client under test sends chunked requests today; supported so a library change cannot hang the benchmark.
    parts: list[bytes] = []
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(buf[pos:eol].split(b";")[0], 16)
        if len(buf) < eol + 2 + size + 2:
            return None
        parts.append(buf[eol + 2 : eol + 2 + size])
        pos = eol + 2 + size + 2
        if size == 0:
            return head, b"".join(parts), pos


async def fetch_count(host: str, port: int) -> int:
    """Ask a running upstream how many chat completions it has answered (one short-lived connection)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(f"GET {COUNT_PATH} HTTP/1.1\r\nhost: {host}\r\n\r\n".encode())
        head = await reader.readuntil(_HEADER_END)
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        return int(json.loads(await reader.readexactly(length))["chat_completions"])
    finally:
        writer.close()


async def serve(host: str, port: int, chunks: int, gap_s: float) -> None:
    """Bind, print the port (first stdout line, flushed), and serve until cancelled."""
    replies, counter = Replies(chunks), Counter()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: UpstreamProtocol(replies, counter, gap_s), host, port, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.upstream", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on stdout)")
    parser.add_argument("--chunks", type=int, default=50, help="content chunks per streamed answer (default 50)")
    parser.add_argument("--gap-ms", type=float, default=5.0, help="time between streamed chunks (default 5 ms)")
    args = parser.parse_args(argv)
    if args.chunks < 1:
        parser.error("--chunks must be at least 1")
    asyncio.run(serve(args.host, args.port, args.chunks, args.gap_ms / 1000))


if __name__ == "__main__":
    main()
