"""One MethodSpec per method (DESIGN 3.8): what it reads, its starter values, and the panels and plots that use it."""

from __future__ import annotations

import inspect
import re
import struct
from pathlib import Path

import pytest

import workbench
from widgets import LossPlot
from widgets.form import DEFAULTS, get
from widgets.method_panel import MethodPanel, finished_runs
from widgets.plots import CSS_DPI
from workbench import config as config_mod
from workbench import methods, runs

ROOT = Path(__file__).resolve().parents[1]
# `m.beta` after `m = cfg.method`, or `cfg.method.beta`
READS = re.compile(r"(?<![\w.])(?:m|cfg\.method)\.([a-z_]+)")


def method_keys_read(name: str) -> set[str]:
    source = inspect.getsource(methods.get(name))
    return {f"method.{field}" for field in READS.findall(source)}


@pytest.mark.parametrize("name", methods.AVAILABLE)
def test_the_spec_names_exactly_the_method_fields_its_module_reads(name):
    spec = methods.spec(name)
    assert spec.name == name and spec is methods.get(name).SPEC
    assert method_keys_read(name) == {k for k in spec.fields if k.startswith("method.")}


def test_the_source_scan_finds_what_grpo_and_ppo_read():
    assert {"method.beta", "method.rewards", "method.num_generations"} <= method_keys_read("grpo")
    assert {"method.beta", "method.reward_model", "method.temperature"} <= method_keys_read("ppo")


@pytest.mark.parametrize("name", methods.AVAILABLE)
def test_the_spec_names_known_kinds_and_valid_keys(name):
    from workbench import data

    spec = methods.spec(name)
    assert spec.data in data.KINDS and spec.head in ("causal", "reward")
    assert spec.eval in ("exact_match", "preference", "ranking", "rewards", "reward_model")
    assert "loss" in spec.curves and "learning_rate" in spec.curves
    for key in (*spec.fields, *spec.starter):
        get(DEFAULTS, key)  # an unknown key raises AttributeError
    config_mod.override(DEFAULTS, spec.starter)  # the starter values pass the strict config check


@pytest.mark.parametrize("name", methods.AVAILABLE)
def test_starter_values_are_those_of_a_shipped_starter_recipe(name):
    starter = methods.spec(name).starter
    assert "train.learning_rate" in starter
    recipes = [workbench.load_config(p) for p in sorted((ROOT / "recipes").glob(f"{name}_*_starter.yaml"))]
    assert any(all(get(cfg, k) == v for k, v in starter.items()) for cfg in recipes), starter


@pytest.mark.parametrize("name", methods.AVAILABLE)
def test_the_panel_shows_exactly_the_method_fields_the_spec_names(name):
    panel = MethodPanel()
    panel.name.value = name
    shown = {
        key for key, f in panel.fields.items() if key.startswith("method.") and f.layout.display != "none"
    }
    assert shown - {"method.name"} == set(methods.spec(name).fields)


def test_grpo_shows_beta_which_it_reads():
    panel = MethodPanel()
    panel.name.value = "grpo"
    assert panel.fields["method.beta"].layout.display != "none"


def test_switching_to_dpo_offers_its_starter_learning_rate_beta_and_run_name():
    panel = MethodPanel()
    panel.name.value = "dpo"
    values = panel.overrides()
    assert values["train.learning_rate"] == 2e-3 and values["method.beta"] == 0.1
    assert values["output.name"] == "dpo-lora" and values["method.loss_type"] == "sigmoid"
    panel.name.value = "kto"  # the values DPO offered give way to KTO's
    assert panel.overrides()["train.learning_rate"] == 5e-4


def test_switching_keeps_what_the_user_typed():
    panel = MethodPanel()
    panel.name.value = "dpo"
    panel.fields["train.learning_rate"].value = "7e-4"
    panel.fields["method.beta"].value = "0.3"
    panel.name.value = "simpo"
    values = panel.overrides()
    assert values["train.learning_rate"] == 7e-4 and values["method.beta"] == 0.3
    assert values["output.name"] == "simpo-lora"


def test_a_loaded_recipe_keeps_its_own_values():
    panel = MethodPanel()
    panel.show_config(config_mod.override(DEFAULTS, {"method.name": "dpo", "train.learning_rate": 1e-5}))
    assert panel.overrides()["train.learning_rate"] == 1e-5


def finished(root: Path, name: str) -> Path:
    run = root / name
    run.mkdir(parents=True)
    (run / "resolved.yaml").write_text("{}\n", encoding="utf-8")
    (run / "events.jsonl").write_text('{"event": "start"}\n{"event": "finish", "reason": "finished"}\n')
    return run


def test_start_from_run_offers_finished_runs_and_shows_where_a_name_leads(tmp_path):
    root = tmp_path / "runs"
    run = finished(root, "sft-warmup-20250101-120000")
    (root / "broken-20250101-120000").mkdir()
    (root / "broken-20250101-120000" / "events.jsonl").write_text('{"event": "start"}\n{"event": "error"}\n')
    assert runs.status(run) == "finished"
    assert finished_runs(root) == [str(root / "sft-warmup"), str(run)]
    panel = MethodPanel(config_mod.override(DEFAULTS, {"output.root": str(root)}))
    assert panel.from_run.control.options == (str(root / "sft-warmup"), str(run))
    panel.from_run.value = str(root / "sft-warmup")
    assert f"resolves to {run}" in panel.from_run.note.value and not panel.problems()


def png_size(png: bytes) -> tuple[int, int]:
    return struct.unpack(">II", png[16:24])


def test_the_plot_is_drawn_at_twice_its_on_screen_width(tmp_path):
    plot = LossPlot()
    for step in (10, 20, 30):
        plot.add({"step": step, "loss": 1 / step, "learning_rate": 1e-3})
    plot.draw()
    width, height = png_size(plot.image.value)
    css = int(plot.image.layout.width.removesuffix("px"))
    assert width == 2 * css and css == round(plot._figure.get_figwidth() * CSS_DPI)


def test_step_ticks_are_whole_numbers():
    plot = LossPlot()
    for step in (1, 2):  # matplotlib's own ticks would be 0.8, 1.0, 1.2, ...
        plot.add({"step": step, "loss": 1 / step})
    plot.draw()
    ticks = plot._figure.axes[0].get_xticks()
    assert {1, 2} <= set(ticks) and all(t == int(t) for t in ticks)


def test_one_point_is_not_drawn_live_and_is_shown_from_step_0_at_the_end():
    plot = LossPlot()
    plot.add({"step": 10, "loss": 1.0})
    assert plot.image.value == b""  # a lone dot on a 9.6-10.4 axis says nothing
    plot.draw()  # the run ended after one log
    assert plot._figure.axes[0].get_xlim() == (0.0, 11.0)


def test_the_plot_of_a_run_draws_its_methods_curves_in_its_order(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    config_mod.save(config_mod.override(DEFAULTS, {"method.name": "reward"}), run / "resolved.yaml")
    (run / "metrics.jsonl").write_text(
        "".join(
            f'{{"step": {s}, "loss": 1, "preference_accuracy": 0.5, "reward_mean": 0.1}}\n' for s in (1, 2)
        )
    )
    plot = LossPlot(run)
    assert plot.method == "reward"
    titles = [axis.get_title() for axis in plot._figure.axes]
    assert titles == ["loss", "reward", "preference accuracy"]  # reward's spec order, not the union's


@pytest.mark.parametrize(
    ("name", "logs", "shared"),
    [("ppo", {"loss/policy_avg": 0.5, "objective/scores": 1.5, "lr": 1e-4}, {"loss": 0.5, "reward_mean": 1.5, "learning_rate": 1e-4}),
     ("reward", {"loss": 0.7, "accuracy": 0.8}, {"preference_accuracy": 0.8}),
     ("sft", {"loss": 0.7, "accuracy": 0.8}, {"loss": 0.7})],
)  # fmt: skip
def test_the_monitor_adds_the_shared_names_of_the_methods_spec(name, logs, shared):
    from types import SimpleNamespace

    from workbench.devices import Device
    from workbench.monitor import Recorder

    recorder = Recorder(None, Device("cpu"), say=None, spec=methods.spec(name))
    record = recorder.record(SimpleNamespace(global_step=3, max_steps=9, epoch=0.1), logs)
    assert shared.items() <= record.items() and logs.items() <= record.items()
    assert name != "sft" or "preference_accuracy" not in record  # SFT's "accuracy" is not a preference
