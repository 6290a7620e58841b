"""ORPO (odds-ratio preference optimization) with TRL's ORPOTrainer.

ORPOTrainer lives in trl.experimental.orpo in TRL >=1.12,<1.13 (the range pinned in pyproject). It adds an
odds-ratio term, weighted by `method.beta` (default 0.1), to the SFT loss on the chosen answer, so it
needs no reference model and no prior SFT stage.
"""

from __future__ import annotations

from typing import Any

from workbench import methods
from workbench.adapters import Plan
from workbench.config import RunConfig

SPEC = methods.MethodSpec(
    name="orpo",
    description="preference pairs (prompt, chosen, rejected); SFT plus an odds-ratio term, no reference",
    data="preference",
    eval="preference",
    fields=("method.beta",),
    curves=methods.PAIR_CURVES,
    starter={"train.learning_rate": 2e-3, "method.beta": 2.0, "output.name": "orpo-lora"},
)


def build(
    cfg: RunConfig, model: Any, tokenizer: Any, train_dataset: Any, plan: Plan, args: dict, callbacks: list
) -> Any:
    orpo = methods.experimental("orpo")
    # remove_unused_columns: as for SimPO, the pair collator needs the columns
    settings = {**args, "beta": 0.1 if cfg.method.beta is None else cfg.method.beta,
                "max_length": cfg.data.max_length, "remove_unused_columns": False}  # fmt: skip
    return methods.trainer(orpo.ORPOTrainer, orpo.ORPOConfig, settings, plan, model, tokenizer, train_dataset,
                           callbacks)  # fmt: skip
