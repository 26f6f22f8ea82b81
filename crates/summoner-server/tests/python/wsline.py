"""A line-oriented WebSocket client for tests: a protocol client that another program drives.

Each line on stdin is sent as one text frame; each frame received is printed on stdout as one
line (flushed at once). Lines starting with `#` are commands:

    #close   close the connection cleanly (a close frame) and exit
    #drop    drop the TCP connection without a close frame and exit

When the server closes the connection, prints `#closed <code>` (or `#dropped` when the
connection ended without a close frame) and exits. Killing this process (SIGKILL) drops the
connection as a crashed test would.

    python3 wsline.py ws://127.0.0.1:7878/v1/lease [TOKEN]

Needs websockets 13 or newer (`websockets.asyncio`); the tests run it with the interpreter
that tests/common/python.rs finds (see README, Prerequisites).
"""

import asyncio
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def pump_in(ws):
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            return "#close"
        line = line.decode().rstrip("\n")
        if line in ("#close", "#drop"):
            return line
        await ws.send(line)


async def pump_out(ws):
    try:
        async for frame in ws:
            say(frame)
    except ConnectionClosed:
        pass
    received = ws.protocol.close_rcvd
    if received is None:
        say("#dropped")
    else:
        say(f"#closed {received.code}")


async def main(url, token):
    headers = {"Authorization": f"Bearer {token}"} if token else None
    # No client-side pings: the server's pings are what keep (or end) the connection.
    async with connect(url, additional_headers=headers, ping_interval=None) as ws:
        out = asyncio.create_task(pump_out(ws))
        inp = asyncio.create_task(pump_in(ws))
        done, _ = await asyncio.wait({out, inp}, return_when=asyncio.FIRST_COMPLETED)
        if inp in done:
            command = inp.result()
            if command == "#drop":
                ws.transport.abort()
                return
            await ws.close()
            await out
        inp.cancel()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None))
