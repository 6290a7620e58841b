"""Supervised fine-tuning with TRL's SFTTrainer.

Chat data arrives as prompt/completion pairs (workbench.data.for_sft), for which TRL computes the
loss on the completion only; `data.completion_only_loss: false` sends whole conversations instead.
"""

from __future__ import annotations

from typing import Any

from workbench.adapters import Plan
from workbench.config import RunConfig

DATA = "sft"  # the data layer's name for the shape this method needs
EVAL = "exact_match"
HEAD = "causal"


def build(
    cfg: RunConfig, model: Any, tokenizer: Any, train_dataset: Any, plan: Plan, args: dict, callbacks: list
) -> Any:
    from trl import SFTConfig, SFTTrainer

    config = SFTConfig(**{**args, **plan.trainer_args}, max_length=cfg.data.max_length)  # GaLore sets optim
    return SFTTrainer(
        model=model,
        args=config,
        train_dataset=train_dataset,
        processing_class=tokenizer,
        peft_config=plan.peft_config,
        callbacks=callbacks,
    )
