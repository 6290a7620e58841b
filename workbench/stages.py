"""Chaining stages: a run that starts from a finished run's result (`model.from_run`).

SFT -> DPO, SFT -> reward model -> PPO, SFT -> GRPO. A previous stage's LoRA adapter is *merged* into
its base weights (not stacked): the new stage trains a fresh adapter on a plain model, and the
reference model of DPO, KTO and PPO (the new model with its adapter switched off, or a frozen copy
for full weights) is exactly the previous stage's policy. A run's summary.json records the base and
the adapters merged before it (`start`), so a chain of adapter stages loads back in order. `runs/<name>`
without the timestamp means the newest finished run of that name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench import models, runs
from workbench.config import ConfigError, RunConfig


@dataclass(frozen=True)
class Start:
    """Where a run's weights come from."""

    base: str  # the folder whose weights are loaded
    adapters: tuple[str, ...] = ()  # PEFT adapter folders merged into them, in order
    tokenizer: str | None = None  # the folder holding the tokenizer (the base when None)
    run_dir: Path | None = None  # the run this starts from, if any

    def record(self) -> dict:
        """What summary.json keeps so that a later stage can rebuild these weights."""
        return {"base": self.base, "adapters": list(self.adapters)}


def start(cfg: RunConfig) -> Start:
    """The starting weights of a run: model.from_run's result, else model.name_or_path."""
    if cfg.model.from_run:
        return result_of(cfg.model.from_run, "model.from_run")
    return Start(models.resolve(cfg.model))


def result_of(run_dir: str | Path, key: str) -> Start:
    """The saved result of a finished run; a clear error naming `key` when there is none."""
    folder = find_run(run_dir, key)
    adapter, model = folder / "adapter", folder / "model"
    if (adapter / "adapter_config.json").is_file():
        config = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
        before = runs.summary(folder).get("start") or {
            "base": config["base_model_name_or_path"],
            "adapters": [],
        }
        return Start(before["base"], (*before["adapters"], str(adapter)), str(adapter), folder)
    if (model / "config.json").is_file():  # full weights: earlier adapters are already in them
        return Start(str(model), (), str(model), folder)
    raise ConfigError(
        f"{key}: {folder} finished but saved no result (adapter/ or model/); "
        "run it again with output.save_result: true"
    )


def find_run(run_dir: str | Path, key: str) -> Path:
    """A finished run directory: the folder itself, or the newest finished `<name>-<time>` run."""
    path = Path(run_dir).expanduser()
    if not (path / "resolved.yaml").is_file():
        candidates = sorted(path.parent.glob(f"{path.name}-*"), key=lambda p: p.stat().st_mtime, reverse=True)
        finished = [p for p in candidates if runs.status(p) == "finished"]
        if not finished:
            found = f"; unfinished runs of that name: {candidates[0].name}" if candidates else ""
            raise ConfigError(
                f"{key}: no finished run at {path} (looked for the folder and for {path.name}-<time>){found}; "
                "train that stage first, or give the path of a finished run directory"
            )
        path = finished[0]
    state = runs.status(path)
    if state != "finished":
        raise ConfigError(
            f"{key}: {path} is {state}, not finished; finish it (workbench train {path}/resolved.yaml "
            "--resume) or point at a finished run"
        )
    return path


def load(start: Start, head: str = "causal", **kwargs: Any) -> Any:
    """Load `start`'s weights with `models.load_model`, merging its adapters in order.

    A reward (scoring) model gets the merged body of the language-model stages before it and a new
    score layer; the scoring adapters of a reward run are merged on top of that.
    """
    tasks = {adapter: _adapter_task(adapter) for adapter in start.adapters}
    body_adapters = [a for a in start.adapters if tasks[a] == "CAUSAL_LM"]
    own = [a for a in start.adapters if tasks[a] != "CAUSAL_LM"] if head == "reward" else body_adapters
    model = models.load_model(start.base, head=head, **kwargs)
    if head == "reward" and body_adapters:
        body = load(Start(start.base, tuple(body_adapters)), "causal", **kwargs)
        getattr(model, model.base_model_prefix).load_state_dict(
            getattr(body, body.base_model_prefix).state_dict()
        )
    if not own:
        return model
    from peft import PeftModel

    from workbench.adapters import bitsandbytes_only_if

    for adapter in own:
        with bitsandbytes_only_if(kwargs.get("quantization_config") is not None):
            model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    for param in model.parameters():  # PEFT loads adapters for inference and froze the merged weights
        param.requires_grad_(param.is_floating_point())  # 4-bit weights never take gradients
    return model


def _adapter_task(adapter: str) -> str | None:
    config = json.loads((Path(adapter) / "adapter_config.json").read_text(encoding="utf-8"))
    return config.get("task_type")
