"""Direct Preference Optimization with TRL's DPOTrainer (TRL 1.12).

Trains on preference pairs. The reference model is the starting policy: with an adapter, the model with
its adapter switched off; with full weights, a frozen copy TRL makes. `method.beta` (default 0.1) sets
how far the policy may move from it; `method.loss_type` picks the loss (sigmoid, ipo, hinge, ...).
"""

from __future__ import annotations

from typing import Any

from workbench import methods
from workbench.adapters import Plan
from workbench.config import ConfigError, RunConfig

DATA = "preference"
EVAL = "preference"
HEAD = "causal"
LOSS_TYPES = ("sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard", "aot",
              "aot_unpaired", "apo_zero", "apo_down", "discopop", "sft", "sigmoid_norm")  # fmt: skip


def check(cfg: RunConfig, rows: list) -> None:
    loss = cfg.method.loss_type or "sigmoid"
    if loss not in LOSS_TYPES:
        raise ConfigError(f"method.loss_type: DPO has no loss '{loss}'; use one of {', '.join(LOSS_TYPES)}")


def build(
    cfg: RunConfig, model: Any, tokenizer: Any, train_dataset: Any, plan: Plan, args: dict, callbacks: list
) -> Any:
    from trl import DPOConfig, DPOTrainer

    m = cfg.method
    settings = {**args, "beta": 0.1 if m.beta is None else m.beta, "loss_type": [m.loss_type or "sigmoid"],
                "max_length": cfg.data.max_length}  # fmt: skip
    return methods.trainer(DPOTrainer, DPOConfig, settings, plan, model, tokenizer, train_dataset, callbacks)
