"""Shared fixtures: a tiny, fast run configuration on the starter model."""

from __future__ import annotations

from pathlib import Path

import pytest

import workbench

ROOT = Path(__file__).resolve().parents[1]

# Tests outside test_train/test_methods that train for more than a few seconds (over ~4 s on 2 cores),
# by file: a test's name, or a fixture that trains (every test using it is slow, or the next one pays).
# They are marked here so the fast tier (`make test-fast`) stays fast; a stale name is an error.
SLOW = {
    "test_diagnosis.py": {"batches"},
    "test_profiling.py": {
        "test_workbench_profile_runs_a_short_window_and_says_where_the_time_goes",
        "test_a_missing_profiler_falls_back_to_the_step_timing",
        "test_a_window_longer_than_the_run_is_clipped_with_a_note",
    },
    "test_steptimes.py": {"story"},
    "test_widgets.py": {
        "test_a_run_from_the_panel_in_the_kernel_finishes_and_can_be_repeated_from_the_cli",
        "test_stop_in_the_kernel_saves_a_checkpoint_and_resume_finishes",
        "test_a_subprocess_run_is_followed_and_stopped_through_its_run_directory",
    },
    "test_widgets_runs_chat.py": {"finished"},
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        names = SLOW.get(item.path.name, set())
        if stale := sorted(name for name in names if not hasattr(item.module, name)):
            raise pytest.UsageError(f"tests/conftest.py SLOW names {stale}, not in {item.path.name}")
        if getattr(item, "originalname", item.name) in names or names & set(item.fixturenames):
            item.add_marker(pytest.mark.slow)


def tiny(tmp_path: Path, *overrides: str) -> workbench.RunConfig:
    """The quickstart recipe shrunk to seconds: few steps, small eval, output under tmp_path."""
    base = [
        f"output.root={tmp_path / 'runs'}",
        "train.max_steps=6",
        "train.logging_steps=2",
        "train.save_steps=3",
        "eval.max_samples=8",
    ]
    return workbench.load_config(ROOT / "recipes" / "quickstart.yaml", [*base, *overrides])


@pytest.fixture
def tiny_cfg(tmp_path: Path) -> workbench.RunConfig:
    return tiny(tmp_path)
