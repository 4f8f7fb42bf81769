"""Start-up time of `fastsd --help` and `fastsd models list --json` as a ratio to `python -c pass`.

The commands run interleaved, many times, and the medians are compared, so a noisy machine
slows all of them alike. Target: each ratio <= 3x.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time

RUNS = 25
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "fastsd --help": [sys.executable, "-m", "fastsd", "--help"],
    "fastsd models list --json": [sys.executable, "-m", "fastsd", "models", "list", "--json"],
}


def main() -> int:
    """Measure, print a table of medians and ratios; exit 1 when a ratio exceeds 3x."""
    times = {name: [] for name in COMMANDS}
    with tempfile.TemporaryDirectory() as data:
        for _ in range(RUNS):
            for name, argv in COMMANDS.items():
                start = time.perf_counter()
                subprocess.run(argv + (["--data", data] if "fastsd" in name else []),
                               stdout=subprocess.DEVNULL, check=True)
                times[name].append(time.perf_counter() - start)
    base = statistics.median(times["python -c pass"])
    worst = 0.0
    print(f"{'command':28} {'median ms':>10} {'ratio':>7}")
    for name, samples in times.items():
        median = statistics.median(samples)
        ratio = median / base
        worst = max(worst, ratio)
        print(f"{name:28} {median * 1000:10.1f} {ratio:6.2f}x")
    print(f"target <= 3.00x: {'met' if worst <= 3 else 'NOT met'}")
    return 0 if worst <= 3 else 1


if __name__ == "__main__":
    raise SystemExit(main())
