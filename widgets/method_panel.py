"""The method panel: SFT, DPO, KTO, SimPO, ORPO, reward model, PPO or GRPO, their settings, training settings."""

from __future__ import annotations

import typing
from pathlib import Path

import ipywidgets as w
import yaml

from widgets.form import DEFAULTS, Field, Panel, blank_if_none, none_if_blank, showing
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
NEEDS = {
    "sft": "chat data: messages, ShareGPT, Alpaca or prompt/answer rows",
    "preference": "preference pairs: prompt, chosen, rejected",
    "kto": "rows labelled good or bad (prompt, completion, label), or preference pairs",
    "prompts": "prompts (with a reference answer for the rewards)",
}


class MethodPanel(Panel):
    title = "Method"

    def __init__(self, cfg=None):
        names = typing.get_args(MethodName)
        self.name = Field(
            w.ToggleButtons(options=names, style={"button_width": "62px", "description_width": "170px"}),
            "Method",
            key="method.name",
        )
        self.from_run = Field(
            w.Text(continuous_update=False, placeholder="runs/sft-lora (its newest finished run)"),
            "Start from run",
            key="model.from_run",
            to_config=none_if_blank,
            from_config=blank_if_none,
            tip="the policy starts from this run's result; DPO, KTO and PPO use it as the reference",
        )
        method_fields = [
            Field(optional(), "beta", key="method.beta", to_config=_number, from_config=blank_if_none),
            Field(
                w.Dropdown(options=["(default)"]),
                "Loss type",
                key="method.loss_type",
                to_config=lambda v: None if v == "(default)" else v,
                from_config=lambda v: v or "(default)",
            ),
            Field(w.FloatText(), "Desirable weight", key="method.desirable_weight"),
            Field(w.FloatText(), "Undesirable weight", key="method.undesirable_weight"),
            Field(w.FloatText(), "SimPO gamma", key="method.simpo_gamma"),
            Field(w.FloatText(), "cpo_alpha (NLL weight)", key="method.cpo_alpha"),
            Field(
                w.Text(continuous_update=False),
                "Rewards (name: weight)",
                key="method.rewards",
                to_config=_rewards,
                from_config=_rewards_text,
                tip="built in: " + ", ".join(rewards.BUILT_IN) + "; your own: file.py:function",
            ),
            Field(w.Checkbox(), "Run reward code from files", key="method.allow_reward_code"),
            Field(w.BoundedIntText(min=2, max=64), "Generations per prompt", key="method.num_generations"),
            Field(
                w.Text(continuous_update=False),
                "Reward model run",
                key="method.reward_model",
                to_config=none_if_blank,
                from_config=blank_if_none,
            ),
            Field(w.BoundedIntText(min=1, max=4096), "Completion tokens", key="method.max_completion_length"),
            Field(w.BoundedFloatText(min=0.0, max=5.0, step=0.1), "Temperature", key="method.temperature"),
        ]
        training = [
            Field(
                w.Text(continuous_update=False),
                "Learning rate",
                key="train.learning_rate",
                to_config=_number,
                from_config=lambda v: f"{v:g}",
            ),
            Field(w.IntText(), "Max steps (-1: epochs)", key="train.max_steps"),
            Field(
                w.BoundedIntText(min=1, max=4096),
                "Batch size per device",
                key="train.per_device_train_batch_size",
            ),
            Field(
                w.BoundedIntText(min=1, max=1024),
                "Gradient accumulation",
                key="train.gradient_accumulation_steps",
            ),
            Field(w.BoundedIntText(min=1, max=100000), "Log every (steps)", key="train.logging_steps"),
            Field(
                w.Text(continuous_update=False),
                "Run name",
                key="output.name",
                to_config=none_if_blank,
                from_config=blank_if_none,
                tip="runs/<name>-<time>; default <method>-<adapter>",
            ),
        ]
        self.by_key = {f.key: f for f in method_fields}
        heading = w.HTML("<b>Training</b>")
        super().__init__([self.name, self.from_run, *method_fields, *training], [])
        self.children = [self.name, self.from_run, *method_fields, heading, *training]
        self.show_config(cfg or DEFAULTS)

    def validate(self) -> None:
        name = self.name.value
        for key, f in self.by_key.items():
            showing(f, name in USES[key])
        self._losses(name)
        self.name.show(hint=f"trains on {NEEDS[methods.get(name).DATA]}")
        self._check_run(self.from_run, "model.from_run")
        self._check_rewards()
        reward_model = self.by_key["method.reward_model"]
        if name == "ppo" and not reward_model.value.strip():
            reward_model.show(
                error="PPO needs a reward model: a reward run (runs/reward-full) or a model folder"
            )
        elif name == "ppo":
            self._check_run(reward_model, "method.reward_model", folders_too=True)
        for f in self.every:
            if f.key and f.to_config is _number and f.layout.display != "none":
                f.show(error=_number_problem(f.value))

    def show_config(self, cfg) -> None:
        self._losses(cfg.method.name)  # before the loss itself is set
        super().show_config(cfg)

    def _losses(self, name: str) -> None:
        loss = self.by_key["method.loss_type"].control
        wanted = ("(default)", *getattr(methods.get(name), "LOSS_TYPES", ()))
        if loss.options != wanted:
            loss.options = wanted

    def _check_run(self, f: Field, key: str, folders_too: bool = False) -> None:
        value = f.value.strip()
        if not value:
            f.show()
            return
        try:
            stages.find_run(value, key)
            f.show(hint=None)
        except config_mod.ConfigError as error:
            model_folder = folders_too and (Path(value) / "config.json").is_file()
            f.show(error=None if model_folder else str(error))

    def _check_rewards(self) -> None:
        f = self.by_key["method.rewards"]
        if self.name.value != "grpo":
            return
        try:
            chosen = _rewards(f.value)
            if not chosen:
                raise config_mod.ConfigError("GRPO needs at least one reward, e.g. exact_match: 1")
            rewards.load(chosen, self.by_key["method.allow_reward_code"].value)
            f.show()
        except (config_mod.ConfigError, rewards.RewardError, ValueError) as error:
            f.show(error=str(error))


def optional() -> w.Text:
    return w.Text(continuous_update=False, placeholder="the method's default")


def _number(text: str):
    """A typed number from a text box; anything else goes through as text, so the config check names it."""
    text = str(text).strip()
    if not text:
        return None
    value = yaml.safe_load(text)  # 1e-4 -> float as in recipes (and '3e-4' too: see _number_problem)
    try:
        return float(value) if not isinstance(value, bool) else value
    except (TypeError, ValueError):
        return text


def _number_problem(text: str) -> str | None:
    return None if not str(text).strip() or isinstance(_number(text), float) else f"'{text}' is not a number"


def _rewards(text: str) -> dict[str, float]:
    """'exact_match: 1, similarity: 0.5' -> {'exact_match': 1.0, 'similarity': 0.5}."""
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, weight = part.rpartition(":") if part.count(":") else (part, "", "1")
        out[name.strip()] = float(weight)
    return out


def _rewards_text(value: dict) -> str:
    return ", ".join(f"{k}: {v:g}" for k, v in value.items())
