"""What the two Python benchmark clients (fnos_python_bench.py for pyfnos,
naslink_python_bench.py for naslink.aio) share, so that both measure the
same way: the command line and the timed loop.
"""

import argparse
import asyncio
import time


def arguments(description):
    """The benchmark's command line: --endpoint HOST:PORT, --user,
    --password, --seconds (duration of each measurement)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--endpoint", required=True, help="HOST:PORT of the emulator")
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password", default="admin")
    parser.add_argument("--seconds", type=float, default=2.0, help="duration of each measurement")
    return parser.parse_args()


async def measure(request, in_flight, seconds):
    """Awaits `request()` (which raises on a failed answer) from
    `in_flight` tasks until `seconds` have passed; returns the count, the
    rate and the process's CPU time."""
    deadline = time.perf_counter() + seconds
    counts = [0] * in_flight

    async def worker(slot):
        while time.perf_counter() < deadline:
            await request()
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
