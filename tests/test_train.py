"""A run end to end on the starter: the run directory, stop and resume, failures, bad input."""

from __future__ import annotations

import json

import pytest
from conftest import tiny

import workbench
from workbench import config, runs
from workbench.data import DataError
from workbench.models import ModelError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One short run shared by the read-only checks below."""
    tmp = tmp_path_factory.mktemp("finished")
    return workbench.train(
        tiny(tmp, "train.max_steps=40", "train.logging_steps=5", "train.save_steps=20"), echo=False
    )


def test_run_directory_has_every_file_of_the_contract(finished):
    names = {p.name for p in finished.run_dir.iterdir()}
    assert {
        "resolved.yaml",
        "metrics.jsonl",
        "events.jsonl",
        "checkpoints",
        "adapter",
        "summary.json",
    } <= names
    assert list((finished.run_dir / "adapter").glob("*.safetensors"))
    assert not [p for p in (finished.run_dir / "adapter").iterdir() if p.suffix in (".bin", ".pt", ".pth")]
    checkpoint = runs.latest_checkpoint(finished.run_dir)
    assert (checkpoint / "adapter_model.safetensors").is_file()


def test_resolved_yaml_repeats_the_same_config(finished):
    again = config.load(finished.run_dir / "resolved.yaml")
    assert again.train.max_steps == 40 and again.adapter.type == "lora"
    assert config.dump(again) == (finished.run_dir / "resolved.yaml").read_text()


def test_metrics_stream_has_one_line_per_log_and_the_loss_falls(finished):
    logged = [m for m in runs.read_jsonl(finished.run_dir / "metrics.jsonl") if "loss" in m]
    assert [m["step"] for m in logged] == list(range(5, 41, 5))
    assert logged[-1]["loss"] < logged[0]["loss"]
    assert all(m["tokens_per_second"] > 0 for m in logged)


def test_summary_reports_time_speed_memory_device_versions_and_accuracy(finished):
    s = runs.summary(finished.run_dir)
    assert s["status"] == "finished" and s["steps"] == 40
    assert s["wall_time_s"] > 0 and s["tokens_per_second"] > 0 and s["peak_memory_mb"] > 0
    assert s["device"].startswith("cpu") and s["precision"] == "fp32"
    assert s["versions"]["trl"].startswith("1.12")
    assert 0.0 <= s["accuracy_before"] <= 1.0 and 0.0 <= s["accuracy_after"] <= 1.0
    assert s["trainable_parameters"] < s["total_parameters"]


def test_events_record_start_checkpoints_and_finish(finished):
    kinds = [e["event"] for e in runs.read_jsonl(finished.run_dir / "events.jsonl")]
    assert kinds[0] == "start" and kinds[-1] == "finish"
    assert kinds.count("checkpoint") == 2
    assert runs.status(finished.run_dir) == "finished"


def test_in_process_result_keeps_the_trained_model(finished):
    from workbench.chat import reply

    assert finished.model is not None
    assert isinstance(
        reply(finished.model, finished.tokenizer, [{"role": "user", "content": "Reverse: abc"}]), str
    )


def test_stop_request_checkpoints_then_resume_finishes_the_run(tmp_path):
    cfg = tiny(tmp_path, "train.max_steps=8", "train.save_steps=100", "eval.after=false", "eval.before=false")
    seen = []
    stopped = workbench.train(cfg, on_log=seen.append, should_stop=lambda: len(seen) >= 2, echo=False)
    assert stopped.status == "stopped" and runs.status(stopped.run_dir) == "stopped"
    checkpoint = runs.latest_checkpoint(stopped.run_dir)
    assert checkpoint is not None and int(checkpoint.name.split("-")[1]) < 8
    assert not (stopped.run_dir / "adapter").exists()

    resumed = workbench.train(stopped.run_dir / "resolved.yaml", resume=True, echo=False)
    assert resumed.run_dir == stopped.run_dir
    assert resumed.status == "finished" and resumed.summary["steps"] == 8
    begin = [e for e in runs.read_jsonl(resumed.run_dir / "events.jsonl") if e["event"] == "train_begin"]
    assert begin[-1]["start_step"] == int(checkpoint.name.split("-")[1])


def test_failure_mid_run_marks_the_run_failed_with_the_reason(tmp_path):
    def explode(record):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        workbench.train(tiny(tmp_path, "eval.before=false"), on_log=explode, echo=False)
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert runs.status(run_dir) == "failed"
    assert "disk full" in runs.read_jsonl(run_dir / "events.jsonl")[-1]["reason"]
    assert not (run_dir / "summary.json").exists()


def test_missing_model_path_fails_before_any_run_directory_exists(tmp_path):
    with pytest.raises(ModelError, match="model.name_or_path"):
        workbench.train(tiny(tmp_path, f"model.name_or_path={tmp_path / 'no-such-model'}"), echo=False)
    assert not (tmp_path / "runs").exists()


def test_malformed_dataset_fails_before_any_run_directory_exists(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n{not json\n")
    with pytest.raises(DataError, match=r"bad.jsonl.*line 2"):
        workbench.train(tiny(tmp_path, f"data.train={bad}"), echo=False)
    assert not (tmp_path / "runs").exists()


def test_dataset_whose_columns_do_not_fit_sft_names_the_columns(tmp_path):
    with pytest.raises(DataError, match=r"(?s)sft.*chosen.*rejected"):
        workbench.train(tiny(tmp_path, "data.train=bundled:reverse/pref_train"), echo=False)
    assert not (tmp_path / "runs").exists()


def test_resuming_a_finished_run_says_there_is_nothing_to_resume(finished):
    with pytest.raises(config.ConfigError, match="already finished"):
        workbench.train(finished.run_dir / "resolved.yaml", resume=True, echo=False)


def test_several_processes_are_refused_with_the_key_to_change(tmp_path):
    with pytest.raises(config.ConfigError, match="distributed.num_processes"):
        workbench.train(tiny(tmp_path, "distributed.num_processes=2"), echo=False)
    assert not (tmp_path / "runs").exists()
