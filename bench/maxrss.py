"""Run a command and write its exit code and peak RSS (``ru_maxrss`` from ``wait4``) as JSON.

Why a separate small process: Linux folds the parent's memory high-water mark into a child's
``ru_maxrss`` when the child is spawned with ``vfork`` + ``exec`` (as ``subprocess`` does), so a
benchmark process holding 500 MB of rows would report every child as ≥ 500 MB. Spawned from this
~15 MB wrapper instead, the figure is the command's own peak.

Run: ``python -m bench.maxrss --out result.json -- COMMAND ARGS...``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    begin = time.perf_counter()
    process = subprocess.Popen(command)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    args.out.write_text(json.dumps({"exit_code": process.returncode, "peak_rss_kb": usage.ru_maxrss,
                                    "seconds": time.perf_counter() - begin}))


if __name__ == "__main__":
    main()
