"""What profiling costs (issue 5), side by side in one run.

1. Profiling off: the always-on step clock's cost per step (its hooks called 100,000 times), against a
   quickstart step's time. Target: under 1% of tokens/s.
2. Profiling on: total wall time of a 200-step quickstart run with `profile.enabled` (the default
   window: 1 + 1 + 3 steps) against the same run without, alternating. Target: under 10% longer.
    python bench/profiling.py [--steps 200] [--repeats 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path

import workbench

ROOT = Path(__file__).resolve().parents[1]


def clock_cost_per_step(calls: int = 100_000) -> float:
    """Seconds the step clock adds to one optimizer step (five hooks and a take per ten steps)."""
    from workbench import devices
    from workbench.steptimes import StepClock

    clock, nothing = StepClock(devices.Device("cpu")), types.SimpleNamespace()
    started = time.perf_counter()
    for i in range(calls):
        clock.on_step_begin(nothing, nothing, nothing)
        clock.on_pre_optimizer_step(nothing, nothing, nothing)
        clock.on_optimizer_step(nothing, nothing, nothing)
        clock.on_step_end(nothing, nothing, nothing)
        if i % 10 == 0:
            clock.take()
    return (time.perf_counter() - started) / calls


def run(steps: int, out: str, profile: bool) -> dict:
    overrides = [f"train.max_steps={steps}", f"output.root={out}", "eval.before=false", "eval.after=false",
                 "train.save_steps=100000", f"profile.enabled={str(profile).lower()}"]  # fmt: skip
    started = time.perf_counter()
    summary = workbench.train(
        workbench.load_config(ROOT / "recipes" / "quickstart.yaml", overrides), echo=False
    ).summary
    return {"wall": time.perf_counter() - started, "step": summary["step_split_s"]["step"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    off, on = [], []
    with tempfile.TemporaryDirectory() as out:
        for i in range(args.repeats):
            off.append(run(args.steps, out, False))
            on.append(run(args.steps, out, True))
            print(
                f"round {i + 1}: profiling off {off[-1]['wall']:.1f} s, on {on[-1]['wall']:.1f} s", flush=True
            )
    cost, step = clock_cost_per_step(), statistics.median(r["step"] for r in off)
    share = cost / step
    print(f"step clock: {cost * 1e6:.1f} us per step = {share:.4%} of a {step * 1e3:.0f} ms step "
          f"(target < 1%) -> {'PASS' if share < 0.01 else 'FAIL'}")  # fmt: skip
    growth = statistics.median(r["wall"] for r in on) / statistics.median(r["wall"] for r in off) - 1
    print(f"{args.steps}-step run with profiling on: {growth:+.1%} wall time (target < +10%) -> "
          f"{'PASS' if growth < 0.10 else 'FAIL'}")  # fmt: skip
    print(f"{args.steps} steps x {args.repeats} rounds, alternating; python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
