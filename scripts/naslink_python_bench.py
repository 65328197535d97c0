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

import argparse
import asyncio
import importlib.metadata
import json
import time

from naslink import aio


async def measure(nas, in_flight, seconds):
    deadline = time.perf_counter() + seconds
    counts = [0] * in_flight

    async def worker(slot):
        while time.perf_counter() < deadline:
            # Raises on a failed answer.
            await nas.request("appcgi.sysinfo.getHostName")
            counts[slot] += 1

    start = time.perf_counter()
    cpu_start = time.process_time()
    await asyncio.gather(*(worker(slot) for slot in range(in_flight)))
    cpu = time.process_time() - cpu_start
    elapsed = time.perf_counter() - start
    done = sum(counts)
    return {
        "in_flight": in_flight,
        "requests": done,
        "seconds": elapsed,
        "requests_per_second": done / elapsed,
        "cpu_seconds": cpu,
    }


async def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", required=True, help="HOST:PORT of the emulator")
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password", default="admin")
    parser.add_argument("--seconds", type=float, default=2.0, help="duration of each measurement")
    args = parser.parse_args()
    url = f"ws://{args.endpoint}/websocket?type=main"
    async with aio.connect_fnos(url, args.user, args.password) as nas:
        results = [await measure(nas, n, args.seconds) for n in (1, 64)]
    version = importlib.metadata.version("naslink")
    print(json.dumps({"client": f"naslink.aio {version}", "results": results}))


if __name__ == "__main__":
    asyncio.run(main())
