"""Every alignment method's starter recipe, chained as a user would run them, with its held-out effect.

    python bench/alignment.py [--only dpo,grpo]

Runs the SFT stages, then DPO, KTO, SimPO, ORPO (from sft-warmup), the reward model (from sft-partial),
PPO (from sft-partial, against that reward model) and GRPO (from sft-partial), each recipe as shipped.
Checks the issue's targets: every recipe under 5 minutes; preference methods end >= 20 points above
their start or at >= 95%; GRPO raises the mean reward and exact match by >= 10 points (or reaches 95%);
PPO raises the reward-model score while completions stay well-formed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import workbench

ROOT = Path(__file__).resolve().parents[1]
STAGES = {  # name: (recipe, what it starts from)
    "sft-warmup": ("sft_warmup_starter.yaml", []),
    "sft-partial": ("sft_partial_starter.yaml", []),
    "dpo": ("dpo_lora_starter.yaml", ["sft-warmup"]),
    "kto": ("kto_lora_starter.yaml", ["sft-warmup"]),
    "simpo": ("simpo_lora_starter.yaml", ["sft-warmup"]),
    "orpo": ("orpo_lora_starter.yaml", ["sft-warmup"]),
    "reward": ("reward_full_starter.yaml", ["sft-partial"]),
    "ppo": ("ppo_lora_starter.yaml", ["sft-partial", "reward"]),
    "grpo": ("grpo_lora_starter.yaml", ["sft-partial"]),
}


def verdict(name: str, s: dict, wall: float) -> tuple[str, bool]:
    """The figures that matter for `name` and whether they meet the target (wall: the whole recipe)."""
    fast = wall < 300
    if name.startswith("sft"):
        return f"exact match {s['accuracy_before']:.1%} -> {s['accuracy_after']:.1%}", fast
    if name in ("dpo", "kto", "simpo", "orpo", "reward"):
        before, after = s["preference_accuracy_before"], s["preference_accuracy_after"]
        return f"preference accuracy {before:.1%} -> {after:.1%}", fast and (
            after - before >= 0.2 or after >= 0.95
        )
    figures = (
        f"mean reward {s['reward_mean_before']:.3f} -> {s['reward_mean_after']:.3f}, exact match "
        f"{s['accuracy_before']:.1%} -> {s['accuracy_after']:.1%}, well-formed {s['well_formed_after']:.0%}"
    )
    better = s["reward_mean_after"] > s["reward_mean_before"]
    if name == "grpo":
        gain = s["accuracy_after"] - s["accuracy_before"] >= 0.10 or s["accuracy_after"] >= 0.95
        return figures, fast and better and gain
    return figures, fast and better and s["well_formed_after"] >= 0.95


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated stages (their starting stages run too)")
    args = parser.parse_args()
    wanted = [n for n in args.only.split(",") if n] or list(STAGES)
    order = [n for n in STAGES if n in wanted or any(n in STAGES[w][1] for w in wanted)]
    results, passed = {}, True
    with tempfile.TemporaryDirectory() as out:
        for name in order:
            recipe, needs = STAGES[name]
            chain = {
                "sft-warmup": "model.from_run",
                "sft-partial": "model.from_run",
                "reward": "method.reward_model",
            }
            overrides = [f"output.root={out}"] + [f"{chain[n]}={results[n].run_dir}" for n in needs]
            started = time.perf_counter()
            result = workbench.train(workbench.load_config(ROOT / "recipes" / recipe, overrides), echo=False)
            wall = time.perf_counter() - started  # loading, measuring before and after, training, saving
            results[name] = result
            figures, ok = verdict(name, result.summary, wall)
            passed &= ok
            print(f"{name:12} {wall:6.0f} s  {figures}  -> {'PASS' if ok else 'FAIL'}",
                  flush=True)  # fmt: skip
    print(f"all targets met: {passed}; python {sys.version.split()[0]}, 2 CPU cores, recipes as shipped")


if __name__ == "__main__":
    main()
