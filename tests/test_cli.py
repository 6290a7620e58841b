"""The workbench command as a user types it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from workbench import runs
from workbench.cli import main

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = str(ROOT / "recipes" / "quickstart.yaml")


def workbench_cmd(*args: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "workbench", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        **kw,
    )


def test_show_prints_the_resolved_config_with_overrides(capsys):
    assert main(["show", QUICKSTART, "train.max_steps=7"]) == 0
    out = capsys.readouterr().out
    assert "max_steps: 7" in out and "name_or_path: starter" in out


def test_unknown_recipe_key_is_one_clear_line_and_exit_2(capsys):
    assert main(["show", QUICKSTART, "adapter.rank=8"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown key 'adapter.rank'") and "Traceback" not in err


def test_doctor_reports_versions_device_and_precision(capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    for word in ("torch", "transformers", "trl", "peft", "device", "precision", "fp32"):
        assert word in out


def test_download_without_network_fails_fast_with_a_fix():
    started = time.monotonic()
    done = workbench_cmd("download", "qwen2.5-0.5b-instruct", env={"HF_HUB_OFFLINE": "1"}, timeout=60)
    assert done.returncode == 2
    assert "error:" in done.stderr and "Traceback" not in done.stderr
    assert time.monotonic() - started < 30


@pytest.mark.slow
def test_train_prints_progress_accuracy_and_run_dir_then_chat_answers(tmp_path):
    done = workbench_cmd(
        "train", QUICKSTART, f"output.root={tmp_path}", "train.max_steps=10", "train.logging_steps=5",
        "eval.max_samples=8", timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "step  5/10  loss" in done.stdout
    assert "held-out exact match:" in done.stdout
    run_dir = Path(done.stdout.strip().splitlines()[-1].removeprefix("run directory: "))
    assert runs.status(run_dir) == "finished"

    chat = workbench_cmd("chat", str(run_dir), "--message", "Reverse: abc", timeout=300)
    assert chat.returncode == 0, chat.stderr[-2000:]
    assert chat.stdout.startswith("assistant:")


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_with_a_checkpoint(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench", "train", QUICKSTART, f"output.root={tmp_path}",
         "train.max_steps=2000", "train.logging_steps=1", "train.save_steps=5000", "eval.before=false"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while not list(tmp_path.glob("*/metrics.jsonl")) and time.monotonic() < deadline:
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-2000:]
    (run_dir,) = tmp_path.iterdir()
    assert runs.status(run_dir) == "stopped"
    assert runs.latest_checkpoint(run_dir) is not None
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "stopped"


def test_chat_on_a_folder_that_is_not_a_run_says_so(tmp_path):
    done = workbench_cmd("chat", str(tmp_path), timeout=120)
    assert done.returncode == 2 and "not a run directory" in done.stderr


def test_overrides_alone_start_from_the_defaults_the_panels_show(capsys):
    from workbench import cli

    assert cli.main(["show", "train.max_steps=7", "adapter.r=4"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["train"]["max_steps"] == 7 and shown["adapter"]["r"] == 4
    assert shown["model"]["name_or_path"] == "starter"  # the rest is RunConfig's defaults


@pytest.mark.slow
def test_a_detached_run_returns_at_once_and_is_stopped_by_workbench_stop(tmp_path):
    from workbench import launch

    done = workbench_cmd("train", QUICKSTART, f"output.root={tmp_path}", "train.max_steps=2000",
                         "train.save_steps=5000", "eval.before=false", "--detach", timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    run_dir = Path(done.stdout.splitlines()[0].removeprefix("run directory: "))
    assert f"workbench stop {run_dir}" in done.stdout and (run_dir / "resolved.yaml").is_file()
    handle = launch.attach(run_dir)
    deadline = time.monotonic() + 300
    while handle.status != "running" or not (run_dir / "metrics.jsonl").is_file():
        assert time.monotonic() < deadline and handle.status in ("starting", "running"), handle.status
        time.sleep(0.5)
    assert workbench_cmd("stop", str(run_dir), timeout=60).returncode == 0
    assert handle.wait(300) == "stopped" and runs.latest_checkpoint(run_dir) is not None
