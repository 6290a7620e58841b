"""Workbench overhead over a plain TRL script doing the same job (SFT or DPO), side by side.

Same starter model, data, LoRA settings, steps, batch and seed; the two runs alternate (A B A B ...)
so machine noise hits both. Reports training tokens/s of each and their ratio (target >= 0.97).
    python bench/overhead.py --method sft [--steps 100] [--repeats 3]   # recipes/quickstart.yaml
    python bench/overhead.py --method dpo                               # recipes/dpo_lora_starter.yaml
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import workbench
from workbench import data, models

ROOT = Path(__file__).resolve().parents[1]


RECIPES = {"sft": "quickstart.yaml", "dpo": "dpo_lora_starter.yaml"}


def config(method: str, steps: int, out: str) -> workbench.RunConfig:
    return workbench.load_config(
        ROOT / "recipes" / RECIPES[method],
        [
            "model.from_run=null",  # both sides start from the starter itself
            "model.name_or_path=starter",
            f"train.max_steps={steps}",
            "train.save_steps=100000",
            f"output.root={out}",
            "eval.before=false",
            "eval.after=false",
        ],
    )


def run_workbench(cfg: workbench.RunConfig) -> float:
    return workbench.train(cfg, echo=False).summary["tokens_per_second"]


def run_plain_trl(cfg: workbench.RunConfig, out: str) -> float:
    """What a user would write by hand with TRL, PEFT and transformers."""
    import trl
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = models.resolve(cfg.model)
    dpo = cfg.method.name == "dpo"
    dataset, _ = data.load_dataset_for(cfg.data, "preference" if dpo else "sft", "train")
    t = cfg.train
    extra = {"beta": cfg.method.beta, "loss_type": [cfg.method.loss_type]} if dpo else {}
    args = (trl.DPOConfig if dpo else trl.SFTConfig)(
        output_dir=out, max_steps=t.max_steps, per_device_train_batch_size=t.per_device_train_batch_size,
        learning_rate=t.learning_rate, warmup_steps=t.warmup_steps, logging_steps=t.logging_steps,
        save_strategy="no", report_to=[], bf16=False, fp16=False, use_cpu=True, seed=t.seed,
        max_length=cfg.data.max_length, disable_tqdm=True,
        # The same job: SFTConfig defaults to gradient checkpointing and a fused AdamW, the recipe to neither.
        gradient_checkpointing=t.gradient_checkpointing, optim=t.optim, **extra,
    )  # fmt: skip
    lora = LoraConfig(
        r=cfg.adapter.r,
        lora_alpha=cfg.adapter.lora_alpha,
        target_modules=models.lora_targets(path),
        task_type="CAUSAL_LM",
    )
    trainer = (trl.DPOTrainer if dpo else trl.SFTTrainer)(
        model=AutoModelForCausalLM.from_pretrained(path),
        args=args,
        train_dataset=dataset,
        processing_class=AutoTokenizer.from_pretrained(path),
        peft_config=lora,
    )
    started = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - started
    tokens = [h["num_tokens"] for h in trainer.state.log_history if "num_tokens" in h][-1]
    return tokens / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=sorted(RECIPES), default="sft")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    speeds: dict[str, list[float]] = {"workbench": [], "plain TRL": []}
    with tempfile.TemporaryDirectory() as out:
        cfg = config(args.method, args.steps, out)
        run_plain_trl(config(args.method, 5, out), out)  # warm-up: starter build, imports, caches
        for i in range(args.repeats):
            speeds["workbench"].append(run_workbench(cfg))
            speeds["plain TRL"].append(run_plain_trl(cfg, f"{out}/plain-{i}"))
            print(
                f"round {i + 1}: workbench {speeds['workbench'][-1]:.0f} tok/s, plain TRL {speeds['plain TRL'][-1]:.0f} tok/s",
                flush=True,
            )
    median = {k: statistics.median(v) for k, v in speeds.items()}
    ratio = median["workbench"] / median["plain TRL"]
    print(f"median tokens/s: workbench {median['workbench']:.0f}, plain TRL {median['plain TRL']:.0f}")
    print(
        f"ratio workbench / plain TRL: {ratio:.3f} (target >= 0.97) -> {'PASS' if ratio >= 0.97 else 'FAIL'}"
    )
    print(
        f"{args.method}: {args.steps} steps x {args.repeats} rounds, alternating; python {sys.version.split()[0]}"
    )


if __name__ == "__main__":
    main()
