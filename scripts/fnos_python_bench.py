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

import argparse
import asyncio
import importlib.metadata
import json
import logging
import time

from fnos import FnosClient, SystemInfo


async def measure(info, in_flight, seconds):
    deadline = time.perf_counter() + seconds
    counts = [0] * in_flight

    async def worker(slot):
        while time.perf_counter() < deadline:
            answer = await info.get_host_name()
            if answer.get("result") != "succ":
                raise RuntimeError(f"getHostName failed: {answer}")
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
    # pyfnos logs every frame at INFO; the bench measures the client, not the log.
    logging.disable(logging.CRITICAL)

    client = FnosClient()
    await client.connect(args.endpoint, timeout=10.0)
    result = await client.login(args.user, args.password)
    if result.get("result") != "succ":
        raise RuntimeError(f"login failed: {result}")
    info = SystemInfo(client)
    results = [await measure(info, n, args.seconds) for n in (1, 64)]
    await client.close()
    version = importlib.metadata.version("fnos")
    print(json.dumps({"client": f"pyfnos {version}", "results": results}))


if __name__ == "__main__":
    asyncio.run(main())
