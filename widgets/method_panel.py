"""The method panel: SFT, DPO, KTO, SimPO, ORPO, reward model, PPO or GRPO, their settings, training settings."""

from __future__ import annotations

import typing
from pathlib import Path

import ipywidgets as w

from widgets.form import DEFAULTS, Field, Panel, number, text
from workbench import config as config_mod
from workbench import methods, rewards, stages
from workbench.config import MethodName

# Which settings each method reads; the rest are hidden (DESIGN 3.4: each method names its fields).
USES = {
    "method.beta": {"dpo", "kto", "simpo", "orpo", "ppo"},
    "method.loss_type": {"dpo", "kto"},
    "method.desirable_weight": {"kto"},
    "method.undesirable_weight": {"kto"},
    "method.simpo_gamma": {"simpo"},
    "method.cpo_alpha": {"simpo"},
    "method.rewards": {"grpo"},
    "method.allow_reward_code": {"grpo"},
    "method.num_generations": {"grpo"},
    "method.reward_model": {"ppo"},
    "method.max_completion_length": {"grpo", "ppo"},
    "method.temperature": {"grpo", "ppo"},
}
DEFAULT_LOSS = "(default)"
FROM_RUN_TIP = "the policy starts from this run's result; DPO, KTO and PPO use it as the reference"
NEEDS = {
    "sft": "chat data: messages, ShareGPT, Alpaca or prompt/answer rows",
    "preference": "preference pairs: prompt, chosen, rejected",
    "kto": "rows labelled good or bad (prompt, completion, label), or preference pairs",
    "prompts": "prompts (with a reference answer for the rewards)",
}


class MethodPanel(Panel):
    title = "Method"
    uses = USES

    def __init__(self, cfg=None):
        names = typing.get_args(MethodName)
        buttons = w.ToggleButtons(options=names, style={"button_width": "62px", "description_width": "170px"})
        self.name = Field(buttons, "Method", "method.name")
        self.from_run = text(
            "Start from run", "model.from_run", FROM_RUN_TIP, "runs/sft-lora (its newest run)"
        )
        losses = w.Dropdown(options=[DEFAULT_LOSS])
        rewards_tip = "built in: " + ", ".join(rewards.BUILT_IN) + "; your own: file.py:function"
        method_fields = [
            number("beta", "method.beta", placeholder="the method's default"),
            Field(
                losses,
                "Loss type",
                "method.loss_type",
                to_config=_loss,
                from_config=lambda v: v or DEFAULT_LOSS,
            ),
            Field(w.FloatText(), "Desirable weight", "method.desirable_weight"),
            Field(w.FloatText(), "Undesirable weight", "method.undesirable_weight"),
            Field(w.FloatText(), "SimPO gamma", "method.simpo_gamma"),
            Field(w.FloatText(), "cpo_alpha (NLL weight)", "method.cpo_alpha"),
            Field(
                w.Text(continuous_update=False),
                "Rewards (name: weight)",
                "method.rewards",
                rewards_tip,
                to_config=_rewards,
                from_config=_rewards_text,
            ),
            Field(w.Checkbox(), "Run reward code from files", "method.allow_reward_code"),
            Field(w.IntText(), "Generations per prompt", "method.num_generations"),
            text("Reward model run", "method.reward_model", placeholder="runs/reward-full"),
            Field(w.IntText(), "Completion tokens", "method.max_completion_length"),
            Field(w.FloatText(step=0.1), "Temperature", "method.temperature"),
        ]
        training = [
            number("Learning rate", "train.learning_rate"),
            Field(w.IntText(), "Max steps (-1: epochs)", "train.max_steps"),
            Field(w.IntText(), "Batch size per device", "train.per_device_train_batch_size"),
            Field(w.IntText(), "Gradient accumulation", "train.gradient_accumulation_steps"),
            Field(w.IntText(), "Log every (steps)", "train.logging_steps"),
            text("Run name", "output.name", "runs/<name>-<time>; default <method>-<adapter>"),
        ]  # fmt: skip
        super().__init__([self.name, self.from_run, *method_fields, *training])
        self.children = [self.name, self.from_run, *method_fields, w.HTML("<b>Training</b>"), *training]
        self.show_config(cfg or DEFAULTS)

    def show_config(self, cfg) -> None:
        self._losses(cfg.method.name, cfg.method.loss_type)  # before the loss itself is set
        super().show_config(cfg)

    def validate(self) -> None:
        name = self.name.value
        self.show_used(name)
        self._losses(name)
        self.name.show(hint=f"trains on {NEEDS[methods.get(name).DATA]}")
        self._check_run(self.from_run, "model.from_run")
        self._check_rewards()
        reward_model = self.fields["method.reward_model"]
        if name == "ppo" and not reward_model.value.strip():
            reward_model.show(
                error="PPO needs a reward model: a reward run (runs/reward-full) or a model folder"
            )
        elif name == "ppo":
            self._check_run(reward_model, "method.reward_model", folders_too=True)

    def _losses(self, name: str, keep: str | None = None) -> None:
        """The loss types `name` knows; a recipe's unknown loss is kept, so the run check names it."""
        loss = self.fields["method.loss_type"].control
        known = getattr(methods.get(name), "LOSS_TYPES", ())
        wanted = (DEFAULT_LOSS, *known, *([keep] if keep and keep not in known else []))
        if loss.options != wanted:
            loss.options = wanted

    def _check_run(self, f: Field, key: str, folders_too: bool = False) -> None:
        value = f.value.strip()
        try:
            if value:
                stages.find_run(value, key)
            f.show()
        except config_mod.ConfigError as error:
            model_folder = folders_too and (Path(value) / "config.json").is_file()
            f.show(error=None if model_folder else str(error))

    def _check_rewards(self) -> None:
        f = self.fields["method.rewards"]
        if self.name.value != "grpo":
            return
        try:
            chosen = _rewards(f.value)
            if not chosen:
                raise config_mod.ConfigError("GRPO needs at least one reward, e.g. exact_match: 1")
            rewards.load(chosen, self.fields["method.allow_reward_code"].value)
            f.show()
        except (config_mod.ConfigError, rewards.RewardError) as error:
            f.show(error=str(error))


def _loss(value: str) -> str | None:
    return None if value == DEFAULT_LOSS else value


def _rewards(text: str) -> dict[str, float]:
    """'exact_match: 1, my.py:fn: 0.5' -> {'exact_match': 1.0, 'my.py:fn': 0.5}; a missing weight is 1."""
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, weight = part.rpartition(":")
        try:
            out[name.strip()] = float(weight)
        except ValueError:  # no weight: "exact_match" or "my.py:fn"
            out[part] = 1.0
    return {k: v for k, v in out.items() if k}


def _rewards_text(value: dict) -> str:
    return ", ".join(f"{k}: {v!r}" for k, v in value.items())
