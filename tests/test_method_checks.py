"""Bad alignment settings are refused before any run directory exists, with the key to fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import tiny

import workbench
from workbench import methods
from workbench.config import ConfigError
from workbench.data import DataError
from workbench.rewards import RewardError

PREF = ["data.train=bundled:reverse/pref_train", "data.eval=bundled:reverse/pref_eval"]
PROMPTS = ["data.train=bundled:reverse/prompts_train", "data.eval=bundled:reverse/prompts_eval"]


def refused(tmp_path, error, match, *overrides):
    cfg = tiny(tmp_path, *overrides)
    with pytest.raises(error, match=match):
        workbench.train(cfg, echo=False)
    assert not (tmp_path / "runs").exists(), "a refused run must not leave a run directory"


def test_every_method_name_in_the_config_has_a_module():
    for name in methods.AVAILABLE:
        spec = methods.spec(name)
        assert spec.name == name and spec.data and spec.eval and spec.head in ("causal", "reward")


def test_grpo_without_a_reward_function(tmp_path):
    refused(tmp_path, ConfigError, "method.rewards is empty", "method.name=grpo", *PROMPTS)


def test_grpo_whose_reward_raises_fails_before_training(tmp_path):
    code = tmp_path / "r.py"
    code.write_text("def r(completions, **kw):\n    return 1 / 0\n", encoding="utf-8")
    refused(tmp_path, RewardError, "raised ZeroDivisionError", "method.name=grpo", *PROMPTS,
            f"method.rewards={{'{code}:r': 1.0}}", "method.allow_reward_code=true")  # fmt: skip


def test_grpo_batch_must_hold_whole_groups(tmp_path):
    refused(tmp_path, ConfigError, r"multiple of method.num_generations \(8\)", "method.name=grpo", *PROMPTS,
            "method.rewards={exact_match: 1}", "train.per_device_train_batch_size=12")  # fmt: skip


def test_ppo_without_a_reward_model(tmp_path):
    refused(tmp_path, ConfigError, "method.reward_model is not set", "method.name=ppo", *PROMPTS)


def test_ppo_cannot_resume(tmp_path, monkeypatch):
    refused(tmp_path, ConfigError, "PPO loop cannot resume", "method.name=ppo", *PROMPTS, "train.resume=true",
            f"method.reward_model={tmp_path}")  # fmt: skip


def test_from_run_that_does_not_exist(tmp_path):
    refused(
        tmp_path, ConfigError, "model.from_run: no finished run at", f"model.from_run={tmp_path / 'nope'}"
    )


def test_from_run_that_is_unfinished(tmp_path):
    run = tmp_path / "old" / "sft-1"
    run.mkdir(parents=True)
    (run / "resolved.yaml").write_text("{}\n", encoding="utf-8")
    (run / "events.jsonl").write_text('{"event": "start"}\n{"event": "error", "reason": "boom"}\n')
    refused(tmp_path, ConfigError, "is failed, not finished", f"model.from_run={run}")
    refused(
        tmp_path,
        ConfigError,
        "unfinished runs of that name: sft-1",
        f"model.from_run={tmp_path / 'old' / 'sft'}",
    )


def test_preference_method_on_chat_data_names_the_format(tmp_path):
    refused(tmp_path, DataError, "method 'dpo' needs one of the formats preference", "method.name=dpo")


def test_unknown_dpo_loss(tmp_path):
    refused(tmp_path, ConfigError, "DPO has no loss 'sigmoidal'", "method.name=dpo", *PREF,
            "method.loss_type=sigmoidal")  # fmt: skip


def test_kto_needs_good_and_bad_examples(tmp_path):
    path = tmp_path / "k.jsonl"
    path.write_text('{"prompt": "a", "completion": "b", "label": true}\n' * 4, encoding="utf-8")
    refused(tmp_path, ConfigError, "only {True}", "method.name=kto", f"data.train={path}", "data.eval=null")


def test_every_alignment_method_has_a_starter_recipe_chained_from_an_sft_stage():
    root = Path(__file__).resolve().parents[1] / "recipes"
    for name in methods.AVAILABLE[1:]:
        (recipe,) = root.glob(f"{name}_*_starter.yaml")
        cfg = workbench.load_config(recipe)
        assert cfg.method.name == name and recipe.name == f"{name}_{cfg.adapter.type}_starter.yaml"
        assert cfg.model.from_run in ("runs/sft-warmup", "runs/sft-partial")


def test_ppo_reward_model_must_be_a_scoring_model(tmp_path):
    folder = tmp_path / "lm"
    folder.mkdir()
    (folder / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}', encoding="utf-8")
    refused(tmp_path, ConfigError, "is not a sequence-classification", "method.name=ppo", *PROMPTS,
            f"method.reward_model={folder}")  # fmt: skip
