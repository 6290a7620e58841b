"""config.RANGES: a number of the right type but outside what can work is refused at the door."""

from __future__ import annotations

import pytest

from workbench import config

# One row per bad value: (dotted key, the value as typed on the command line).
BAD = [
    ("train.learning_rate", "0"),
    ("train.learning_rate", "-1e-4"),
    ("train.learning_rate", ".nan"),
    ("train.learning_rate", "nan"),
    ("train.learning_rate", ".inf"),
    ("train.num_train_epochs", "0"),
    ("train.max_steps", "0"),
    ("train.max_steps", "-2"),
    ("train.per_device_train_batch_size", "0"),
    ("train.gradient_accumulation_steps", "0"),
    ("train.warmup_steps", "-1"),
    ("train.weight_decay", "-0.1"),
    ("train.max_grad_norm", "-1"),
    ("train.logging_steps", "0"),
    ("train.save_steps", "0"),
    ("train.save_total_limit", "0"),
    ("train.seed", "-1"),
    ("train.dataloader_num_workers", "-1"),
    ("adapter.r", "0"),
    ("adapter.lora_alpha", "0"),
    ("adapter.lora_dropout", "1"),
    ("adapter.lora_dropout", "-0.1"),
    ("adapter.freeze_trainable_layers", "0"),
    ("adapter.galore_rank", "0"),
    ("adapter.galore_update_proj_gap", "0"),
    ("adapter.galore_scale", "0"),
    ("data.max_length", "-1"),
    ("data.max_length", "0"),
    ("data.max_samples", "0"),
    ("data.sample_cost_ms", "-1"),
    ("eval.max_samples", "-1"),
    ("eval.max_new_tokens", "0"),
    ("eval.batch_size", "0"),
    ("method.beta", "-0.1"),
    ("method.beta", ".inf"),
    ("method.desirable_weight", "0"),
    ("method.undesirable_weight", "0"),
    ("method.simpo_gamma", "-1"),
    ("method.cpo_alpha", "-1"),
    ("method.num_generations", "0"),
    ("method.max_completion_length", "0"),
    ("method.temperature", "0"),
    ("device.index", "-1"),
    ("distributed.num_processes", "0"),
    ("distributed.timeout_s", "0"),
    ("profile.wait", "-1"),
    ("profile.warmup", "-1"),
    ("profile.active", "0"),
    ("profile.peak_tflops", "0"),
    ("profile.peak_tflops", "-.inf"),
]

# The boundary values that must still pass, so the checks above cannot be refusing everything.
GOOD = [
    ("train.learning_rate", "1e-9", 1e-9),
    ("train.num_train_epochs", "0.01", 0.01),
    ("train.max_steps", "-1", -1),
    ("train.max_steps", "1", 1),
    ("train.per_device_train_batch_size", "1", 1),
    ("train.gradient_accumulation_steps", "1", 1),
    ("train.warmup_steps", "0", 0.0),
    ("train.weight_decay", "0", 0.0),
    ("train.max_grad_norm", "0", 0.0),
    ("train.logging_steps", "1", 1),
    ("train.save_steps", "1", 1),
    ("train.save_total_limit", "1", 1),
    ("train.seed", "0", 0),
    ("train.dataloader_num_workers", "0", 0),
    ("adapter.r", "1", 1),
    ("adapter.lora_alpha", "1", 1),
    ("adapter.lora_dropout", "0", 0.0),
    ("adapter.lora_dropout", "0.99", 0.99),
    ("adapter.freeze_trainable_layers", "1", 1),
    ("adapter.galore_rank", "1", 1),
    ("adapter.galore_update_proj_gap", "1", 1),
    ("adapter.galore_scale", "1e-6", 1e-6),
    ("data.max_length", "1", 1),
    ("data.max_samples", "1", 1),
    ("data.max_samples", "null", None),
    ("data.sample_cost_ms", "0", 0.0),
    ("eval.max_samples", "0", 0),
    ("eval.max_new_tokens", "1", 1),
    ("eval.batch_size", "1", 1),
    ("method.beta", "0", 0.0),
    ("method.beta", "null", None),
    ("method.desirable_weight", "1e-6", 1e-6),
    ("method.undesirable_weight", "1e-6", 1e-6),
    ("method.simpo_gamma", "0", 0.0),
    ("method.cpo_alpha", "0", 0.0),
    ("method.num_generations", "1", 1),
    ("method.max_completion_length", "1", 1),
    ("method.temperature", "1e-3", 1e-3),
    ("device.index", "0", 0),
    ("distributed.num_processes", "1", 1),
    ("distributed.timeout_s", "1", 1),
    ("profile.wait", "0", 0),
    ("profile.warmup", "0", 0),
    ("profile.active", "1", 1),
    ("profile.peak_tflops", "0.5", 0.5),
    ("profile.peak_tflops", "null", None),
]


def value_of(cfg: config.RunConfig, dotted: str):
    section, name = dotted.split(".")
    return getattr(getattr(cfg, section), name)


@pytest.mark.parametrize(("key", "text"), BAD, ids=[f"{k}={t}" for k, t in BAD])
def test_out_of_range_value_is_refused_naming_key_value_and_source(key, text):
    with pytest.raises(config.ConfigError) as error:
        config.override(config.RunConfig(), [f"{key}={text}"])
    message = str(error.value)
    assert f"'{key}' in the overrides" in message
    assert "expected" in message


@pytest.mark.parametrize(("key", "text", "expected"), GOOD, ids=[f"{k}={t}" for k, t, _ in GOOD])
def test_boundary_value_is_accepted(key, text, expected):
    cfg = config.override(config.RunConfig(), [f"{key}={text}"])
    assert value_of(cfg, key) == expected


def test_every_ranged_key_has_a_bad_and_a_good_row():
    assert {k for k, _ in BAD} == set(config.RANGES) == {k for k, _, _ in GOOD}


def test_every_ranged_key_is_a_field_and_every_default_is_in_range():
    cfg = config.RunConfig()
    for key in config.RANGES:
        value_of(cfg, key)  # AttributeError if the table names a field that does not exist
    assert config.override(cfg, {}) == cfg  # override re-checks every field, defaults included


def test_max_steps_zero_says_what_minus_one_means():
    with pytest.raises(config.ConfigError, match="-1 means use num_train_epochs"):
        config.override(config.RunConfig(), ["train.max_steps=0"])


def test_yaml_nan_in_a_recipe_names_key_and_file(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text("train:\n  learning_rate: .nan\n")
    with pytest.raises(config.ConfigError, match=r"'train.learning_rate' in .*recipe.yaml is nan.*finite"):
        config.load(path)


def test_a_non_finite_reward_weight_names_its_key():
    with pytest.raises(config.ConfigError, match=r"'method.rewards.exact' .*finite"):
        config.override(config.RunConfig(), ["method.rewards={exact: .nan}"])
