"""The run handle (DESIGN 3.7): start, follow, stop, resume and attach through the run directory alone,
and the ways a run directory can go wrong (refused input, a live lock, a full disk, a damaged checkpoint,
a child killed without a word)."""

from __future__ import annotations

import errno
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from conftest import ROOT, tiny

import workbench
from workbench import cli, launch, runs, training
from workbench.errors import ConfigError, RunError

QUIET = ("eval.before=false", "eval.after=false")  # no held-out measure: these tests are about the run


def kinds(run_dir: Path) -> list[str]:
    return [e["event"] for e in runs.read_jsonl(run_dir / "events.jsonl")]


def losses(run_dir: Path) -> list[dict]:
    return [r for r in runs.read_jsonl(run_dir / "metrics.jsonl") if "loss" in r]


def until_first_loss(handle: launch.RunHandle) -> dict:
    """Follow a run until it has logged a training step."""
    for record in handle.follow(poll=0.05):
        if "loss" in record:
            return record
    raise AssertionError(f"the run ended before logging a step: {handle.status}, {handle.error}")


@pytest.fixture
def sleeper():
    """A live process that is not a training run (a lock holder), killed at the end."""
    process = subprocess.Popen(["sleep", "30"])
    yield process.pid
    process.kill()
    process.wait()


# -- start, follow, wait, attach ---------------------------------------------------------------------


@pytest.fixture(scope="module", params=launch.MODES)
def started(request, tmp_path_factory):
    """A short run started in each mode and followed to its end: (handle, made_at_once, records)."""
    cfg = tiny(tmp_path_factory.mktemp(request.param), *QUIET)
    handle = launch.start(cfg, request.param)
    made_at_once = handle.run_dir.is_dir()
    records = list(handle.follow(poll=0.1))
    return handle, made_at_once, records


@pytest.mark.slow
def test_start_makes_the_run_directory_before_it_returns(started):
    handle, made_at_once, _ = started
    assert made_at_once and (handle.run_dir / "resolved.yaml").is_file()


@pytest.mark.slow
def test_follow_yields_the_metrics_and_the_events_then_ends(started):
    _, _, records = started
    assert [r["step"] for r in records if "loss" in r] == [2, 4, 6]
    events = [r["event"] for r in records if "event" in r]
    assert events[0] == "launch" and "start" in events and events[-1] == "finish"


@pytest.mark.slow
def test_wait_returns_finished(started):
    handle, _, _ = started
    assert handle.wait(60) == "finished" and handle.error is None and not handle.alive


@pytest.mark.slow
def test_a_thread_run_keeps_the_trained_model(started):
    handle, _, _ = started
    if handle.process is not None:
        pytest.skip("a child's model stays in the child")
    assert handle.result.status == "finished" and handle.result.model is not None
    assert handle.result.run_dir == handle.run_dir


@pytest.mark.slow
def test_console_log_keeps_the_runs_lines(started):
    handle, _, _ = started
    text = (handle.run_dir / "console.log").read_text()
    assert f"run directory: {handle.run_dir}" in text and f"finished: {handle.run_dir}" in text
    assert f"finished: {handle.run_dir}" in handle.console(3)  # the tail a panel shows


@pytest.mark.slow
def test_attach_to_a_finished_run_follows_its_records_and_ends(started):
    handle, _, _ = started
    attached = launch.attach(handle.run_dir)
    assert attached.status == "finished" and not attached.alive
    records = list(attached.follow(poll=0.05))
    assert records == runs.read_jsonl(handle.run_dir / "metrics.jsonl") + runs.read_jsonl(
        handle.run_dir / "events.jsonl"
    )
    assert [r["step"] for r in records if "loss" in r] == [2, 4, 6] and records[-1]["event"] == "finish"


@pytest.mark.parametrize("mode", launch.MODES)
def test_a_refused_new_run_fails_and_leaves_no_folder(tmp_path, mode):
    cfg = tiny(tmp_path, "data.train=nope.jsonl", *QUIET)
    handle = launch.start(cfg, mode)
    assert handle.wait(120) == "failed"
    assert "nope.jsonl" in handle.error and "data.train" in handle.error
    assert list(Path(cfg.output.root).iterdir()) == []


# -- stop through the run directory, then resume -------------------------------------------------------

STEPS = 20


@pytest.fixture(scope="module")
def stopped(tmp_path_factory):
    """A subprocess run stopped by `workbench stop RUN` after its first logged step."""
    cfg = tiny(
        tmp_path_factory.mktemp("stopped"),
        f"train.max_steps={STEPS}",
        "train.logging_steps=1",
        "train.save_steps=1000",
        *QUIET,
    )
    handle = launch.start(cfg, "subprocess")
    until_first_loss(handle)
    assert cli.main(["stop", str(handle.run_dir)]) == 0
    handle.wait(300)
    return handle


def copy_run(run_dir: Path, tmp_path: Path) -> Path:
    """A private copy of a run (tests that resume it change it)."""
    return Path(shutil.copytree(run_dir, tmp_path / "runs" / run_dir.name))


@pytest.mark.slow
def test_workbench_stop_run_stops_a_subprocess_run_with_a_checkpoint(stopped):
    assert stopped.status == "stopped", stopped.error
    checkpoint = runs.latest_checkpoint(stopped.run_dir)
    assert checkpoint is not None and int(checkpoint.name.split("-")[1]) < STEPS
    assert (stopped.run_dir / runs.STOP).is_file() and runs.holder(stopped.run_dir) is None


@pytest.fixture(scope="module", params=launch.MODES)
def resumed(request, stopped, tmp_path_factory):
    """A copy of the stopped run, with a step logged after its checkpoint (as a run killed mid-way has),
    resumed by launch.start in each mode: (run_dir, stopped summary, handle)."""
    run_dir = copy_run(stopped.run_dir, tmp_path_factory.mktemp(f"resumed-{request.param}"))
    before = runs.summary(run_dir)
    step = int(runs.latest_checkpoint(run_dir).name.split("-")[1])
    runs.Run(run_dir).metric({"step": step + 1, "loss": 99.0})  # replayed after the resume: dropped
    recipe = run_dir / "resolved.yaml"
    handle = launch.start(workbench.load_config(recipe), request.param, resume=True, recipe=recipe)
    handle.wait(300)
    return run_dir, before, handle


@pytest.mark.slow
def test_resume_continues_the_same_folder_to_max_steps(resumed):
    run_dir, _, handle = resumed
    assert handle.run_dir == run_dir and not handle.fresh
    assert handle.status == "finished", handle.error
    assert runs.summary(run_dir)["steps"] == STEPS and [p.name for p in run_dir.parent.iterdir()] == [
        run_dir.name
    ]


@pytest.mark.slow
def test_resume_logs_each_step_once_and_drops_the_replayed_ones(resumed):
    run_dir, _, _ = resumed
    logged = losses(run_dir)
    assert [r["step"] for r in logged] == list(range(1, STEPS + 1))
    assert 99.0 not in [r["loss"] for r in logged]


@pytest.mark.slow
def test_resumed_summary_times_the_whole_run(resumed):
    run_dir, before, _ = resumed
    segment = [r["train_runtime"] for r in runs.read_jsonl(run_dir / "metrics.jsonl") if "train_runtime" in r]
    wall = runs.summary(run_dir)["wall_time_s"]
    assert before["status"] == "stopped" and wall > before["wall_time_s"]
    assert wall >= before["wall_time_s"] + segment[-1] - 0.02  # this segment's own time, and the first's


@pytest.mark.slow
def test_resumed_train_loss_is_the_mean_of_every_logged_loss(resumed):
    run_dir, _, _ = resumed
    logged = [r["loss"] for r in losses(run_dir)]
    assert runs.summary(run_dir)["train_loss"] == pytest.approx(sum(logged) / len(logged))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["optimizer.pt", "adapter_model.safetensors"])
def test_resuming_from_a_damaged_checkpoint_names_the_file(stopped, tmp_path, name):
    run_dir = copy_run(stopped.run_dir, tmp_path)
    checkpoint = runs.latest_checkpoint(run_dir)
    damaged = checkpoint / name
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    with pytest.raises(RunError) as caught:
        workbench.train(run_dir / "resolved.yaml", resume=True, echo=False)
    message = str(caught.value)
    assert name in message and str(checkpoint) in message and "Unpickling" not in message
    assert runs.status(run_dir) == "failed" and name in runs.failure(run_dir)


# -- the lock: one process per run directory ----------------------------------------------------------


def test_a_live_lock_refuses_a_second_process_and_names_the_holder(tmp_path, sleeper):
    run = runs.create(tiny(tmp_path))
    runs.lock(run, sleeper)
    with pytest.raises(RunError) as caught:
        runs.lock(run)
    assert f"pid {sleeper}" in str(caught.value) and f"workbench stop {run.path}" in str(caught.value)
    assert runs.holder(run.path)["pid"] == sleeper


def test_a_lock_left_by_a_dead_process_is_stale_and_can_be_taken_over(tmp_path):
    run = runs.create(tiny(tmp_path))
    run.event("start")
    gone = subprocess.Popen(["true"])
    gone.wait()
    runs.lock(run, gone.pid)
    assert runs.holder(run.path) is None and runs.status(run.path) == "dead"
    runs.lock(run)
    assert runs.holder(run.path)["pid"] != gone.pid


def test_resume_refuses_to_attach_to_a_run_another_process_trains(tmp_path, sleeper):
    cfg = tiny(tmp_path, *QUIET)
    run = runs.create(cfg)
    run.event("start")
    runs.lock(run, sleeper)
    with pytest.raises(RunError, match="cannot resume") as caught:
        workbench.train(run.path / "resolved.yaml", resume=True, echo=False)
    assert str(run.path) in str(caught.value) and f"pid {sleeper}" in str(caught.value)
    assert list(Path(cfg.output.root).iterdir()) == [run.path]
    assert runs.holder(run.path)["pid"] == sleeper  # the live run's lock is left alone


def test_simultaneous_creates_make_distinct_folders(tmp_path):
    cfg = tiny(tmp_path)
    barrier, made, failed = threading.Barrier(30), [], []

    def create():
        barrier.wait()
        try:
            made.append(runs.create(cfg).path)
        except Exception as error:  # noqa: BLE001  (counted below)
            failed.append(error)

    threads = [threading.Thread(target=create) for _ in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failed == [] and len(set(made)) == 30
    assert all((path / "resolved.yaml").is_file() for path in made)


# -- an output folder that cannot be written ---------------------------------------------------------


@pytest.fixture
def blocked_root(tmp_path) -> Path:
    """output.root under a regular file: no one, not even root, can make a folder there."""
    (tmp_path / "blocker").write_text("a file, not a folder\n")
    return tmp_path / "blocker" / "runs"


@pytest.mark.parametrize("mode", launch.MODES)
def test_start_under_an_unwritable_output_root_says_so_before_anything_runs(
    tmp_path, blocked_root, mode, monkeypatch
):
    cfg = tiny(tmp_path, f"output.root={blocked_root}", *QUIET)
    began = []
    monkeypatch.setattr(training, "train", lambda *a, **k: began.append("thread"))
    monkeypatch.setattr(launch, "_spawn", lambda *a, **k: began.append("subprocess"))
    with pytest.raises(RunError) as caught:
        launch.start(cfg, mode)
    assert "output.root" in str(caught.value) and str(blocked_root) in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert began == [] and not blocked_root.exists()


def test_train_under_an_unwritable_output_root_is_one_line_from_the_cli(
    tmp_path, blocked_root, capsys, monkeypatch
):
    trained = []
    monkeypatch.setattr(training, "_run", lambda *a, **k: trained.append(a))
    recipe = str(ROOT / "recipes" / "quickstart.yaml")
    assert cli.main(["train", recipe, f"output.root={blocked_root}", "train.max_steps=2", *QUIET]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot make a run directory under output.root") and str(blocked_root) in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert trained == [] and not blocked_root.exists()


# -- a full disk, a child killed without a word ------------------------------------------------------


@pytest.mark.slow
def test_a_full_disk_during_a_checkpoint_is_one_clear_error(tmp_path, monkeypatch):
    from transformers import Trainer

    save = Trainer._save_checkpoint

    def full_disk(self, model, trial):
        if self.state.global_step < 6:
            return save(self, model, trial)
        partial = Path(self.args.output_dir) / f"checkpoint-{self.state.global_step}"
        partial.mkdir(parents=True)
        (partial / "adapter_model.safetensors").write_bytes(b"\0" * 1000)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Trainer, "_save_checkpoint", full_disk)
    with pytest.raises(RunError) as caught:
        workbench.train(tiny(tmp_path, *QUIET), echo=False)
    (run_dir,) = (tmp_path / "runs").iterdir()
    message = str(caught.value)
    assert "no space left" in message.lower() and str(run_dir) in message
    assert "checkpoint of this run needs about" in message and " MB" in message
    assert not (run_dir / "checkpoints" / "checkpoint-6").exists()
    assert (run_dir / "checkpoints" / "checkpoint-3").is_dir()  # the complete one before it stays
    assert runs.status(run_dir) == "failed" and "no space left" in runs.failure(run_dir).lower()


@pytest.mark.slow
def test_a_child_killed_without_a_word_fails_with_the_reason(tmp_path):
    cfg = tiny(tmp_path, "train.max_steps=300", "train.logging_steps=1", "train.save_steps=1000", *QUIET)
    handle = launch.start(cfg, "subprocess")
    until_first_loss(handle)
    handle.process.kill()
    assert handle.wait(60) == "failed"
    assert "ended without finishing" in handle.error
    assert runs.status(handle.run_dir) == "failed" and runs.holder(handle.run_dir) is None


@pytest.mark.slow
@pytest.mark.parametrize("mode", launch.MODES)
def test_a_stop_pressed_while_a_resumed_run_starts_is_kept(stopped, tmp_path, mode):
    run_dir = copy_run(stopped.run_dir, tmp_path)
    recipe = run_dir / "resolved.yaml"
    handle = launch.start(workbench.load_config(recipe), mode, resume=True, recipe=recipe)
    handle.stop()  # before the model has even loaded
    assert handle.wait(300) == "stopped", handle.error
    assert runs.summary(run_dir)["steps"] < STEPS and runs.holder(run_dir) is None


def test_resuming_a_method_whose_loop_cannot_resume_is_refused_before_anything_changes(tmp_path):
    cfg = tiny(tmp_path, "method.name=ppo", *QUIET)
    with pytest.raises(ConfigError, match="PPO loop cannot continue"):
        launch.start(cfg, "thread", resume=True)
    assert not (tmp_path / "runs").exists()
