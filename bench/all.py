"""`make bench`: the benchmarks with small defaults, one after the other, then the table.

    events_per_case.py                                history events of one ordinary case
    ledger_writes.py --cases 200                      the ledger write of one action, alone
    lifecycle.py --cases 100 --clients 20 --rounds 4  the case loop over HTTP against the floor
    idle_cases.py --cases 500 --cache 100             idle cases, a bounded cache, a sample closed

Each prints its own report; this prints their summary lines and target verdicts together at the
end and exits non-zero if any of them did. Larger runs: call the scripts themselves.
"""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNS = [
    ["events_per_case.py"],
    ["ledger_writes.py", "--cases", "200"],
    ["lifecycle.py", "--cases", "100", "--clients", "20", "--single-cases", "10", "--rounds", "4"],
    ["idle_cases.py", "--cases", "500", "--cache", "100", "--sample", "10"],
]
SUMMARY_PREFIXES = ("events_per_case ", "ledger_writes ", "lifecycle ", "idle_cases ")
VERDICTS = ("   met ", "   MISSED", "MISSED:", "WRONG STAGE", "FAILED")


def main() -> int:
    summary: list[str] = []
    status = 0
    for args in RUNS:
        print(f"\n##### {' '.join(args)}", flush=True)
        proc = subprocess.Popen([sys.executable, str(HERE / args[0]), *args[1:]], text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=1)
        for line in proc.stdout:
            print(line, end="", flush=True)
            if line.startswith(SUMMARY_PREFIXES) or line.startswith(VERDICTS):
                summary.append(line.rstrip())
        proc.wait()
        if proc.returncode:
            summary.append(f"{args[0]} exited with status {proc.returncode}")
            status = 1
    print("\n##### summary")
    for line in summary:
        print(line)
    return status


if __name__ == "__main__":
    sys.exit(main())
