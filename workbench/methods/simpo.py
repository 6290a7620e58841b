"""SimPO (simple preference optimization) with TRL's CPO trainer and `loss_type="simpo"`.

CPOTrainer lives in trl.experimental.cpo in TRL >=1.12,<1.13 (the range pinned in pyproject). SimPO needs no
reference model: its reward is the length-normalised log-likelihood times `method.beta` (default 2.0),
and `method.simpo_gamma` is the target margin. `method.cpo_alpha` > 0 adds CPO's SFT term.
"""

from __future__ import annotations

from typing import Any

from workbench import methods
from workbench.adapters import Plan
from workbench.config import RunConfig

SPEC = methods.MethodSpec(
    name="simpo",
    description="preference pairs (prompt, chosen, rejected); length-normalised reward, no reference model",
    data="preference",
    eval="preference",
    fields=("method.beta", "method.simpo_gamma", "method.cpo_alpha"),
    curves=methods.PAIR_CURVES,
    starter={"train.learning_rate": 2e-3, "method.beta": 2.0, "method.simpo_gamma": 0.5,
             "method.cpo_alpha": 0.0, "output.name": "simpo-lora"},
)  # fmt: skip


def build(
    cfg: RunConfig, model: Any, tokenizer: Any, train_dataset: Any, plan: Plan, args: dict, callbacks: list
) -> Any:
    cpo = methods.experimental("cpo")
    m = cfg.method
    # remove_unused_columns: its pair collator needs the columns (TRL turns it off itself, with a warning)
    settings = {**args, "loss_type": "simpo", "beta": 2.0 if m.beta is None else m.beta,
                "simpo_gamma": m.simpo_gamma, "cpo_alpha": m.cpo_alpha, "max_length": cfg.data.max_length,
                "remove_unused_columns": False}  # fmt: skip
    return methods.trainer(
        cpo.CPOTrainer, cpo.CPOConfig, settings, plan, model, tokenizer, train_dataset, callbacks
    )
