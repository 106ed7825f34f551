#!/usr/bin/env python3
"""A TCP relay that delays every byte by a fixed time in each direction.

    bench/delay-relay.py LISTEN_PORT TARGET_HOST TARGET_PORT DELAY_MS LOG

Listens on 127.0.0.1:LISTEN_PORT and relays each connection to
TARGET_HOST:TARGET_PORT untouched (TLS passes through: the client still
talks to the server's certificate), holding each chunk read for DELAY_MS
milliseconds before writing it on, in both directions: a round trip costs
2 x DELAY_MS more. Order is kept; a half-close is passed on after the data
before it. This stands in for network latency where the kernel has no
netem (no loadable modules). Appends one line per accepted connection
("open N") to LOG, so a caller can count the connections a run opened.
Stops on SIGTERM/SIGINT. With DELAY_RELAY_TRACE=FILE in the environment,
also writes a line per chunk read to FILE: "SECONDS CONN DIR BYTES"
(DIR "c" client to server, "s" back), to see how requests are written
(e.g. a request body held back by Nagle's algorithm shows as a second
client chunk some 40 ms after the first).
"""

import asyncio
import os
import signal
import socket
import sys


TRACE = open(os.environ["DELAY_RELAY_TRACE"], "a", buffering=1) if os.environ.get("DELAY_RELAY_TRACE") else None


async def pipe(reader, writer, delay, tag=""):
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def send():
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                try:
                    if writer.can_write_eof():
                        writer.write_eof()
                except OSError:
                    pass
                return
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(send())
    try:
        while True:
            data = await reader.read(65536)
            if TRACE and data:
                TRACE.write(f"{loop.time():.4f} {tag} {len(data)}\n")
            queue.put_nowait((loop.time() + delay, data or None))
            if not data:
                break
        await sender
    except (ConnectionError, OSError):
        sender.cancel()


async def main():
    listen_port, host, port, delay_ms, log_path = sys.argv[1:6]
    delay = float(delay_ms) / 1000.0
    log = open(log_path, "a", buffering=1)
    count = 0

    async def handle(c_reader, c_writer):
        nonlocal count
        count += 1
        n = count
        log.write(f"open {n}\n")
        try:
            s_reader, s_writer = await asyncio.open_connection(host, int(port))
        except OSError as e:
            log.write(f"connect failed: {e}\n")
            c_writer.close()
            return
        for w in (c_writer, s_writer):
            sock = w.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await asyncio.gather(pipe(c_reader, s_writer, delay, f"{n} c"), pipe(s_reader, c_writer, delay, f"{n} s"))
        for w in (c_writer, s_writer):
            w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", int(listen_port), backlog=256)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.write(f"listening 127.0.0.1:{listen_port} -> {host}:{port}, {delay_ms} ms each way\n")
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
