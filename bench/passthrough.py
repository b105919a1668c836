"""The floor for a Python gateway: ``python -m bench.passthrough --port P --upstream URL``.

An ASGI function under uvicorn (uvloop + httptools, as ``llm-manager serve`` runs) that posts each request body to
the upstream with one pooled aiohttp session and relays the answer — streamed answers as they arrive — and does
nothing else: no validation, routing, keys, limits, cache, ledger or telemetry. ``bench.gateway`` measures it next
to our gateway, so the numbers show how much of the gateway's added time is the Python server and HTTP client
every such gateway needs, and how much is its own work.
"""

from __future__ import annotations

import argparse
from typing import Any

_FORWARDED = (b"content-type", b"authorization")


class PassThrough:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.session: Any = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        import aiohttp

        if self.session is None:
            self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"] if k in _FORWARDED}
        async with self.session.post(self.upstream, data=body, headers=headers) as resp:
            ctype = resp.headers.get("content-type", "application/json").encode()
            if resp.headers.get("transfer-encoding", "").lower() != "chunked":
                data = await resp.read()
                head = [(b"content-type", ctype), (b"content-length", str(len(data)).encode())]
                await send({"type": "http.response.start", "status": resp.status, "headers": head})
                await send({"type": "http.response.body", "body": data})
                return
            await send({"type": "http.response.start", "status": resp.status, "headers": [(b"content-type", ctype)]})
            async for chunk in resp.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m bench.passthrough", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="the upstream's chat completions URL")
    args = parser.parse_args()
    app = PassThrough(args.upstream)
    uvicorn.run(app, host="127.0.0.1", port=args.port, loop="uvloop", http="httptools", log_level="warning",
                access_log=False, lifespan="off", proxy_headers=False)  # fmt: skip


if __name__ == "__main__":
    main()
