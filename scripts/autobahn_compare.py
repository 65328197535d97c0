#!/usr/bin/env python3
"""Compare an Autobahn fuzzingserver report with the expected results.

usage: autobahn_compare.py REPORT_INDEX_JSON EXPECTED_JSON

EXPECTED_JSON maps case ids to {"behavior": ..., "behaviorClose": ...}. Every
case in the expected file must be present with exactly those verdicts, and
the report must contain no case the expected file does not list: a new case
or any change of verdict (including an improvement) fails, so the expected
file is updated deliberately. Prints a summary line and exits non-zero on any
difference.
"""
import json
import sys
from collections import Counter


def main(report_path, expected_path):
    with open(report_path) as f:
        index = json.load(f)
    if len(index) != 1:
        print(f"autobahn: expected one agent in the report, found {sorted(index)}")
        return 1
    (agent, cases), = index.items()
    with open(expected_path) as f:
        expected = json.load(f)

    problems = []
    for case_id, want in sorted(expected.items(), key=lambda kv: case_key(kv[0])):
        got = cases.get(case_id)
        if got is None:
            problems.append(f"{case_id}: missing from the report")
            continue
        for field in ("behavior", "behaviorClose"):
            if got.get(field) != want.get(field):
                problems.append(f"{case_id}: {field} {got.get(field)} (expected {want.get(field)})")
    for case_id in sorted(set(cases) - set(expected), key=case_key):
        problems.append(f"{case_id}: not in the expected results ({cases[case_id].get('behavior')})")

    verdicts = Counter(c.get("behavior") for c in cases.values())
    summary = ", ".join(f"{n} {v}" for v, n in sorted(verdicts.items()))
    print(f"autobahn ({agent}): {len(cases)} cases: {summary}")
    for p in problems:
        print(f"  MISMATCH {p}")
    passed = len(cases) - len({p.split(':')[0] for p in problems})
    print(f"autobahn: {max(passed, 0)} passed, {len(problems)} failed")
    return 1 if problems else 0


def case_key(case_id):
    return tuple(int(part) for part in case_id.split("."))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
