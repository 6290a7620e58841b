"""What profiling costs (issue 5), side by side in one run.

1. Profiling off: the always-on step clock's cost per step (its hooks called 100,000 times), against a
   quickstart step's time; and side by side, tokens/s of quickstart runs with the clock against runs
   with it replaced by a callback that does nothing (plain TRL). Target: under 1% of tokens/s.
2. Profiling on: what a 200-step quickstart run with `profile.enabled` (the default window: 1 + 1 + 3
   steps) spends on profiling, measured inside the run: the time in the window's hooks (profiler start,
   steps, trace export, summary) plus the extra time of the recorded steps over the run's median step,
   over the run's wall time. Also its total wall time against runs without, alternating (noisier).
   Target: under 10% longer.
    python bench/profiling.py [--steps 200] [--repeats 3]
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
from workbench import runs

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


class NoClock:
    """Stands in for the step clock: the trainer's own loop, untimed."""

    def __init__(self, device):
        from transformers import TrainerCallback

        self.callback = TrainerCallback()

    def attach(self, trainer) -> None:
        pass

    def take(self) -> dict:
        return {}

    def __getattr__(self, name):
        return getattr(self.callback, name)


class HookTimer:
    """Adds up the seconds spent in the profile window's hooks (the profiler's own work)."""

    seconds = 0.0

    @classmethod
    def install(cls) -> None:
        from workbench.profile_window import ProfileWindow

        for name in ("on_train_begin", "on_step_end", "on_train_end"):
            setattr(ProfileWindow, name, cls.timed(getattr(ProfileWindow, name)))

    @classmethod
    def timed(cls, hook):
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return hook(*args, **kwargs)
            finally:
                cls.seconds += time.perf_counter() - started

        return wrapper


def run(steps: int, out: str, arm: str) -> dict:
    from workbench import steptimes

    overrides = [f"train.max_steps={steps}", f"output.root={out}", "eval.before=false", "eval.after=false",
                 "train.save_steps=100000", "train.logging_steps=1", f"profile.enabled={str(arm == 'profiled').lower()}"]  # fmt: skip
    clock, steptimes.StepClock = steptimes.StepClock, NoClock if arm == "plain" else steptimes.StepClock
    HookTimer.seconds = 0.0
    started = time.perf_counter()
    try:
        result = workbench.train(
            workbench.load_config(ROOT / "recipes" / "quickstart.yaml", overrides), echo=False
        )
    finally:
        steptimes.StepClock = clock
    wall, summary = time.perf_counter() - started, result.summary
    steps_s = [r["step_s"] for r in runs.read_jsonl(result.run_dir / "metrics.jsonl") if "step_s" in r]
    # steps 2-5 are the profiler's warm-up and recorded steps (step 1 is every run's warm-up)
    extra = sum(s - statistics.median(steps_s) for s in steps_s[1:5]) if steps_s else 0.0
    return {"wall": wall, "tokens_per_second": summary["tokens_per_second"], "hooks": HookTimer.seconds,
            "extra": extra, "step": (summary.get("step_split_s") or {}).get("step")}  # fmt: skip


def median(results: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in results)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    HookTimer.install()
    arms = {"plain": [], "timed": [], "profiled": []}
    with tempfile.TemporaryDirectory() as out:
        for i in range(args.repeats):
            for arm, results in arms.items():
                results.append(run(args.steps, out, arm))
            print(f"round {i + 1}: " + ", ".join(f"{arm} {r[-1]['wall']:.1f} s, {r[-1]['tokens_per_second']:,.0f} tok/s"
                                                 for arm, r in arms.items()), flush=True)  # fmt: skip
    cost, step = clock_cost_per_step(), median(arms["timed"], "step")
    share = cost / step
    print(f"step clock: {cost * 1e6:.1f} us per step = {share:.4%} of a {step * 1e3:.0f} ms step "
          f"(target < 1%) -> {'PASS' if share < 0.01 else 'FAIL'}")  # fmt: skip
    ratio = median(arms["timed"], "tokens_per_second") / median(arms["plain"], "tokens_per_second")
    print(f"side by side, tokens/s with the step clock / without: {ratio:.3f} (runs differ by more than the "
          "clock's cost here: the line above is the precise figure)")  # fmt: skip
    inside = [(r["hooks"] + r["extra"]) / r["wall"] for r in arms["profiled"]]
    hooks, extra = median(arms["profiled"], "hooks"), median(arms["profiled"], "extra")
    print(f"profiling on, measured inside each run: {hooks:.2f} s in the window's hooks + {extra:.2f} s of slower "
          f"recorded steps = {statistics.median(inside):+.1%} of the run's wall time (target < +10%) -> "
          f"{'PASS' if statistics.median(inside) < 0.10 else 'FAIL'}")  # fmt: skip
    growth = median(arms["profiled"], "wall") / median(arms["timed"], "wall") - 1
    print(f"profiling on, side by side: {growth:+.1%} median wall time against runs without (noisier)")
    print(f"{args.steps} steps x {args.repeats} rounds, alternating; python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
