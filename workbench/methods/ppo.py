"""PPO (RLHF's classic last stage) with TRL's PPOTrainer: policy, reference, reward and value models.

PPOTrainer lives in trl.experimental.ppo in TRL >=1.12,<1.13 (pinned in pyproject; TRL removed it in 1.14).
The reward model is `method.reward_model`: a reward run directory (its adapter merged) or a saved
sequence-classification model; the value model starts as a copy of it, as in TRL's examples. The
reference is the starting policy. `method.beta` is the KL coefficient (default 0.05). PPO runs for
`train.max_steps` updates of `per_device_train_batch_size x gradient_accumulation_steps` prompts.

TRL's PPO loop differs from Trainer in two ways the workbench works around here and in the recorder:
it ignores `should_training_stop` (so a stop request ends it by StopTraining after the checkpoint),
and it cannot resume (so --resume is refused for PPO).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from workbench import config as config_mod
from workbench import evaluate, methods, stages
from workbench.adapters import Plan
from workbench.config import ConfigError, RunConfig

SPEC = methods.MethodSpec(
    name="ppo",
    description="prompts, scored by a reward model (method.reward_model: a reward run)",
    data="prompts",
    eval="reward_model",
    fields=("method.beta", "method.reward_model", "method.max_completion_length", "method.temperature"),
    curves={"loss": "loss/policy_avg", "learning_rate": "lr", "reward_mean": "objective/scores",
            "kl": "objective/kl", "entropy": "objective/entropy"},
    resumable=False,  # see the docstring
    stop_by_exception=True,
    starter={"train.learning_rate": 1e-4, "method.beta": 0.05, "method.max_completion_length": 8,
             "method.temperature": 1.0, "output.name": "ppo-lora"},  # the reward model is the user's to name
)  # fmt: skip


def check(cfg: RunConfig, rows: list) -> None:
    reward_source(cfg)
    if cfg.train.max_steps < 1:
        raise ConfigError("train.max_steps: PPO counts updates, not epochs; set it to 1 or more")


def reward_source(cfg: RunConfig) -> stages.Start:
    """Where the reward model's weights are; a clear error when none is named or it is not one."""
    name = cfg.method.reward_model
    if not name:
        raise ConfigError(
            "method.reward_model is not set: PPO needs a reward model; train one with method.name: reward "
            "and give its run directory (e.g. runs/reward-full), or a saved sequence-classification model"
        )
    path = Path(name).expanduser()
    if (path / "config.json").is_file() and not (path / "resolved.yaml").is_file():
        architectures = (
            json.loads((path / "config.json").read_text(encoding="utf-8")).get("architectures") or []
        )
        if not any(a.endswith("ForSequenceClassification") for a in architectures):
            raise ConfigError(f"method.reward_model: {path} is not a sequence-classification (reward) model")
        return stages.Start(str(path), (), str(path))
    start = stages.result_of(name, "method.reward_model")
    if config_mod.load(start.run_dir / "resolved.yaml").method.name != "reward":
        raise ConfigError(f"method.reward_model: {start.run_dir} is not a reward run (method.name: reward)")
    return start


def load_reward_model(cfg: RunConfig, like: Any, tokenizer: Any) -> Any:
    """The reward model, on the device and in the dtype of the model `like`."""
    model = stages.load(reward_source(cfg), head="reward", dtype=like.dtype)
    model.config.pad_token_id = tokenizer.pad_token_id  # a score is read at the last non-pad token
    return model.to(like.device).eval()


def scorer(cfg: RunConfig, model: Any, tokenizer: Any) -> Any:
    """The reward model's score of answers, for measuring held-out reward before and after training."""
    reward_model = load_reward_model(cfg, model, tokenizer)
    return lambda rows, texts: evaluate.reward_scores(
        reward_model, tokenizer, [r["prompt"] for r in rows], texts
    )


def build(
    cfg: RunConfig, model: Any, tokenizer: Any, train_dataset: Any, plan: Plan, args: dict, callbacks: list
) -> Any:
    ppo = methods.experimental("ppo")
    # Prompts are batched and the policy generates after them: pad on the left (as TRL's PPO examples do),
    # or answers would follow pad tokens. Scoring reads the response part, so it is unaffected.
    tokenizer.padding_side = "left"
    reward_model = load_reward_model(cfg, model, tokenizer)
    value_model = copy.deepcopy(reward_model).train()  # starts as the reward model, then learns values
    t, m = cfg.train, cfg.method
    args = {k: v for k, v in args.items() if k != "max_steps"}  # PPO counts episodes
    config = ppo.PPOConfig(
        **{**args, **plan.trainer_args},
        total_episodes=t.max_steps * t.per_device_train_batch_size * t.gradient_accumulation_steps,
        response_length=m.max_completion_length,
        temperature=m.temperature,
        kl_coef=0.05 if m.beta is None else m.beta,
        stop_token="eos",
        num_ppo_epochs=1,
        num_mini_batches=1,
        num_sample_generations=0,
    )
    return ppo.PPOTrainer(
        args=config,
        processing_class=tokenizer,
        model=model,
        ref_model=None,  # TRL: the adapter switched off, or a frozen copy of the starting policy
        reward_model=reward_model,
        value_model=value_model,
        train_dataset=_tokenized(train_dataset, tokenizer),
        peft_config=plan.peft_config,
        callbacks=callbacks,
    )


def _tokenized(dataset: Any, tokenizer: Any) -> Any:
    """PPO takes prompt token ids only (chat template applied, ready for the answer)."""

    def encode(row: dict) -> dict:
        text = tokenizer.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
        return {"input_ids": tokenizer(text, add_special_tokens=False)["input_ids"]}

    return dataset.map(encode, remove_columns=dataset.column_names)
