"""The small-batch rule, measured: the quickstart recipe at one sample per step against the batch the
recipe ships (32), alternating A B A B. Reports MFU (against the measured, cached matmul peak),
samples/s and the diagnosis of each. The rule must name the batch for the small run and stay silent
for the large one.
    python bench/small_batch.py [--repeats 2] [--steps 60]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import workbench

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "quickstart.yaml"


def run(out: str, steps: int, batch: int) -> dict:
    overrides = [f"output.root={out}", f"train.max_steps={steps}", f"train.per_device_train_batch_size={batch}",
                 "train.logging_steps=10", "eval.before=false", "eval.after=false", "output.save_result=false"]  # fmt: skip
    return workbench.train(workbench.load_config(RECIPE, overrides), echo=False).summary


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    small, large = [], []
    with tempfile.TemporaryDirectory() as out:
        for i in range(args.repeats):
            small.append(run(out, args.steps, 1))
            large.append(run(out, args.steps, 32))
            for name, s in (("batch 1", small[-1]), ("batch 32", large[-1])):
                said = "; ".join(f["detail"] for f in s["diagnosis"]) or "nothing stands out"
                print(f"round {i + 1} {name}: MFU {s['mfu']:.1%}, {s['samples_per_second']:.0f} samples/s, "
                      f"{s['tokens_per_batch']:.0f} tokens per batch; diagnosis: {said}", flush=True)  # fmt: skip
    mfu = [statistics.median(s["mfu"] for s in runs) for runs in (small, large)]
    named = all(any(f["what"] == "small batch" for f in s["diagnosis"]) for s in small)
    silent = not any(f["what"] == "small batch" for s in large for f in s["diagnosis"])
    print(f"median MFU: batch 1 {mfu[0]:.1%}, batch 32 {mfu[1]:.1%} (ratio {mfu[1] / mfu[0]:.1f}x)")
    print(f"peak: {large[0]['peak_tflops'] * 1e3:.1f} GFLOP/s, {large[0]['peak_source']}")
    print(f"rule names the small batch every time: {named}; silent for batch 32: {silent} -> "
          f"{'PASS' if named and silent else 'FAIL'}")  # fmt: skip
    print(f"{args.steps} steps x {args.repeats} rounds, alternating; python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
