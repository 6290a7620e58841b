"""The diagnosis rules beyond the data loader: a small batch with low MFU (a real run, both directions),
communication not hidden by compute, and operators that fall back to the CPU."""

from __future__ import annotations

import pytest
from conftest import tiny

import workbench
from workbench import diagnosis
from workbench.diagnosis import Facts

STEP = {"data_wait_s": 0.0, "compute_s": 0.040, "optimizer_s": 0.004, "other_s": 0.001, "step_s": 0.045}
RECORDS = [{"step": 5, **STEP}, {"step": 10, **STEP}]  # 45 ms per step


@pytest.fixture(scope="module")
def batches(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch")

    def run(batch: int) -> dict:
        cfg = tiny(root, "train.max_steps=12", "train.logging_steps=4", "eval.before=false", "eval.after=false",
                   f"train.per_device_train_batch_size={batch}")  # fmt: skip
        return workbench.train(cfg, echo=False).summary

    return run(1), run(32)


def test_a_tiny_batch_with_low_mfu_is_named_with_the_batch_to_raise(batches):
    tiny_batch, _ = batches
    (finding,) = [f for f in tiny_batch["diagnosis"] if f["what"] == "small batch"]
    assert tiny_batch["mfu"] < diagnosis.LOW_MFU and tiny_batch["tokens_per_batch"] < 100
    assert "per_device_train_batch_size (now 1)" in finding["detail"]
    assert f"{tiny_batch['mfu']:.1%}" in finding["detail"]


def test_raising_the_batch_as_suggested_raises_mfu_and_the_finding_goes(batches):
    tiny_batch, bigger = batches
    assert bigger["mfu"] > 3 * tiny_batch["mfu"]
    assert bigger["samples_per_second"] > 3 * tiny_batch["samples_per_second"]
    assert not [f for f in bigger["diagnosis"] if f["what"] == "small batch"]


def test_low_mfu_with_a_large_batch_is_not_blamed_on_the_batch():
    assert diagnosis.diagnose(RECORDS, Facts(mfu=0.02, tokens_per_batch=8192)) == []


def test_low_mfu_from_waiting_for_data_is_not_blamed_on_the_batch():
    waiting = {"data_wait_s": 0.6, "compute_s": 0.25, "optimizer_s": 0.0, "other_s": 0.0, "step_s": 0.85}
    records = [{"step": s, **waiting} for s in (2, 4)]
    found = diagnosis.diagnose(records, Facts(mfu=0.085, tokens_per_batch=1178, batch_size=32))
    assert [f.what for f in found] == ["data loader"]  # while computing, MFU is 29%


def test_communication_not_hidden_by_compute_is_named_with_its_share():
    facts = Facts(profile={"communication_ms_per_step": 12.0, "steps": 2})
    (finding,) = diagnosis.diagnose(RECORDS, facts)
    assert finding.what == "communication" and finding.share == pytest.approx(12 / 45)
    assert "27% of each step (12 ms" in finding.detail and "gradient_accumulation_steps" in finding.detail
    assert diagnosis.diagnose(RECORDS, Facts(profile={"communication_ms_per_step": 2.0})) == []


def test_operators_that_fell_back_to_the_cpu_are_named():
    fallen = [{"operator": "aten::isin.Tensor_Tensor_out", "calls": 2, "ms": 4.7}]
    (finding,) = diagnosis.diagnose(RECORDS, Facts(profile={"cpu_fallback": fallen, "steps": 2}))
    assert finding.what == "CPU fallback" and finding.share == pytest.approx(2.35 / 45)
    assert (
        "1 operator(s) fell back to the CPU (aten::isin.Tensor_Tensor_out; 2 ms per step)" in finding.detail
    )
