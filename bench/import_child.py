"""Import a bulk event file in this process and print the summary as JSON — the stand-in for
``allegiance events import FILE --program SLUG`` while that command does not exist, so peak memory
is measured on a process that does nothing but import (``ru_maxrss`` of this child).

Run: ``ALLEGIANCE_DATABASE_URL=... python -m bench.import_child FILE --program-id N``.
"""

from __future__ import annotations

import argparse
import json
import time

from allegiance.bootstrap import build
from allegiance.config import Settings
from allegiance.events.readers import open_rows
from allegiance.storage.bulk_events import import_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("file")
    parser.add_argument("--program-id", type=int, required=True)
    args = parser.parse_args()
    app = build(Settings())
    started = time.perf_counter()
    try:
        with open_rows(args.file) as rows:
            summary = import_rows(app, args.program_id, rows)
    finally:
        app.close()
    print(json.dumps({"accepted": summary.accepted, "duplicates": summary.duplicates,
                      "rejected": summary.rejected_count, "seconds": time.perf_counter() - started}))


if __name__ == "__main__":
    main()
