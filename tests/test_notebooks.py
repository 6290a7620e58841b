"""The notebooks: committed clean, and they run top to bottom under nbclient showing what they promise.

Each notebook runs once per module with small settings injected into its `parameters` cell, from the
repository root (as Jupyter does after the notebook's own `%cd ..`), writing runs under tmp_path.
The starter model comes from the usual cache, so it is built at most once.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

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


def run_dirs(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.glob("*/summary.json"))


def losses(run_dir: Path) -> list[float]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r["loss"] for r in map(json.loads, lines) if "loss" in r]


# --- committed state: fast ---------------------------------------------------------------------------


def test_there_are_notebooks():
    assert [p.name for p in NOTEBOOKS][:2] == ["01_sft_lora.ipynb", "02_adapters.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert nb.metadata.kernelspec.name == "python3"
    assert assigned_names(parameters_cell(nb).source)  # the cell the tests override


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
