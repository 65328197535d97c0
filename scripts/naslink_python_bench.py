#!/usr/bin/env python3
"""Request rate of naslink.aio (the `naslink` Python package) against an
fnOS emulator: logs in, then sends signed `appcgi.sysinfo.getHostName`
requests for a fixed time, first one at a time, then with 64 in flight
(asyncio tasks sharing one connection). The same measurement, with the
same output, as scripts/fnos_python_bench.py makes of pyfnos.

Prints one JSON object on stdout:
{"client": "naslink.aio 0.1.0", "results": [{"in_flight": 1, "requests": N,
"seconds": S, "requests_per_second": R, "cpu_seconds": C}, ...]}
Any failed request raises, so the process exits non-zero.
"""

import asyncio
import importlib.metadata
import json

from bench_common import arguments, measure
from naslink import aio


async def main():
    args = arguments(__doc__)
    url = f"ws://{args.endpoint}/websocket?type=main"
    async with aio.connect_fnos(url, args.user, args.password) as nas:
        def get_host_name():
            return nas.request("appcgi.sysinfo.getHostName")

        results = [await measure(get_host_name, n, args.seconds) for n in (1, 64)]
    version = importlib.metadata.version("naslink")
    print(json.dumps({"client": f"naslink.aio {version}", "results": results}))


if __name__ == "__main__":
    asyncio.run(main())
