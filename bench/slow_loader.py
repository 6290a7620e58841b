"""The slow-loader story, measured: recipes/profile_slow_dataloader_starter.yaml as shipped (0 loader
workers) against the fix its diagnosis suggests (train.dataloader_num_workers=2), alternating A B A B.
Reports tokens/s, the data loader's share of a step and the diagnosis of each. Target: the fix raises
tokens/s by at least 1.3x.
    python bench/slow_loader.py [--repeats 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import workbench

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "profile_slow_dataloader_starter.yaml"


def run(out: str, *overrides: str) -> dict:
    cfg = workbench.load_config(RECIPE, [f"output.root={out}", *overrides])
    return workbench.train(cfg, echo=False).summary


def share(summary: dict) -> float:
    split = summary["step_split_s"]
    return split["data_wait"] / split["step"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    slow, fixed = [], []
    with tempfile.TemporaryDirectory() as out:
        for i in range(args.repeats):
            slow.append(run(out))
            fixed.append(run(out, "train.dataloader_num_workers=2"))
            for name, s in (("as shipped", slow[-1]), ("with 2 workers", fixed[-1])):
                said = "; ".join(f["detail"] for f in s["diagnosis"]) or "nothing stands out"
                print(f"round {i + 1} {name}: {s['tokens_per_second']:.0f} tok/s, data loader {share(s):.0%} "
                      f"of a {s['step_split_s']['step'] * 1e3:.0f} ms step; diagnosis: {said}", flush=True)  # fmt: skip
    speed = [statistics.median(s["tokens_per_second"] for s in runs) for runs in (slow, fixed)]
    ratio = speed[1] / speed[0]
    print(f"median tokens/s: as shipped {speed[0]:.0f}, with the fix {speed[1]:.0f}")
    print(f"ratio fix / as shipped: {ratio:.2f} (target >= 1.3) -> {'PASS' if ratio >= 1.3 else 'FAIL'}")
    print(f"{slow[0]['steps']} steps x {args.repeats} rounds, alternating; python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
