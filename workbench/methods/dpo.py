"""Direct Preference Optimization with TRL's DPOTrainer (TRL 1.12).

Trains on preference pairs. The reference model is the starting policy: with an adapter, the model with
its adapter switched off; with full weights, a frozen copy TRL makes. `method.beta` (default 0.1) sets
how far the policy may move from it; `method.loss_type` picks the loss (sigmoid, ipo, hinge, ...).
"""

from __future__ import annotations

from typing import Any

from workbench import methods
from workbench.adapters import Plan
from workbench.config import RunConfig

SPEC = methods.MethodSpec(
    name="dpo",
    description="preference pairs (prompt, chosen, rejected); the starting policy is the reference",
    data="preference",
    eval="preference",
    fields=("method.beta", "method.loss_type"),
    loss_types=("sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard", "aot",
                "aot_unpaired", "apo_zero", "apo_down", "discopop", "sft", "sigmoid_norm"),
    curves=methods.PAIR_CURVES,
    starter={"train.learning_rate": 2e-3, "method.beta": 0.1, "method.loss_type": "sigmoid",
             "output.name": "dpo-lora"},
)  # fmt: skip


def check(cfg: RunConfig, rows: list) -> None:
    methods.known_loss(SPEC, cfg.method.loss_type)


def build(
    cfg: RunConfig, model: Any, tokenizer: Any, train_dataset: Any, plan: Plan, args: dict, callbacks: list
) -> Any:
    from trl import DPOConfig, DPOTrainer

    m = cfg.method
    loss = methods.known_loss(SPEC, m.loss_type)
    settings = {**args, "beta": 0.1 if m.beta is None else m.beta, "loss_type": [loss],
                "max_length": cfg.data.max_length}  # fmt: skip
    return methods.trainer(DPOTrainer, DPOConfig, settings, plan, model, tokenizer, train_dataset, callbacks)
