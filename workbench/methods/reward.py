"""Reward modelling with TRL's RewardTrainer (TRL 1.12): learn to score chosen answers above rejected ones.

The model is the starting policy with a one-number score head (AutoModelForSequenceClassification);
with an adapter the head trains in full beside it. The result is what a PPO recipe names in
`method.reward_model` (this run's directory).
"""

from __future__ import annotations

from typing import Any

from workbench import methods
from workbench.adapters import Plan
from workbench.config import RunConfig

SPEC = methods.MethodSpec(
    name="reward",
    description="preference pairs (prompt, chosen, rejected); learns a score, for PPO's method.reward_model",
    data="preference",
    eval="ranking",
    head="reward",
    curves={**methods.LOSS_CURVES, "reward_mean": "mean_reward", "margin": "margin",
            "preference_accuracy": "accuracy"},
    starter={"train.learning_rate": 3e-4, "output.name": "reward-full"},
)  # fmt: skip


def build(
    cfg: RunConfig, model: Any, tokenizer: Any, train_dataset: Any, plan: Plan, args: dict, callbacks: list
) -> Any:
    from trl import RewardConfig, RewardTrainer

    settings = {**args, "max_length": cfg.data.max_length}
    return methods.trainer(
        RewardTrainer, RewardConfig, settings, plan, model, tokenizer, train_dataset, callbacks
    )
