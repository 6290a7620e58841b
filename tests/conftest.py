"""Shared fixtures: a tiny, fast run configuration on the starter model."""

from __future__ import annotations

from pathlib import Path

import pytest

import workbench

ROOT = Path(__file__).resolve().parents[1]


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
