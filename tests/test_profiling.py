"""profile.enabled: a bounded window of steps profiled by the device's own profiler, and every way it can fail
without costing the run."""

from __future__ import annotations

import dataclasses
import json

import pytest
from conftest import tiny
from test_devices import FAKES, result, start_python

import workbench
from workbench import devices, profile_window, profiling, traces


def profiled(tmp_path, *more: str) -> workbench.RunConfig:
    return tiny(tmp_path, "eval.before=false", "eval.after=false", "profile.enabled=true", "profile.wait=1",
                "profile.warmup=1", "profile.active=2", *more)  # fmt: skip


def test_a_profiled_run_keeps_a_trace_its_top_operators_and_a_memory_timeline(tmp_path):
    run = workbench.train(profiled(tmp_path, "profile.profile_memory=true"), echo=False)
    summary = profiling.read(run.run_dir)
    assert summary["backend"] == "torch.profiler" and summary["notes"] == []
    operators = [row["operator"] for row in summary["top_operators"]]
    assert "aten::mm" in operators and summary["top_operators"][0]["host_ms"] > 0
    (trace,) = (run.run_dir / "profile").glob("*.pt.trace.json")  # what TensorBoard and Perfetto open
    assert json.loads(trace.read_text())["traceEvents"]
    timeline = summary["memory_timeline"]  # tensors allocated over the 2 recorded steps
    assert len(timeline["ms"]) == len(timeline["allocated_mb"]) > 10 and max(timeline["allocated_mb"]) > 1
    assert timeline["ms"] == sorted(timeline["ms"]) and summary["steps"] == 2
    assert summary["cpu_fallback"] == [] and summary["communication_ms_per_step"] == 0


def test_the_run_summary_gives_throughput_and_mfu_against_the_measured_peak(tmp_path):
    run = workbench.train(tiny(tmp_path, "eval.before=false", "eval.after=false"), echo=False)
    s = run.summary
    assert s["samples_per_second"] > 1 and 100 < s["tokens_per_batch"] < 32 * 256
    assert 0 < s["mfu"] < 1 and s["peak_source"].startswith("measured matmul peak")
    assert s["mfu"] == pytest.approx(s["model_tflops"] / s["peak_tflops"], rel=0.01)


def test_a_window_longer_than_the_run_is_clipped_with_a_note(tmp_path):
    run = workbench.train(profiled(tmp_path, "profile.active=50"), echo=False)
    (note,) = profiling.read(run.run_dir)["notes"]
    assert "longer than the run (6 steps): clipped to 1+1+4" in note
    assert run.summary["profile_notes"] == [note] and run.status == "finished"


def test_a_failed_offline_analysis_leaves_a_note_and_keeps_the_trace(tmp_path, monkeypatch):
    real = devices.profiler_backend

    def failing(device):
        def analyse(folder):
            raise RuntimeError("msprof parser crashed")

        return dataclasses.replace(real(device), analyse=analyse)

    monkeypatch.setattr(devices, "profiler_backend", failing)
    run = workbench.train(profiled(tmp_path), echo=False)
    (note,) = run.summary["profile_notes"]
    assert (
        run.status == "finished" and "offline analysis failed (RuntimeError: msprof parser crashed)" in note
    )
    summary = profiling.read(run.run_dir)  # what the trace holds is still read
    assert summary["notes"] == [note] and summary["top_operators"]


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


def test_on_an_npu_the_npu_profiler_records_npu_activity_and_its_analysis_is_read():
    out = result(start_python([str(FAKES / "npu_profile_scenario.py")], FAKES))
    assert out["device"] == "npu" and out["backend"] == "torch_npu.profiler"
    setup, *steps, analysis = out["calls"]
    assert setup["activities"] == ["CPU", "NPU"]
    assert setup["schedule"] == {"wait": 1, "warmup": 1, "active": 2, "repeat": 1}
    folder = setup["on_trace_ready"]["trace_handler"]
    assert folder.endswith("/profile") and setup["on_trace_ready"]["analyse_flag"] is False
    assert steps == ["start", "step", "step", "step", "step", "stop"]
    assert analysis == {"analyse": folder}  # offline, once the window is closed
    # what the analysis wrote (tests/fake_torch_npu/ascend_profiler_output), read back
    summary = out["summary"]
    assert summary["backend"] == "torch_npu.profiler"
    assert {"operator": "aten::mm", "calls": 2, "host_ms": 0.042, "device_ms": 0.6} in summary[
        "top_operators"
    ]
    assert summary["device_step_ms"] == {"computing": 30.0, "communication": 12.0, "free": 3.0}
    assert summary["communication_ms_per_step"] == 12.0
    assert summary["memory_timeline"] == {
        "ms": [0, 15, 30, 45],
        "allocated_mb": [812.5, 1390.25, 1650.75, 830],
    }
    assert summary["peak_memory_mb"] == 1650.75
    assert summary["cpu_fallback"] == [{"operator": "aten::isin.Tensor_Tensor_out", "calls": 2, "ms": 4.7}]


def test_an_operator_that_falls_back_to_the_cpu_is_found_in_a_real_trace(tmp_path):
    """at::native::cpu_fallback (which torch_npu's fallback calls) copies the inputs with aten::_to_cpu
    inside the operator's own record; a real trace with that shape is read back."""
    import torch

    with torch.profiler.profile(on_trace_ready=torch.profiler.tensorboard_trace_handler(str(tmp_path))):
        x = torch.ones(4)
        for _ in range(3):
            with torch.profiler.record_function("aten::isin.Tensor_Tensor_out"):
                torch.ops.aten._to_cpu([x])
            torch.mm(x[None], x[:, None])
    (found,) = traces.fallback_operators(traces.chrome_events(tmp_path))
    assert found["operator"] == "aten::isin.Tensor_Tensor_out" and found["calls"] == 3 and found["ms"] > 0


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
