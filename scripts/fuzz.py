"""``make fuzz``: seeded fuzz cases for every input kind, each case in a child process with a
memory limit and a timeout (tests/helpers/isolated.py), and the table the docs record.

    .venv/bin/python scripts/fuzz.py --cases 10000

NIfTI (``.nii.gz`` and ``.nii``), label CSVs and manifests, and run folders share ``--cases``
as the pytest fuzz does (a quarter each); the DICOM exports get ``--cases`` of their own, and
pydicom's shipped test files are read once each. Exit 1 when any case failed; each failure is
printed with its seed, to replay it with ``helpers.isolated.run_cases(TARGET, [SEED])``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from helpers.fuzz_dicom import corpus_files
from helpers.isolated import FAILURES, MEMORY_MB, TIMEOUT_S, run_cases

GROUPS = [  # kind in the table, target, share of --cases
    ("NIfTI (.nii.gz)", "helpers.fuzz_cases:nifti_case", 0.25),
    ("NIfTI (.nii)", "helpers.fuzz_cases:nii_case", 0.25),
    ("CSV (labels, manifests)", "helpers.fuzz_cases:csv_case", 0.25),
    ("run folder", "helpers.fuzz_cases:run_case", 0.25),
    ("DICOM export", "helpers.fuzz_dicom:case", 1.0),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", choices=["readers", "dicom"], help="one half of the table")
    args = parser.parse_args()
    print(f"each case in a child process: {MEMORY_MB} MB address space, {TIMEOUT_S:.0f} s")
    print("| input | cases | a result | refused, one line | " + " | ".join(FAILURES) + " | s |")
    print("|---" * (5 + len(FAILURES)) + "|")
    failures, details = [], []
    plan = [(kind, target, list(range(int(args.cases * share)))) for kind, target, share in GROUPS]
    corpus = list(range(len(corpus_files())))
    plan.append(("pydicom's test files", "helpers.fuzz_dicom:corpus_case", corpus))
    if args.only:
        dicom = {"DICOM export", "pydicom's test files"}
        plan = [p for p in plan if (p[0] in dicom) == (args.only == "dicom")]
    for kind, target, seeds in plan:
        started = time.monotonic()
        tally = run_cases(target, seeds, args.workers)
        refused = tally.counts.get("one line", 0) + tally.counts.get("refused", 0)
        cells = [kind, tally.cases, tally.cases - refused - len(tally.failures), refused]
        cells += [tally.failed(k) for k in FAILURES] + [f"{time.monotonic() - started:.0f}"]
        print("| " + " | ".join(map(str, cells)) + " |", flush=True)
        failures += [f"{kind}: {f}" for f in tally.failures]
        details.append(f"{kind}: {tally.counts}")
    print("\n".join(details))
    for line in failures[:20]:
        print(line, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
