"""``python -m bench.delayproxy LISTEN_HOST LISTEN_PORT UPSTREAM_HOST UPSTREAM_PORT DELAY_MS``:
a TCP proxy that holds every HTTP request for a fixed time before passing it on.

The fleet benchmark puts it in front of the S3 server so each storage request costs what it
costs against a real object store across a network (tens of ms) rather than loopback's
microseconds, and jobs are bound by storage latency, not by this machine's cores. A request is
recognised per connection as the first bytes from the client after the server last answered
(HTTP/1.1 keep-alive without pipelining, which is how urllib3 and the minio client talk); only
that first chunk waits, so a large upload is delayed once, not per chunk. Responses are not
delayed. It prints the number of requests it delayed when it ends (SIGTERM).
"""

from __future__ import annotations

import asyncio
import signal
import sys


class Proxy:
    def __init__(self, upstream: tuple[str, int], delay_s: float) -> None:
        self.upstream = upstream
        self.delay_s = delay_s
        self.requests = 0

    async def handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_w.close()
            return
        awaiting_request = [True]  # the next client bytes start a new request

        async def to_upstream() -> None:
            while data := await client_r.read(1 << 16):
                if awaiting_request[0]:
                    awaiting_request[0] = False
                    self.requests += 1
                    await asyncio.sleep(self.delay_s)
                up_w.write(data)
                await up_w.drain()
            up_w.close()

        async def to_client() -> None:
            while data := await up_r.read(1 << 16):
                awaiting_request[0] = True
                client_w.write(data)
                await client_w.drain()
            client_w.close()

        try:
            await asyncio.gather(to_upstream(), to_client())
        except (ConnectionError, OSError):
            pass
        finally:
            up_w.close()
            client_w.close()


async def serve(listen: tuple[str, int], proxy: Proxy) -> None:
    server = await asyncio.start_server(proxy.handle, *listen)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"delayproxy {listen[0]}:{listen[1]} -> {proxy.upstream[0]}:{proxy.upstream[1]}", flush=True)
    async with server:
        await stop.wait()
    print(f"delayproxy: {proxy.requests} requests delayed by {proxy.delay_s * 1000:.0f} ms", flush=True)


def main(argv: list[str]) -> int:
    host, port, up_host, up_port, delay_ms = argv
    asyncio.run(serve((host, int(port)), Proxy((up_host, int(up_port)), float(delay_ms) / 1000)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
