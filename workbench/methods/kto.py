"""Kahneman-Tversky Optimization with TRL's KTOTrainer (TRL 1.12).

Trains on unpaired examples labelled good or bad; preference pairs are split into one good and one bad
row automatically (workbench.data.for_kto). `method.desirable_weight` and `undesirable_weight`
balance the two kinds; `method.beta` (default 0.1) limits the distance from the starting policy.
"""

from __future__ import annotations

from typing import Any

from workbench import methods
from workbench.adapters import Plan
from workbench.config import ConfigError, RunConfig

SPEC = methods.MethodSpec(
    name="kto",
    description="answers labelled good or bad (prompt, completion, label), or preference pairs split in two",
    data="kto",
    eval="preference",
    fields=("method.beta", "method.loss_type", "method.desirable_weight", "method.undesirable_weight"),
    loss_types=("kto", "apo_zero_unpaired"),
    curves={**methods.LOSS_CURVES, "margin": "rewards/margins", "kl": "kl", "reward_chosen": "rewards/chosen",
            "reward_rejected": "rewards/rejected"},
    starter={"train.learning_rate": 5e-4, "method.beta": 0.1, "method.desirable_weight": 2.0,
             "method.undesirable_weight": 1.0, "output.name": "kto-lora"},
)  # fmt: skip


def check(cfg: RunConfig, rows: list) -> None:
    methods.known_loss(SPEC, cfg.method.loss_type)
    labels = {row["label"] for row in rows}
    if labels != {True, False}:
        raise ConfigError(
            f"KTO needs both good (label true) and bad (label false) examples; the data has only {labels}"
        )
    if cfg.train.per_device_train_batch_size < 2:
        raise ConfigError(
            "train.per_device_train_batch_size: KTO estimates its KL term per batch; use 2 or more"
        )


def build(
    cfg: RunConfig, model: Any, tokenizer: Any, train_dataset: Any, plan: Plan, args: dict, callbacks: list
) -> Any:
    from trl import KTOConfig, KTOTrainer

    m = cfg.method
    loss = methods.known_loss(SPEC, m.loss_type)
    settings = {**args, "beta": 0.1 if m.beta is None else m.beta, "loss_type": loss,
                "desirable_weight": m.desirable_weight, "undesirable_weight": m.undesirable_weight,
                "max_length": cfg.data.max_length}  # fmt: skip
    return methods.trainer(KTOTrainer, KTOConfig, settings, plan, model, tokenizer, train_dataset, callbacks)
