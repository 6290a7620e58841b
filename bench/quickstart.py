"""The quickstart as a user runs it: wall time of `workbench train recipes/quickstart.yaml` in a fresh
process (model build cached), and held-out exact match before and after (targets: < 180 s, +40 points).
    python bench/quickstart.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "workbench", "train", "recipes/quickstart.yaml", f"output.root={out}"],
            cwd=ROOT, capture_output=True, text=True, check=True,
        )  # fmt: skip
        wall = time.perf_counter() - started
        (run_dir,) = Path(out).iterdir()
        summary = json.loads((run_dir / "summary.json").read_text())
    before, after = summary["accuracy_before"], summary["accuracy_after"]
    print(done.stdout.strip().splitlines()[-2])
    print(f"wall time {wall:.1f} s (target < 180 s) -> {'PASS' if wall < 180 else 'FAIL'}")
    print(
        f"held-out exact match {before:.1%} -> {after:.1%}: +{100 * (after - before):.1f} points (target >= 40) -> {'PASS' if after - before >= 0.4 else 'FAIL'}"
    )
    print(
        f"training {summary['wall_time_s']} s, {summary['tokens_per_second']} tok/s, peak memory {summary['peak_memory_mb']} MB, {summary['device']}"
    )


if __name__ == "__main__":
    main()
