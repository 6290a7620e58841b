"""Always-on step timing and the diagnosis it feeds: the slow-loader story in both directions."""

from __future__ import annotations

import json

import pytest
from conftest import ROOT

import workbench
from workbench import diagnosis

SLOW = ROOT / "recipes" / "profile_slow_dataloader_starter.yaml"


def slow_loader(tmp_path, *more: str) -> dict:
    # 20 ms per sample (not the recipe's 3): the loader must dominate even on a busy CPU.
    cfg = workbench.load_config(SLOW, [f"output.root={tmp_path}", "train.max_steps=12", "train.logging_steps=4",
                                       "data.sample_cost_ms=20", *more])  # fmt: skip
    return workbench.train(cfg, echo=False).summary


@pytest.fixture(scope="module")
def story(tmp_path_factory):
    root = tmp_path_factory.mktemp("slow")
    return slow_loader(root), slow_loader(root, "train.dataloader_num_workers=4")


def test_every_log_carries_the_step_split(story, tmp_path_factory):
    slow, _ = story
    split = slow["step_split_s"]
    assert set(split) == {"data_wait", "compute", "optimizer", "other", "step"}
    assert split["data_wait"] >= 0.64 * 0.9  # 32 samples x 20 ms are waited for before each step
    assert split["step"] == pytest.approx(sum(v for k, v in split.items() if k != "step"), rel=1e-3)


def test_the_diagnosis_names_the_data_loader_and_its_share(story):
    slow, _ = story
    (finding,) = [f for f in slow["diagnosis"] if f["what"] == "data loader"]
    assert finding["share"] > diagnosis.DATA_SHARE
    assert "raise train.dataloader_num_workers (now 0)" in finding["detail"]


def test_the_suggested_fix_shrinks_the_data_share(story):
    slow, fixed = story
    share = {name: s["step_split_s"]["data_wait"] / s["step_split_s"]["step"] for name, s in
             (("slow", slow), ("fixed", fixed))}  # fmt: skip
    assert share["fixed"] < share["slow"] / 2
    assert not [f for f in fixed["diagnosis"] if f["what"] == "data loader"]


def test_diagnosis_reads_any_metrics_and_skips_the_warm_up_window():
    records = [
        {"step": 10, "data_wait_s": 5.0, "compute_s": 0.1, "optimizer_s": 0.0, "other_s": 0.0, "step_s": 5.1},
        {"step": 20, "data_wait_s": 0.0, "compute_s": 0.1, "optimizer_s": 0.2, "other_s": 0.0, "step_s": 0.3},
    ]
    (finding,) = diagnosis.diagnose(records)
    assert finding.what == "optimizer" and finding.share == pytest.approx(2 / 3)
    assert diagnosis.diagnose([{"step": 1, "loss": 2.0}]) == []


def test_metrics_jsonl_has_the_timing_fields(story, tmp_path_factory):
    root = next(p for p in tmp_path_factory.getbasetemp().glob("slow*"))
    run = next(root.glob("slow-loader-*"))
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    with_loss = [r for r in logged if "loss" in r]
    assert with_loss and all({"data_wait_s", "compute_s", "data_share"} <= set(r) for r in with_loss)
