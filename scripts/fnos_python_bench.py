#!/usr/bin/env python3
"""Request rate of pyfnos (PyPI `fnos`), the independent Python fnOS client,
against an fnOS emulator: logs in, then sends signed
`appcgi.sysinfo.getHostName` requests (the request naslink-bench times) for
a fixed time, first one at a time, then with 64 in flight (asyncio tasks
sharing one connection; pyfnos matches answers to requests by reqid).

Prints one JSON object on stdout:
{"client": "pyfnos 0.13.0", "results": [{"in_flight": 1, "requests": N,
"seconds": S, "requests_per_second": R, "cpu_seconds": C}, ...]}
(C: the process's CPU time during the measurement).
Any failed request raises, so the process exits non-zero.
"""

import asyncio
import importlib.metadata
import json
import logging

from bench_common import arguments, measure
from fnos import FnosClient, SystemInfo


async def get_host_name(info):
    answer = await info.get_host_name()
    if answer.get("result") != "succ":
        raise RuntimeError(f"getHostName failed: {answer}")


async def main():
    args = arguments(__doc__)
    # pyfnos logs every frame at INFO; the bench measures the client, not the log.
    logging.disable(logging.CRITICAL)

    client = FnosClient()
    await client.connect(args.endpoint, timeout=10.0)
    result = await client.login(args.user, args.password)
    if result.get("result") != "succ":
        raise RuntimeError(f"login failed: {result}")
    info = SystemInfo(client)
    results = [await measure(lambda: get_host_name(info), n, args.seconds) for n in (1, 64)]
    await client.close()
    version = importlib.metadata.version("fnos")
    print(json.dumps({"client": f"pyfnos {version}", "results": results}))


if __name__ == "__main__":
    asyncio.run(main())
