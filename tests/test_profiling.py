"""profile.enabled: a bounded window of steps profiled by the device's own profiler, and every way it can fail
without costing the run."""

from __future__ import annotations

import json

import pytest
from conftest import tiny
from test_devices import FAKES, result, start_python

import workbench
from workbench import devices, profile_window, profiling


def profiled(tmp_path, *more: str) -> workbench.RunConfig:
    return tiny(tmp_path, "eval.before=false", "eval.after=false", "profile.enabled=true", "profile.wait=1",
                "profile.warmup=1", "profile.active=2", *more)  # fmt: skip


def test_a_profiled_run_keeps_a_trace_and_its_top_operators(tmp_path):
    run = workbench.train(profiled(tmp_path), echo=False)
    summary = profiling.read(run.run_dir)
    assert summary["backend"] == "torch.profiler" and summary["notes"] == []
    operators = [row["operator"] for row in summary["top_operators"]]
    assert "aten::mm" in operators and summary["top_operators"][0]["host_ms"] > 0
    (trace,) = (run.run_dir / "profile").glob("*.pt.trace.json")  # what TensorBoard and Perfetto open
    assert json.loads(trace.read_text())["traceEvents"]


def test_a_window_longer_than_the_run_is_clipped_with_a_note(tmp_path):
    run = workbench.train(profiled(tmp_path, "profile.active=50"), echo=False)
    (note,) = profiling.read(run.run_dir)["notes"]
    assert "longer than the run (6 steps): clipped to 1+1+4" in note
    assert run.summary["profile_notes"] == [note] and run.status == "finished"


def test_a_profile_folder_that_cannot_be_written_leaves_a_note_and_the_run_finishes(tmp_path, monkeypatch):
    monkeypatch.setattr(profiling, "FOLDER", "resolved.yaml/profile")  # under a file: mkdir fails
    run = workbench.train(profiled(tmp_path), echo=False)
    (note,) = run.summary["profile_notes"]
    assert run.status == "finished" and "profiling is off for this run" in note and "resolved.yaml" in note


def test_a_missing_profiler_falls_back_to_the_step_timing(tmp_path, monkeypatch):
    def missing(device):
        raise devices.DeviceError("torch_npu has no profiler module here")

    monkeypatch.setattr(devices, "profiler_backend", missing)
    run = workbench.train(profiled(tmp_path), echo=False)
    assert "no profiler module" in run.summary["profile_notes"][0] and run.summary["step_split_s"]["step"] > 0


def test_on_an_npu_the_npu_profiler_records_npu_activity_into_the_run():
    out = result(start_python([str(FAKES / "npu_profile_scenario.py")], FAKES))
    assert out["device"] == "npu" and out["backend"] == "torch_npu.profiler"
    setup, *steps = out["calls"]
    assert setup["activities"] == ["CPU", "NPU"]
    assert setup["schedule"] == {"wait": 1, "warmup": 1, "active": 2, "repeat": 1}
    assert setup["on_trace_ready"]["trace_handler"].endswith("/profile")
    assert steps == ["start", "step", "step", "step", "step", "stop"]
    assert out["summary"]["backend"] == "torch_npu.profiler"


@pytest.mark.parametrize("steps, expected", [(10, (1, 1, 3)), (3, (1, 1, 1)), (1, (0, 0, 1))])
def test_the_window_is_clipped_to_the_steps_there_are(steps, expected, tmp_path):
    window = profile_window.ProfileWindow(
        workbench.RunConfig().profile, devices.Device("cpu"), tmp_path, say=print
    )
    assert window._window(steps) == expected


def test_workbench_profile_runs_a_short_window_and_says_where_the_time_goes(tmp_path):
    from test_cli import QUICKSTART, workbench_cmd

    done = workbench_cmd("profile", QUICKSTART, f"output.root={tmp_path}", timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "average step" in done.stdout and "forward+backward" in done.stdout
    assert "aten::mm" in done.stdout and "diagnosis:" in done.stdout
    (run,) = tmp_path.glob("quickstart-profile-*")
    assert workbench.runs.summary(run)["steps"] == 6  # wait 1 + warmup 1 + active 3 + 1
    assert not (run / "adapter").exists() and (run / "profile" / "summary.json").is_file()
