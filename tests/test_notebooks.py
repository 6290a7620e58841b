"""The notebooks: committed clean, and they run top to bottom under nbclient showing what they promise.

Each notebook runs once per module with small settings injected into its `parameters` cell, from the
repository root (as Jupyter does after the notebook's own `%cd ..`), writing runs under tmp_path.
The starter model comes from the usual cache, so it is built at most once.
"""

from __future__ import annotations

import ast
import json
import math
import re
from pathlib import Path

import pytest

import workbench

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT_S = 1200  # per cell: ~60 s on 2 free cores, but up to 10x slower on a shared, busy CPU
ALL_ADAPTERS = ["full", "freeze", "lora", "qlora", "dora", "galore"]


def parameters_cell(nb) -> nbformat.NotebookNode:
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "a notebook needs exactly one cell tagged 'parameters'"
    return tagged[0]


def assigned_names(source: str) -> set[str]:
    return {t.id for node in ast.parse(source).body if isinstance(node, ast.Assign) for t in node.targets}


def execute(name: str, parameters: dict, output_root: Path) -> nbformat.NotebookNode:
    """Run notebooks/<name> top to bottom with `parameters` replacing its parameters cell."""
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    cell = parameters_cell(nb)
    params = {**parameters, "OUTPUT_ROOT": str(output_root)}
    # a parameter renamed in the notebook must break the test, not silently run the full settings
    assert assigned_names(cell.source) == set(params)
    cell.source = "\n".join(f"{key} = {value!r}" for key, value in params.items())
    client = nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=CELL_TIMEOUT_S, resources={"metadata": {"path": str(ROOT)}}
    )
    client.execute()
    return nb


def outputs(nb, kind: str) -> list:
    """Every output of the code cells carrying MIME type `kind` ("stdout" for printed text)."""
    found = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if kind == "stdout" and out.output_type == "stream" and out.name == "stdout":
                found.append(out.text)
            elif kind in out.get("data", {}):
                found.append(out.data[kind])
    return found


def stderr_cells(nb) -> list[str]:
    """Each code cell that wrote to stderr (pink in Jupyter), with its source; a cell tagged
    'stderr-ok' is one meant to show an error or a warning."""
    found = []
    for cell in nb.cells:
        if cell.cell_type != "code" or "stderr-ok" in cell.metadata.get("tags", []):
            continue
        text = "".join(
            o.text for o in cell.get("outputs", []) if o.output_type == "stream" and o.name == "stderr"
        )
        if text:
            found.append(f"--- cell:\n{cell.source}\n--- wrote to stderr:\n{text}")
    return found


def run_dirs(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.glob("*/summary.json"))


def losses(run_dir: Path) -> list[float]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r["loss"] for r in map(json.loads, lines) if "loss" in r]


# --- committed state: fast ---------------------------------------------------------------------------


def test_there_are_notebooks():
    assert [p.name for p in NOTEBOOKS][:3] == ["00_workbench.ipynb", "01_sft_lora.ipynb", "02_adapters.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert nb.metadata.kernelspec.name == "python3"
    if path.name[:2].isdigit():  # step-through notebooks; app.ipynb is the app alone, for Voila
        assert assigned_names(parameters_cell(nb).source)  # the cell the tests override


# --- 00_workbench: a run started from the panels -------------------------------------------------------


@pytest.fixture(scope="module")
def app_nb(tmp_path_factory):
    root = tmp_path_factory.mktemp("workbench_runs")
    small = ["train.max_steps=20", "train.logging_steps=5", "eval.max_samples=20"]
    params = {"RECIPE": "recipes/quickstart.yaml", "OVERRIDES": small, "TRAIN_NOW": True}
    return execute("00_workbench.ipynb", params, root), root


def widget_states(nb, css_class: str) -> list[dict]:
    """The saved state of every widget carrying `css_class` (nbclient stores widget state in the notebook)."""
    states = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"].values()
    return [s["state"] for s in states if css_class in s["state"].get("_dom_classes", [])]


@pytest.mark.notebook
@pytest.mark.slow
def test_workbench_notebook_trains_from_the_panels_and_keeps_the_result(app_nb):
    nb, root = app_nb
    (run,) = run_dirs(root)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["steps"] == 20
    assert workbench.load_config(run / "resolved.yaml").model.name_or_path == "starter"
    assert any("application/vnd.jupyter.widget-view+json" in out.get("data", {}) for c in nb.cells
               for out in c.get("outputs", []))  # fmt: skip
    (status,) = widget_states(nb, "wb-status")
    assert "finished" in status["value"] and str(run) in status["value"]
    (progress,) = widget_states(nb, "wb-progress")
    assert progress["value"] == progress["max"] == 20
    assert any("exact match" in html and "<img" in html for html in outputs(nb, "text/html"))


# --- 01_sft_lora ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sft(tmp_path_factory):
    root = tmp_path_factory.mktemp("sft_runs")
    return execute("01_sft_lora.ipynb", {"MAX_STEPS": 30, "EVAL_SAMPLES": 20}, root), root


@pytest.mark.notebook
@pytest.mark.slow
def test_sft_notebook_writes_one_finished_run(sft):
    _, root = sft
    (run,) = run_dirs(root)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["steps"] == 30
    assert (run / "adapter" / "adapter_config.json").is_file()


@pytest.mark.notebook
@pytest.mark.slow
def test_sft_notebook_loss_fell(sft):
    _, root = sft
    (run,) = run_dirs(root)
    logged = losses(run)
    assert len(logged) >= 2 and logged[0] > logged[-1]


@pytest.mark.notebook
@pytest.mark.slow
def test_sft_notebook_shows_config_metrics_and_loss_plot(sft):
    nb, _ = sft
    printed = "".join(outputs(nb, "stdout"))
    assert "learning_rate: 0.002" in printed and "max_steps: 30" in printed  # the resolved config
    assert any("loss" in html and "<table" in html for html in outputs(nb, "text/html"))
    assert len(outputs(nb, "image/png")) == 1


@pytest.mark.notebook
@pytest.mark.slow
def test_sft_notebook_reports_accuracy_and_chats(sft):
    nb, _ = sft
    printed = "".join(outputs(nb, "stdout"))
    assert re.search(r"held-out exact match: \d+% before -> \d+% after \(20 words\)", printed)
    for word in ("hello", "lamp", "npu"):
        assert re.search(rf"{word} -> '[^'\n]*'\s+\(expected '{word[::-1]}'\)", printed)


# --- 02_adapters ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def adapters(tmp_path_factory):
    root = tmp_path_factory.mktemp("adapter_runs")
    params = {"MAX_STEPS": 20, "EVAL_SAMPLES": 10, "ADAPTERS": ALL_ADAPTERS}
    nb = execute("02_adapters.ipynb", params, root)
    summaries = {}
    for run in run_dirs(root):
        summary = json.loads((run / "summary.json").read_text())
        summaries[summary["adapter"]] = summary | {"run_dir": run}
    return nb, summaries


@pytest.mark.notebook
@pytest.mark.slow
def test_adapters_notebook_runs_every_adapter(adapters):
    _, summaries = adapters
    assert sorted(summaries) == sorted(ALL_ADAPTERS)
    assert all(s["status"] == "finished" and s["steps"] == 20 for s in summaries.values())


@pytest.mark.notebook
@pytest.mark.slow
def test_adapters_notebook_table_has_a_row_per_adapter(adapters):
    nb, _ = adapters
    (table,) = [html for html in outputs(nb, "text/html") if "trainable_parameters" in html]
    rows = re.findall(r'class="row_heading[^"]*"\s*>\s*(\w+)\s*</th>', table)
    assert rows == ALL_ADAPTERS


@pytest.mark.notebook
@pytest.mark.slow
def test_adapters_notebook_trainable_parameters_follow_the_adapter(adapters):
    _, summaries = adapters
    trainable = {name: s["trainable_parameters"] for name, s in summaries.items()}
    assert trainable["lora"] < trainable["freeze"] < trainable["full"]
    assert trainable["dora"] > trainable["lora"]  # DoRA adds a magnitude vector per target
    assert trainable["galore"] == trainable["full"]  # GaLore trains every weight


@pytest.mark.notebook
@pytest.mark.slow
def test_adapters_notebook_plots_bars_and_loss_curves(adapters):
    nb, summaries = adapters
    assert len(outputs(nb, "image/png")) == 2
    assert all(len(losses(s["run_dir"])) == 2 for s in summaries.values())  # each curve has points


# --- the alignment notebooks: shared checks ----------------------------------------------------------
# Tiny settings: a couple of steps per stage, metrics logged every step, 8 held-out examples. The runs
# are too short to move the effect figures, so these tests check that every stage ran and chained and
# that the notebook shows what it promises, not how large the effect is.

TINY = {"EVAL_SAMPLES": 8, "LOG_EVERY": 1}
TINY_STEPS = 3  # the stage whose curves a notebook plots: enough logged points to draw a line
PREFERENCE_FIGURES = ["preference_accuracy", "margin"]
GENERATED_FIGURES = ["reward_mean", "accuracy", "well_formed"]


def stages(root: Path) -> dict[str, Path]:
    """Each run directory under `root` by its run name (the folder name without the timestamp)."""
    found = {}
    for run in run_dirs(root):
        name = re.sub(r"-\d{8}-\d{6}(-\d+)?$", "", run.name)
        assert name not in found, f"two {name} runs under {root}"
        found[name] = run
    return found


def finished(run: Path, steps: int) -> dict:
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["steps"] == steps, run.name
    return summary


def resolved(run: Path) -> workbench.RunConfig:
    return workbench.load_config(run / "resolved.yaml")


def assert_figures(summary: dict, names: list[str]) -> None:
    for name in names:
        for key in (f"{name}_before", f"{name}_after"):
            value = summary[key]
            assert isinstance(value, int | float) and not isinstance(value, bool), key
            assert math.isfinite(value), key


def logged(run: Path, column: str) -> list[float]:
    records = map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
    return [r[column] for r in records if r.get(column) is not None]


def assert_chain(runs: dict, start: str, stage: str, figures: list[str], column: str) -> None:
    """`stage` ran TINY_STEPS steps from the 2-step SFT run `start`, with its figures and its curve."""
    assert sorted(runs) == sorted([start, stage])
    finished(runs[start], 2)
    summary = finished(runs[stage], TINY_STEPS)
    assert summary["method"] == stage.split("-")[0]
    assert resolved(runs[stage]).model.from_run == str(runs[start])
    assert_figures(summary, figures)
    assert len(logged(runs[stage], column)) == TINY_STEPS


# --- 03_dpo --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dpo(tmp_path_factory):
    root = tmp_path_factory.mktemp("dpo_runs")
    params = {"SFT_STEPS": 2, "DPO_STEPS": TINY_STEPS, **TINY}
    return execute("03_dpo.ipynb", params, root), stages(root)


@pytest.mark.notebook
@pytest.mark.slow
def test_dpo_notebook_chains_warmup_into_dpo(dpo):
    assert_chain(dpo[1], "sft-warmup", "dpo-lora", PREFERENCE_FIGURES, "margin")


@pytest.mark.notebook
@pytest.mark.slow
def test_dpo_notebook_shows_effect_curves_and_examples(dpo):
    nb, _ = dpo
    printed = "".join(outputs(nb, "stdout"))
    assert re.search(r"held-out preference accuracy: \d+% before -> \d+% after \(8 pairs\)", printed)
    assert re.search(r"held-out mean margin, per token: [+-]\d\.\d{3} before -> [+-]\d\.\d{3} after", printed)
    examples = re.findall(
        r"Reverse: \w+\s+chosen '\w+', rejected '\w+', margin [+-]\d\.\d{3} \(prefers", printed
    )
    assert len(examples) == 3
    assert any("chosen" in html and "rejected" in html for html in outputs(nb, "text/html"))  # the data
    assert len(outputs(nb, "image/png")) == 1


# --- 04_kto_simpo_orpo ---------------------------------------------------------------------------------

PREFERENCE_METHODS = ["kto", "simpo", "orpo"]


@pytest.fixture(scope="module")
def preference_methods(tmp_path_factory):
    root = tmp_path_factory.mktemp("preference_runs")
    params = {"SFT_STEPS": 2, "STEPS": TINY_STEPS, **TINY}
    return execute("04_kto_simpo_orpo.ipynb", params, root), stages(root)


@pytest.mark.notebook
@pytest.mark.slow
def test_preference_notebook_runs_each_method_from_the_warmup(preference_methods):
    _, runs = preference_methods
    assert sorted(runs) == sorted(["sft-warmup", *(f"{m}-lora" for m in PREFERENCE_METHODS)])
    finished(runs["sft-warmup"], 2)
    for method in PREFERENCE_METHODS:
        run = runs[f"{method}-lora"]
        summary = finished(run, TINY_STEPS)
        assert summary["method"] == method
        assert resolved(run).model.from_run == str(runs["sft-warmup"])
        assert_figures(summary, PREFERENCE_FIGURES)
        assert len(logged(run, "margin")) == TINY_STEPS  # each line of the plot has its points


@pytest.mark.notebook
@pytest.mark.slow
def test_preference_notebook_table_has_a_row_per_method(preference_methods):
    nb, _ = preference_methods
    (table,) = [html for html in outputs(nb, "text/html") if "preference_accuracy_after" in html]
    rows = re.findall(r'class="row_heading[^"]*"\s*>\s*(\w+)\s*</th>', table)
    assert rows == PREFERENCE_METHODS
    assert re.search(r"\d+%", table)  # the accuracies, formatted


@pytest.mark.notebook
@pytest.mark.slow
def test_preference_notebook_shows_kto_rows_and_one_plot(preference_methods):
    nb, _ = preference_methods
    assert any("label" in html and "True" in html and "False" in html for html in outputs(nb, "text/html"))
    printed = "".join(outputs(nb, "stdout"))
    for method in PREFERENCE_METHODS:
        assert re.search(rf"{method}: beta [\d.]+, {TINY_STEPS} steps \.\.\. finished in \d+ s", printed)
    assert len(outputs(nb, "image/png")) == 1


# --- 05_reward_model_and_ppo ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rlhf(tmp_path_factory):
    root = tmp_path_factory.mktemp("rlhf_runs")
    params = {
        "POLICY_SFT_STEPS": 2,
        "REWARD_STEPS": 2,
        "PPO_STEPS": TINY_STEPS,
        **TINY,
    }
    return execute("05_reward_model_and_ppo.ipynb", params, root), stages(root)


@pytest.mark.notebook
@pytest.mark.slow
def test_rlhf_notebook_chains_sft_reward_model_and_ppo(rlhf):
    _, runs = rlhf
    assert sorted(runs) == ["ppo-lora", "reward-full", "sft-partial"]
    finished(runs["sft-partial"], 2)
    reward = finished(runs["reward-full"], 2)
    assert reward["method"] == "reward"
    assert resolved(runs["reward-full"]).model.from_run == str(runs["sft-partial"])
    assert_figures(reward, ["preference_accuracy"])
    ppo = finished(runs["ppo-lora"], TINY_STEPS)
    ppo_cfg = resolved(runs["ppo-lora"])
    assert ppo["method"] == "ppo" and ppo_cfg.model.from_run == str(runs["sft-partial"])
    assert ppo_cfg.method.reward_model == str(runs["reward-full"])
    assert_figures(ppo, GENERATED_FIGURES)
    assert len(logged(runs["ppo-lora"], "reward_mean")) == TINY_STEPS


@pytest.mark.notebook
@pytest.mark.slow
def test_rlhf_notebook_shows_ranking_reward_curve_and_collapse_check(rlhf):
    nb, _ = rlhf
    printed = "".join(outputs(nb, "stdout"))
    assert re.search(r"held-out ranking accuracy: \d+% before -> \d+% after \(8 pairs\)", printed)
    assert len(re.findall(r"Reverse: \w+\s+answered '.*' \(expected '\w+'\), reward [+-]\d", printed)) == 3
    (table,) = [html for html in outputs(nb, "text/html") if "well_formed" in html]
    assert "before PPO" in table and "after PPO" in table and "reward_mean" in table
    assert len(outputs(nb, "image/png")) == 1


# --- 06_grpo -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def grpo(tmp_path_factory):
    root = tmp_path_factory.mktemp("grpo_runs")
    params = {"SFT_STEPS": 2, "GRPO_STEPS": TINY_STEPS, **TINY}
    return execute("06_grpo.ipynb", params, root), stages(root)


@pytest.mark.notebook
@pytest.mark.slow
def test_grpo_notebook_chains_sft_into_grpo(grpo):
    assert_chain(grpo[1], "sft-partial", "grpo-lora", GENERATED_FIGURES, "reward_mean")


@pytest.mark.notebook
@pytest.mark.slow
def test_grpo_notebook_shows_rewards_curve_and_comparison(grpo):
    nb, _ = grpo
    html = outputs(nb, "text/html")
    assert any("exact_match" in h and "similarity" in h and "olelh" in h for h in html)  # the reward demo
    (table,) = [h for h in html if "well_formed" in h]
    assert "SFT start" in table and "after GRPO" in table and "reward_mean" in table
    printed = "".join(outputs(nb, "stdout"))
    assert len(re.findall(r"Reverse: \w+\s+answered '.*' \(expected '\w+'\), reward \d", printed)) == 3
    assert len(outputs(nb, "image/png")) == 1


# --- 07_profiling: the slow-loader story ---------------------------------------------------------------


@pytest.fixture(scope="module")
def profiling_nb(tmp_path_factory):
    root = tmp_path_factory.mktemp("profiling_runs")
    # 20 ms per sample and 4 workers: the loader dominates, and the fix clears it, even on a busy CPU;
    # 30 steps (3 logs): the split reads the steady windows, past the workers' start in the first
    return execute("07_profiling.ipynb", {"STEPS": 30, "SAMPLE_COST_MS": 20.0, "WORKERS": 4}, root), root


@pytest.mark.notebook
@pytest.mark.slow
def test_profiling_notebook_names_the_loader_then_shows_the_fix(profiling_nb):
    nb, root = profiling_nb
    printed = "".join(outputs(nb, "stdout"))
    assert "diagnosis: the data loader takes" in printed
    before, after = map(int, re.search(r"data loader share of a step: (\d+)% -> (\d+)%", printed).groups())
    assert after < before / 2
    assert "top operators by self time" in printed and "aten::mm" in printed
    assert "tensor memory over" in printed and "MB at most" in printed
    small, large = (float(x) for x in re.findall(r"batch \d+: MFU ([\d.]+)%", printed))
    assert large > 3 * small and "diagnosis: while it computes, the model uses" in printed
    assert "per_device_train_batch_size (now 1)" in printed
    assert len(run_dirs(root)) == 5


# --- every notebook --------------------------------------------------------------------------------------


@pytest.mark.notebook
@pytest.mark.slow
@pytest.mark.parametrize(
    "executed", ["app_nb", "sft", "adapters", "dpo", "preference_methods", "rlhf", "grpo", "profiling_nb"]
)
def test_notebook_cells_write_nothing_to_stderr(executed, request):
    """Library warnings and log lines show as pink error boxes: a normal cell prints none."""
    nb = request.getfixturevalue(executed)[0]
    assert not stderr_cells(nb), "\n\n".join(stderr_cells(nb))
