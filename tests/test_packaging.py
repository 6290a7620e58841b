"""The promises around the package: light imports, a fast CLI, environments in step, bundled data in sync."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

from workbench import bundled

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "trl", "peft", "datasets", "accelerate", "pandas", "matplotlib")


def loaded_after(code: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    return [m for m in json.loads(out.splitlines()[-1]) if m.split(".")[0] in HEAVY]


def test_import_workbench_loads_no_heavy_library():
    assert loaded_after("import workbench, workbench.config, workbench.runs, workbench.cli") == []


def test_import_widgets_loads_no_heavy_library():
    assert loaded_after("import widgets") == []


def test_help_loads_no_torch():
    code = "from workbench.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass"
    assert loaded_after(code) == []


def test_bundled_files_match_their_generator(tmp_path):
    for path in bundled.generate(tmp_path):
        shipped = bundled.FOLDER / path.name
        assert shipped.read_text() == path.read_text(), f"{shipped} is stale: run python -m workbench.bundled"


def test_held_out_words_never_appear_in_training():
    def words(name):
        return {json.loads(line)["answer"] for line in (bundled.FOLDER / name).read_text().splitlines()}

    assert not words("prompts_eval.jsonl") & words("prompts_train.jsonl")


def pip_lines(env_file: Path) -> list[str]:
    deps = yaml.safe_load(env_file.read_text())["dependencies"]
    return next(d["pip"] for d in deps if isinstance(d, dict))


def test_environment_files_pin_the_same_torch_and_python():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == "npu-workbench"
    for env in (ROOT / "environment.yml", ROOT / "binder" / "environment.yml"):
        deps = yaml.safe_load(env.read_text())["dependencies"]
        assert "python=3.11" in deps, env
        assert "torch==2.13.0" in pip_lines(env), env
    assert "torch==2.13.0" in (ROOT / "Makefile").read_text()


def test_environments_install_the_package_itself():
    assert any(line.startswith("-e .") for line in pip_lines(ROOT / "environment.yml"))
    assert 'pip install --no-cache-dir -e ".[dev]"' in (ROOT / "binder" / "postBuild").read_text()


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme.split("\n## ")[0], "the README must open with the test command"
    assert "make demo" in readme.split("\n## ")[0]
    assert "make test" in (ROOT / ".ci" / "run").read_text()
