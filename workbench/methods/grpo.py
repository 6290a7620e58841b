"""GRPO (group relative policy optimization) with verifiable rewards, through TRL's GRPOTrainer (TRL 1.12).

For each prompt the policy samples `method.num_generations` completions; each is scored by the reward
functions named in `method.rewards` (workbench.rewards), and completions better than their group's
mean are reinforced. `method.beta` (TRL's default 0.0) adds a KL penalty towards the starting policy.
"""

from __future__ import annotations

from typing import Any

from workbench import methods, rewards
from workbench.adapters import Plan
from workbench.config import ConfigError, RunConfig

SPEC = methods.MethodSpec(
    name="grpo",
    description="prompts with reference answers, scored by the reward functions in method.rewards",
    data="prompts",
    eval="rewards",
    fields=("method.beta", "method.rewards", "method.allow_reward_code", "method.num_generations",
            "method.max_completion_length", "method.temperature"),
    curves={**methods.LOSS_CURVES, "reward_mean": "reward", "kl": "kl",
            "completion_length": "completions/mean_length"},
    starter={"train.learning_rate": 1e-3, "method.rewards": {"exact_match": 1.0, "similarity": 0.5},
             "method.num_generations": 8, "method.max_completion_length": 8, "method.temperature": 0.7,
             "output.name": "grpo-lora"},
)  # fmt: skip


def check(cfg: RunConfig, rows: list) -> None:
    m, t = cfg.method, cfg.train
    loaded = rewards.load(m.rewards, m.allow_reward_code)
    rewards.dry_run(loaded, rows)  # a broken reward function fails now, not after the first generation
    if m.num_generations < 2:
        raise ConfigError("method.num_generations: GRPO compares completions of one prompt; use 2 or more")
    batch = t.per_device_train_batch_size * t.gradient_accumulation_steps
    if batch % m.num_generations:
        raise ConfigError(
            f"train.per_device_train_batch_size x gradient_accumulation_steps ({batch}) must be a multiple of "
            f"method.num_generations ({m.num_generations}): each batch holds whole groups of completions"
        )


def scorer(cfg: RunConfig, model: Any, tokenizer: Any) -> Any:
    """The weighted reward of answers, for measuring held-out reward before and after training."""
    loaded = rewards.load(cfg.method.rewards, cfg.method.allow_reward_code)
    return lambda rows, texts: rewards.total(loaded, texts, rewards.columns(rows))


def build(
    cfg: RunConfig, model: Any, tokenizer: Any, train_dataset: Any, plan: Plan, args: dict, callbacks: list
) -> Any:
    from trl import GRPOConfig, GRPOTrainer

    m = cfg.method
    functions, weights = rewards.combine(rewards.load(m.rewards, m.allow_reward_code))
    settings = {**args, "num_generations": m.num_generations, "max_completion_length": m.max_completion_length,
                "temperature": m.temperature, "beta": 0.0 if m.beta is None else m.beta,
                "reward_weights": weights}  # fmt: skip
    return methods.trainer(GRPOTrainer, GRPOConfig, settings, plan, model, tokenizer, train_dataset, callbacks,
                           reward_funcs=functions)  # fmt: skip
