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

DATA = "kto"
EVAL = "preference"
HEAD = "causal"
LOSS_TYPES = ("kto", "apo_zero_unpaired")


def check(cfg: RunConfig, rows: list) -> None:
    loss = cfg.method.loss_type or "kto"
    if loss not in LOSS_TYPES:
        raise ConfigError(f"method.loss_type: KTO has no loss '{loss}'; use one of {', '.join(LOSS_TYPES)}")
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
    settings = {**args, "beta": 0.1 if m.beta is None else m.beta, "loss_type": m.loss_type or "kto",
                "desirable_weight": m.desirable_weight, "undesirable_weight": m.undesirable_weight,
                "max_length": cfg.data.max_length}  # fmt: skip
    return methods.trainer(KTOTrainer, KTOConfig, settings, plan, model, tokenizer, train_dataset, callbacks)
