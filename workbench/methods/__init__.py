"""Training methods: each module translates a RunConfig into a TRL config and trainer (DESIGN 3.4).

A method module declares `SPEC = MethodSpec(...)`, everything the rest of the workbench knows about it
(DESIGN 3.8): data checks, evaluation, the monitor, the plots and the panels read it. It exposes
`check(cfg, train_rows)` (optional: raise on bad settings before a run exists) and
`build(cfg, model, tokenizer, train_dataset, plan, args, callbacks)` returning a ready TRL trainer.
The arguments shared by every method are made here, once.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Any

from workbench import devices
from workbench.config import ConfigError, RunConfig

AVAILABLE = ("sft", "dpo", "kto", "simpo", "orpo", "reward", "ppo", "grpo")
LOSS_CURVES = {"loss": "loss", "learning_rate": "learning_rate"}  # what every Trainer logs
# what TRL's DPO, CPO (SimPO) and ORPO trainers log about chosen vs rejected answers
PAIR_CURVES = {**LOSS_CURVES, "margin": "rewards/margins", "preference_accuracy": "rewards/accuracies",
               "reward_chosen": "rewards/chosen", "reward_rejected": "rewards/rejected"}  # fmt: skip


@dataclass(frozen=True)
class MethodSpec:
    """What a method needs, reads and logs."""

    name: str
    description: str  # one line, shown where the method is chosen
    data: str  # the rows it trains on: a kind in workbench.data.KINDS
    eval: str  # how its effect is measured: a kind in workbench.evaluate
    head: str = "causal"  # "causal" language model or "reward" scorer
    fields: tuple[str, ...] = ()  # the method.* keys it reads (train.*, data.* are read by all)
    loss_types: tuple[str, ...] = ()  # method.loss_type choices, the default first
    # shared curve name -> the key its TRL trainer logs it under (the monitor adds the shared names)
    curves: dict[str, str] = field(default_factory=lambda: dict(LOSS_CURVES))
    resumable: bool = True  # False: its TRL loop cannot continue from a checkpoint
    stop_by_exception: bool = False  # its TRL loop ignores should_training_stop (see monitor.StopTraining)
    starter: dict[str, Any] = field(default_factory=dict)  # dotted key -> value of its starter recipe


def get(name: str) -> Any:
    """The module of method `name`."""
    if name not in AVAILABLE:
        raise ConfigError(f"method.name: unknown method {name!r}; choose one of {', '.join(AVAILABLE)}")
    return import_module(f"workbench.methods.{name}")


def spec(name: str) -> MethodSpec:
    """The MethodSpec of method `name`."""
    return get(name).SPEC


def known_loss(method: MethodSpec, loss: str | None) -> str:
    """`loss` (method.loss_type), else the method's default; an error names the losses it knows."""
    loss = loss or method.loss_types[0]
    if loss not in method.loss_types:
        raise ConfigError(f"method.loss_type: {method.name.upper()} has no loss '{loss}'; "
                          f"use one of {', '.join(method.loss_types)}")  # fmt: skip
    return loss


def experimental(name: str) -> Any:
    """A module under trl.experimental, imported without its "unstable API" notice (versions: pyproject)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*trl.experimental", category=UserWarning)
        return import_module(f"trl.experimental.{name}")


def trainer(trainer_class: Any, config_class: Any, settings: dict, plan: Any, model: Any, tokenizer: Any,
            train_dataset: Any, callbacks: list, **extra: Any) -> Any:  # fmt: skip
    """A TRL trainer as every method builds one: the shared `args` plus the method's own `settings`,
    the adapter's trainer arguments (GaLore's optimizer) on top, and its PEFT config when it has one."""
    args = config_class(**{**settings, **plan.trainer_args})
    return trainer_class(model=model, args=args, train_dataset=train_dataset, processing_class=tokenizer,
                         peft_config=plan.peft_config, callbacks=callbacks, **extra)  # fmt: skip


def common_args(cfg: RunConfig, device: devices.Device, output_dir: Path) -> dict[str, Any]:
    """Trainer arguments every TRL config takes, named as upstream names them."""
    t = cfg.train
    return dict(
        output_dir=str(output_dir),
        learning_rate=t.learning_rate,
        num_train_epochs=t.num_train_epochs,
        max_steps=t.max_steps,
        per_device_train_batch_size=t.per_device_train_batch_size,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        lr_scheduler_type=t.lr_scheduler_type,
        warmup_steps=t.warmup_steps,
        weight_decay=t.weight_decay,
        max_grad_norm=t.max_grad_norm,
        optim=t.optim,
        logging_steps=t.logging_steps,
        save_strategy="steps",
        save_steps=t.save_steps,
        save_total_limit=t.save_total_limit,
        seed=t.seed,
        **_checkpointing(t.gradient_checkpointing),
        dataloader_num_workers=t.dataloader_num_workers,
        report_to=[],  # the run directory is the record; no external trackers by default
        disable_tqdm=True,  # progress is printed by the workbench's own callback
        use_cpu=device.type == "cpu",  # else accelerate would pick any accelerator it sees
        **devices.training_precision_args(device),
    )


def _checkpointing(on: bool) -> dict[str, bool]:
    """transformers 5.2x renamed gradient_checkpointing to activation_checkpointing and warns on the old
    name; TRL's configs set the old one unless told, so the setting is always passed, by its current name."""
    from transformers import TrainingArguments

    new = "activation_checkpointing" in TrainingArguments.__dataclass_fields__
    return {"activation_checkpointing" if new else "gradient_checkpointing": on}
