"""The protocol's minimal flow from Python, with the `websockets` library.

Client A connects, acquires one resource of the pool and reads `granted`. Client B asks for
the same pool and is `queued`. A closes its connection (cleanly, by leaving the `async with`),
which releases its lease, and B is granted the same resource. Prints `ok <name>` and exits 0,
or fails an assertion.

    python3 minimal_flow.py ws://127.0.0.1:7878/v1/lease POOL

Needs websockets 13 or newer (`websockets.asyncio`); the tests run it with the interpreter
that tests/common/python.rs finds (see README, Prerequisites).
"""

import asyncio
import json
import sys

from websockets.asyncio.client import connect


async def recv(ws):
    return json.loads(await asyncio.wait_for(ws.recv(), 30))


async def acquire(ws, request_id, pool):
    await ws.send(json.dumps({"type": "acquire", "id": request_id, "want": [{"pool": pool}]}))
    return await recv(ws)


async def main(url, pool):
    async with connect(url) as a:
        welcome = await recv(a)
        assert welcome["type"] == "welcome" and welcome["protocol"] == 1, welcome
        granted = await acquire(a, 1, pool)
        assert granted["type"] == "granted" and granted["id"] == 1, granted
        name = granted["resources"][0]["name"]

        b = await connect(url)
        assert (await recv(b))["type"] == "welcome"
        queued = await acquire(b, "second", pool)
        assert queued == {"type": "queued", "id": "second", "position": 1}, queued

    # A's connection is closed: its lease is released and B is served.
    granted = await recv(b)
    assert granted["type"] == "granted" and granted["id"] == "second", granted
    assert granted["resources"][0]["name"] == name, granted
    await b.close()
    print("ok", name, flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
