"""The method panel: the method, the settings its MethodSpec says it reads, and the training settings."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import ipywidgets as w

from widgets.form import DEFAULTS, Field, Panel, blank_if_none, get, none_if_blank, number, text
from workbench import config as config_mod
from workbench import methods, rewards, runs, stages
from workbench.config import MethodName

NAMES = typing.get_args(MethodName)
DEFAULT_LOSS = "(default)"
FROM_RUN_TIP = "the policy starts from this run's result; DPO, KTO and PPO use it as the reference"
# method.* key -> the methods whose spec says they read it; the panel hides it for the others
USES = {
    key: {n for n in NAMES if key in methods.spec(n).fields} for m in NAMES for key in methods.spec(m).fields
}


class MethodPanel(Panel):
    title = "Method"
    uses = USES

    def __init__(self, cfg=None):
        buttons = w.ToggleButtons(options=NAMES, style={"button_width": "62px", "description_width": "170px"})
        buttons.observe(self._switched, names="value")  # before the panel's own check, which then sees them
        self.name = Field(buttons, "Method", "method.name")
        runs_box = w.Combobox(ensure_option=False, continuous_update=False, placeholder="runs/sft-warmup")
        self.from_run = Field(runs_box, "Start from run", "model.from_run", FROM_RUN_TIP,
                              to_config=none_if_blank, from_config=blank_if_none)  # fmt: skip
        rewards_tip = "built in: " + ", ".join(rewards.BUILT_IN) + "; your own: file.py:function"
        method_fields = [
            number("beta", "method.beta", placeholder="the method's default"),
            Field(w.Dropdown(options=[DEFAULT_LOSS]), "Loss type", "method.loss_type",
                  to_config=_loss, from_config=lambda v: v or DEFAULT_LOSS),
            Field(w.FloatText(), "Desirable weight", "method.desirable_weight"),
            Field(w.FloatText(), "Undesirable weight", "method.undesirable_weight"),
            Field(w.FloatText(), "SimPO gamma", "method.simpo_gamma"),
            Field(w.FloatText(), "cpo_alpha (NLL weight)", "method.cpo_alpha"),
            Field(w.Text(continuous_update=False), "Rewards (name: weight)", "method.rewards", rewards_tip,
                  to_config=_rewards, from_config=_rewards_text),
            Field(w.Checkbox(), "Run reward code from files", "method.allow_reward_code"),
            Field(w.IntText(), "Generations per prompt", "method.num_generations"),
            text("Reward model run", "method.reward_model", placeholder="runs/reward-full"),
            Field(w.IntText(), "Completion tokens", "method.max_completion_length"),
            Field(w.FloatText(step=0.1), "Temperature", "method.temperature"),
        ]  # fmt: skip
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
        self.root = cfg.output.root
        self._losses(cfg.method.name, cfg.method.loss_type)  # before the loss itself is set
        self.refresh_runs()
        super().show_config(cfg)

    def refresh_runs(self) -> None:
        """Offer the finished runs under the output root as starting points."""
        self.from_run.control.options = finished_runs(self.root)

    def _switched(self, change: dict) -> None:
        """Offer the new method's starter values where the shown ones are the old method's or the defaults."""
        if self._filling:  # a recipe being shown brings its own values
            return
        old, new = methods.spec(change["old"]).starter, methods.spec(change["new"]).starter
        self._losses(change["new"])
        self.refresh_runs()
        self._filling = True
        try:
            for key in {**old, **new}.keys() & self.fields.keys():
                f, default = self.fields[key], get(DEFAULTS, key)
                if f.to_config(f.value) in (old.get(key, default), default):
                    f.value = f.from_config(new.get(key, default))
        finally:
            self._filling = False

    def validate(self) -> None:
        name = self.name.value
        self.show_used(name)
        self._losses(name)
        self.name.show(hint=methods.spec(name).description)
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
        known = methods.spec(name).loss_types
        wanted = (DEFAULT_LOSS, *known, *([keep] if keep and keep not in known else []))
        if loss.options != wanted:
            loss.options = wanted

    def _check_run(self, f: Field, key: str, folders_too: bool = False) -> None:
        """An error for a run that is not there; else which run directory the name stands for."""
        value = f.value.strip()
        try:
            found = stages.find_run(value, key) if value else None
            f.show(hint=None if found is None or str(found) == value else f"resolves to {found}")
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


def finished_runs(root: str | Path) -> list[str]:
    """Finished runs under `root`: each name without its time (its newest run), then each run's folder."""
    folders = [str(row["path"]) for row in runs.listing(root) if row["status"] == "finished"]
    names = [re.sub(r"-\d{8}-\d{6}(-\d+)?$", "", folder) for folder in folders]
    return list(dict.fromkeys([*names, *folders]))


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
