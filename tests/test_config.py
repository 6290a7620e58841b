"""RunConfig: strict, typed, and the same for YAML, CLI overrides and panels."""

from __future__ import annotations

import dataclasses

import pytest

import workbench
from workbench import config


def write(tmp_path, text: str):
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


def test_yaml_exponent_without_dot_is_a_float(tmp_path):
    # PyYAML reads 3e-4 as the string "3e-4"; the config must still give the number.
    cfg = config.load(write(tmp_path, "train:\n  learning_rate: 3e-4\n"))
    assert cfg.train.learning_rate == pytest.approx(3e-4)
    assert isinstance(cfg.train.learning_rate, float)


def test_yaml_no_is_a_boolean_so_a_string_field_refuses_it(tmp_path):
    path = write(tmp_path, "output:\n  name: no\n")
    with pytest.raises(config.ConfigError, match=r"'output.name' in .*recipe.yaml is False .*quote it"):
        config.load(path)


def test_unknown_key_names_key_file_and_valid_keys(tmp_path):
    path = write(tmp_path, "train:\n  learning_rat: 0.1\n")
    with pytest.raises(config.ConfigError) as error:
        config.load(path)
    assert "'train.learning_rat'" in str(error.value)
    assert str(path) in str(error.value)
    assert "learning_rate" in str(error.value)


def test_wrong_type_names_key_value_and_expected_type(tmp_path):
    path = write(tmp_path, "train:\n  max_steps: many\n")
    with pytest.raises(
        config.ConfigError, match=r"'train.max_steps' in .* is 'many' \(str\); expected a whole number"
    ):
        config.load(path)


def test_choice_outside_the_literal_lists_the_choices(tmp_path):
    with pytest.raises(config.ConfigError, match=r"adapter.type.*'lora'.*'qlora'"):
        config.load(write(tmp_path, "adapter:\n  type: lorax\n"))


def test_section_given_as_scalar_is_refused(tmp_path):
    with pytest.raises(config.ConfigError, match="train in .*expected a mapping"):
        config.load(write(tmp_path, "train: 5\n"))


def test_invalid_yaml_names_the_file(tmp_path):
    path = write(tmp_path, "train: [\n")
    with pytest.raises(config.ConfigError, match="is not valid YAML"):
        config.load(path)


def test_missing_recipe_says_what_to_pass(tmp_path):
    with pytest.raises(config.ConfigError, match="recipe not found"):
        config.load(tmp_path / "nope.yaml")


def test_recipe_that_is_a_folder_says_so(tmp_path):
    with pytest.raises(config.ConfigError, match=r"is a folder, not a recipe.*\.yaml file"):
        config.load(tmp_path)


def test_empty_recipe_gives_the_defaults(tmp_path):
    assert config.load(write(tmp_path, "")) == config.RunConfig()


def test_non_utf8_recipe_names_file_byte_and_line(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_bytes("train:\n  # café\n".encode("latin-1"))
    with pytest.raises(config.ConfigError) as error:
        config.load(path)
    assert f"{path} is not a UTF-8 text file (byte 0xe9 at line 2): save it as UTF-8" == str(error.value)


def test_binary_recipe_is_a_config_error(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(
        config.ConfigError, match=r"recipe.yaml is not a UTF-8 text file \(byte 0x89 at line 1\)"
    ):
        config.load(path)


def test_duplicate_key_names_the_key_and_both_lines(tmp_path):
    path = write(tmp_path, "train:\n  learning_rate: 1e-4\n  max_steps: 5\n  learning_rate: 1e-3\n")
    with pytest.raises(config.ConfigError) as error:
        config.load(path)
    assert "'train.learning_rate' is given twice" in str(error.value)
    assert "(lines 2 and 4)" in str(error.value)
    assert str(path) in str(error.value)


def test_duplicate_section_names_the_section_and_both_lines(tmp_path):
    path = write(tmp_path, "train:\n  max_steps: 5\nadapter:\n  r: 4\ntrain:\n  seed: 1\n")
    with pytest.raises(config.ConfigError, match=r"'train' is given twice .*\(lines 1 and 5\)"):
        config.load(path)


def test_same_key_in_two_sections_is_not_a_duplicate(tmp_path):
    cfg = config.load(write(tmp_path, "data:\n  max_samples: 5\neval:\n  max_samples: 7\n"))
    assert (cfg.data.max_samples, cfg.eval.max_samples) == (5, 7)


@pytest.mark.parametrize("name", ["../../x", "a/b", "a\\b", "/tmp/x", "..", "a..b", "", "   ", "a b", "x:y"])
def test_output_name_must_be_one_folder_under_the_root(name):
    with pytest.raises(config.ConfigError) as error:
        config.override(config.RunConfig(), {"output.name": name})
    assert "'output.name' in the overrides" in str(error.value)
    assert "letters, digits, '-', '_' and '.'" in str(error.value)


@pytest.mark.parametrize("name", ["quickstart", "sft-lora_v2.1", "实验"])
def test_output_name_accepts_a_plain_folder_name(name):
    assert config.override(config.RunConfig(), {"output.name": name}).output.name == name


def test_panel_text_for_a_number_names_the_key():
    with pytest.raises(config.ConfigError, match=r"'train.learning_rate' in the overrides is 'abc'"):
        config.override(config.RunConfig(), {"train.learning_rate": "abc"})


def test_bad_override_stops_before_anything_is_created_under_the_root(tmp_path):
    root = tmp_path / "runs"
    recipe = write(tmp_path, f"output:\n  root: {root}\n")
    with pytest.raises(config.ConfigError, match="'train.learning_rate' in the overrides is 0"):
        workbench.load_config(recipe, ["train.learning_rate=0"])
    assert not root.exists()


def test_workbench_train_with_a_bad_value_creates_no_run_directory(tmp_path, capsys):
    from workbench import cli

    root = tmp_path / "runs"
    recipe = write(tmp_path, f"output:\n  root: {root}\n")
    assert cli.main(["train", str(recipe), "train.max_steps=0"]) == 2
    assert "'train.max_steps' in the overrides is 0" in capsys.readouterr().err
    assert not root.exists()


def test_dotted_overrides_are_typed_like_yaml():
    cfg = config.override(
        config.RunConfig(), ["train.learning_rate=1e-4", "adapter.r=4", "eval.before=false"]
    )
    assert (cfg.train.learning_rate, cfg.adapter.r, cfg.eval.before) == (1e-4, 4, False)


def test_override_dict_from_panels_goes_through_the_same_validation():
    with pytest.raises(config.ConfigError, match="'adapter.r'"):
        config.override(config.RunConfig(), {"adapter.r": "eight"})


def test_override_of_unknown_section_is_refused():
    with pytest.raises(config.ConfigError, match="'trainer' is not a section"):
        config.override(config.RunConfig(), ["trainer.max_steps=3"])


def test_override_without_equals_shows_the_form():
    with pytest.raises(config.ConfigError, match="section.key=value"):
        config.override(config.RunConfig(), ["train.max_steps"])


def test_all_linear_stays_a_keyword_and_lists_become_tuples():
    cfg = config.override(config.RunConfig(), ["adapter.target_modules=all-linear"])
    assert cfg.adapter.target_modules == "all-linear"
    cfg = config.override(cfg, ["adapter.target_modules=[q_proj, v_proj]"])
    assert cfg.adapter.target_modules == ("q_proj", "v_proj")


def test_save_and_load_round_trip(tmp_path):
    cfg = config.override(config.RunConfig(), ["adapter.type=dora", "data.columns={question: instruction}"])
    config.save(cfg, tmp_path / "x.yaml")
    assert config.load(tmp_path / "x.yaml") == cfg


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.RunConfig().train.max_steps = 3


def test_package_exports_the_same_loader():
    assert workbench.load_config is config.load
