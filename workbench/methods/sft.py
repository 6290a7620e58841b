"""Supervised fine-tuning with TRL's SFTTrainer.

Chat data arrives as prompt/completion pairs (workbench.data.for_sft), for which TRL computes the
loss on the completion only; `data.completion_only_loss: false` sends whole conversations instead.
"""

from __future__ import annotations

from typing import Any

from workbench import methods
from workbench.adapters import Plan
from workbench.config import RunConfig

SPEC = methods.MethodSpec(
    name="sft",
    description="supervised fine-tuning on chat data: messages, ShareGPT, Alpaca or prompt/answer rows",
    data="sft",
    eval="exact_match",
    starter={"train.learning_rate": 2e-3, "output.name": "sft-warmup"},  # recipes/sft_warmup_starter.yaml
)


def build(
    cfg: RunConfig, model: Any, tokenizer: Any, train_dataset: Any, plan: Plan, args: dict, callbacks: list
) -> Any:
    from trl import SFTConfig, SFTTrainer

    settings = {**args, "max_length": cfg.data.max_length}
    return methods.trainer(SFTTrainer, SFTConfig, settings, plan, model, tokenizer, train_dataset, callbacks)
