"""Fit the package's fallback predicted-accuracy calibration on proxy tasks built from the sample role.

The proxy tasks and their records are :mod:`mll.bench.calibrate`'s (``mll calibrate`` fits and
stores a hub's own rules the same way); this script writes the shipped fallback.

``--collect OUT`` writes the (method, level, situation, proxy accuracy, measured accuracy) records;
``--fit RECORDS`` fits the rules of ``mll.selection.calibration`` from them (shrinkage kept only
where it lowers the error on held-out proxy tasks; split-conformal 5%/95% residual quantiles),
writes them to ``--write`` (the package's ``_data/calibration.json``) and prints held-out-task
coverage and errors. Usage::

    python benchmarks/calibrate_intervals.py --hub HUB --collect records.json [--seeds 3]
    python benchmarks/calibrate_intervals.py --fit records.json --write src/mll/selection/_data/calibration.json
"""

from __future__ import annotations

import argparse
import json

from mll.bench.calibrate import collect
from mll.selection import LabelTable
from mll.selection.calibration import LEVEL, fit

METHODS = (("chco", {}), ("all", {}), ("inb", {"k": 1}), ("inb", {"k": 3}), ("modelgpt", {}),
           ("p2", {"k": 1}), ("p2", {"k": 3}), ("proto", {}), ("random", {"k": 1, "seed": 0}),
           ("vlm", {}))

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hub")
    ap.add_argument("--collect", help="write proxy-task records here")
    ap.add_argument("--fit", help="fit the calibration from these records")
    ap.add_argument("--write", help="write the fitted rules here (calibration.json)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--classes", type=int, default=20)
    args = ap.parse_args()
    if args.collect:
        records = collect(LabelTable.open(args.hub), args.seeds, args.classes, list(METHODS))
        with open(args.collect, "w") as f:
            json.dump(records, f)
    if args.fit:
        with open(args.fit) as f:
            records = json.load(f)
        rules, checks = fit(records)
        print(json.dumps(checks, indent=1))
        if args.write:
            seeds = len({r["task"].split("-")[0] for r in records})
            doc = {"level": LEVEL, "fitted_on": (
                f"{len({r['task'] for r in records})} proxy tasks ({seeds} seeds) built from the "
                "sample role by benchmarks/calibrate_intervals.py; no benchmark image"),
                "rules": rules}
            with open(args.write, "w") as f:
                json.dump(doc, f, indent=1)
                f.write("\n")


if __name__ == "__main__":
    main()
