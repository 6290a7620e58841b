"""The Jupyter panels, headless: set values, click buttons, check the config, the run and what is shown."""

from __future__ import annotations

import datetime
import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import ROOT, tiny

from widgets import AdapterPanel, DatasetPanel, LossPlot, ModelPanel, RunPanel, Workbench
from widgets.plots import Throttle
from workbench import config as config_mod
from workbench import launch, runs

FAKES = ROOT / "tests" / "fake_torch_npu"


class FakeRun:
    """Stands in for a run handle: records what it was given; the test feeds what its run directory says."""

    made: list[FakeRun] = []

    def __init__(self, cfg, mode, resume=False, recipe=None):
        self.cfg, self.mode, self.resume, self.recipe = cfg, mode, resume, recipe
        self.run_dir, self.stopped, self.error, self.final = Path("runs/fake"), False, None, None
        self.records: queue.Queue = queue.Queue()
        FakeRun.made.append(self)

    def follow(self):
        while (record := self.records.get()) is not None:
            yield record
            self.records.task_done()
        self.records.task_done()

    def log(self, record):
        """Hand the panel one record and wait until it has shown it."""
        self.records.put(record)
        self.records.join()

    def end(self, status, error=None, app=None):
        self.final, self.error = status, error
        self.records.put(None)
        self.records.join()
        if app is not None:
            app.run.wait(10)

    def wait(self, timeout=None):
        return self.final

    def stop(self):
        self.stopped = True

    def console(self, lines=20):
        return []


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # saved recipes and uploads land here
    FakeRun.made = []
    return Workbench(root=str(tmp_path / "runs"), runner=FakeRun, detect_device=False)


def test_panels_make_the_config_through_the_strict_override(app):
    app.model.name.value = "starter"
    app.adapter.type.value = "dora"
    app.adapter.fields["adapter.r"].value = 4
    app.method.name.value = "dpo"
    app.dataset.source.value = "bundled:reverse/pref_train"
    app.method.fields["method.beta"].value = "0.2"
    app.method.fields["train.learning_rate"].value = "5e-4"
    cfg = app.config()
    assert (cfg.adapter.type, cfg.adapter.r, cfg.method.name, cfg.method.beta) == ("dora", 4, "dpo", 0.2)
    assert cfg.train.learning_rate == 5e-4 and cfg.data.eval == "bundled:reverse/pref_eval"
    assert not app.run.train_button.disabled and app.problems.value == ""


def test_train_starts_the_runner_with_the_panels_config_and_shows_progress(app):
    app.method.fields["train.max_steps"].value = 40
    app.run.mode.value = "kernel"
    app.run.train_button.click()
    (run,) = FakeRun.made
    assert run.cfg == app.config() and run.resume is False and run.mode == "thread"
    assert app.run.train_button.disabled and not app.run.stop_button.disabled
    for step in (10, 20):
        run.log(
            {
                "step": step,
                "max_steps": 40,
                "loss": 2.0 / step,
                "elapsed_s": step * 0.1,
                "tokens_per_second": 1234.0,
                "memory_peak_mb": 321.0,
            }
        )
    assert (app.run.progress.value, app.run.progress.max) == (20, 40)
    assert "step 20/40" in app.run.status.value and "ETA 0m02s" in app.run.status.value
    assert "1,234 tok/s" in app.run.status.value
    assert app.run.plot.image.value[:4] == b"\x89PNG"


def test_stop_asks_the_run_to_stop_and_the_panel_shows_stopped(app):
    app.run.train()
    (run,) = FakeRun.made
    app.run.stop_button.click()
    assert run.stopped and "stopping" in app.run.status.value
    run.end("stopped", app=app)
    assert "stopped" in app.run.status.value and not app.run.train_button.disabled


def test_a_failed_run_shows_its_message(app):
    app.run.train()
    FakeRun.made[0].end("failed", "data.train: file not found: nope.jsonl", app=app)
    assert "failed" in app.run.status.value and "file not found: nope.jsonl" in app.run.status.value
    assert app.run.progress.bar_style == "danger"


def test_a_second_click_while_starting_starts_nothing(app):
    app.run.train_button.click()
    app.run.train_button.click()
    assert len(FakeRun.made) == 1


def test_stop_pressed_at_once_reaches_the_run(app):
    app.run.train()
    (run,) = FakeRun.made
    app.run.stop()
    assert run.stopped and app.run.state == "stopping" and app.run.stop_button.disabled
    run.end("stopped", app=app)
    assert app.run.state == "stopped"


def test_a_runner_that_cannot_start_shows_why_and_frees_train(app):
    def broken(*args, **kwargs):
        raise OSError("no space left on device")

    app.run.runner = broken
    app.run.train()
    assert "no space left on device" in app.run.status.value and not app.run.train_button.disabled


def test_a_new_run_that_fails_does_not_offer_to_resume_the_previous_one(app, tmp_path):
    app.run.runner = lambda *a, **k: FakeRun(*a, **k)
    stopped = tmp_path / "runs" / "x"
    (stopped / "checkpoints" / "checkpoint-3").mkdir(parents=True)
    (stopped / "checkpoints" / "checkpoint-3" / "trainer_state.json").write_text("{}")
    app.run.train()
    FakeRun.made[0].run_dir = stopped  # the panel reads the folder when the run ends
    app.run.run_dir = stopped
    FakeRun.made[0].end("stopped", app=app)
    assert not app.run.resume_button.disabled
    app.run.train()  # refused by its checks: its folder (runs/fake) is gone
    FakeRun.made[1].end("failed", "data.train: file not found", app=app)
    assert (
        app.run.run_dir is None
        and app.run.resume_button.disabled
        and str(stopped) not in app.run.status.value
    )


def test_switching_method_drops_the_hidden_fields_errors(app):
    app.method.name.value = "ppo"
    assert "PPO needs a reward model" in " ".join(app.run.problems)
    app.method.fields["method.beta"].value = "high"
    app.method.name.value = "sft"
    assert app.run.problems == [] and not app.run.train_button.disabled


def test_auto_mode_finds_an_npu_first_and_runs_in_a_subprocess(app, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(FAKES), str(ROOT)]))  # the fake Ascend NPU
    app.run.train()
    assert app.device.detected["type"] == "npu" and "subprocess run (NPU" in app.run.status.value


def test_a_missing_model_path_disables_train_and_says_so_next_to_the_field(app):
    app.model.path.value = "./no/such/model"
    assert "model path not found" in app.model.path.note.value
    assert app.run.train_button.disabled and "Model / Or a path" in app.problems.value
    app.run.train()
    assert FakeRun.made == []  # nothing starts while a problem is shown
    app.model.path.value = ""
    assert not app.run.train_button.disabled


def test_a_dataset_that_fails_validation_is_reported_before_training(app, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"instruction": "hi", "output": ""}) + "\n")
    app.dataset.source.value = "custom"
    app.dataset.path.value = str(bad)
    assert "line 1" in app.dataset.path.note.value and "output" in app.dataset.path.note.value
    assert app.run.train_button.disabled


def test_unknown_columns_get_a_mapping_that_fixes_them(app, tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps({"question": f"q{i}", "reply": f"a{i}"}) + "\n" for i in range(3)))
    app.dataset.source.value = "custom"
    app.dataset.path.value = str(path)
    assert app.run.train_button.disabled and "cannot tell the format" in app.dataset.path.note.value
    boxes = {box.description: box for box in app.dataset.mapping.children[1:]}
    boxes["instruction"].value, boxes["output"].value = "question", "reply"
    assert "alpaca format, 3 rows" in app.dataset.path.note.value
    assert app.config().data.columns == {"question": "instruction", "reply": "output"}


def test_an_upload_is_saved_without_replacing_a_file_and_selected(app, tmp_path):
    (tmp_path / "uploads").mkdir()
    (tmp_path / "uploads" / "mine.jsonl").write_text("keep me\n")
    row = json.dumps({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]})
    content = row.encode() + b"\n"
    app.dataset.upload.value = (
        {
            "name": "mine.jsonl",
            "type": "",
            "size": len(content),
            "last_modified": datetime.datetime.now(datetime.timezone.utc),
            "content": memoryview(content),
        },
    )
    assert (tmp_path / "uploads" / "mine.jsonl").read_text() == "keep me\n"
    assert app.config().data.train == "uploads/mine-2.jsonl"
    assert "messages format, 1 rows" in app.dataset.path.note.value


def test_qlora_is_taken_off_on_an_npu_with_the_reason():
    panel = AdapterPanel()
    panel.set_device("npu")
    assert "qlora" not in panel.type.control.options and "no Ascend NPU kernels" in panel.unavailable.value
    panel.set_device("cpu")
    panel.type.value = "qlora"
    panel.set_device("npu")
    assert "qlora" in panel.type.control.options and panel.problems()  # kept while chosen, with its error


def test_the_method_panel_checks_the_data_format_and_method_settings(app):
    app.method.name.value = "dpo"
    assert "needs preference data" in app.dataset.source.note.value
    assert "try bundled:reverse/pref_train" in app.dataset.source.note.value
    app.method.name.value = "grpo"
    app.dataset.source.value = "bundled:reverse/prompts_train"
    app.method.fields["method.rewards"].value = ""  # switching offered the starter's rewards
    assert "GRPO needs at least one reward" in app.problems.value
    app.method.fields["method.rewards"].value = "exact_match: 1, nope: 2"
    assert "nope" in app.method.fields["method.rewards"].note.value
    app.method.fields["method.rewards"].value = "exact_match: 1, similarity: 0.5"
    assert app.config().method.rewards == {"exact_match": 1.0, "similarity": 0.5}
    app.method.fields["train.learning_rate"].value = "fast"
    assert "'fast' is not a number" in " ".join(app.run.problems) and app.run.train_button.disabled


def test_a_recipe_round_trips_through_the_panels(app, tmp_path):
    app.load(ROOT / "recipes" / "dpo_lora_starter.yaml")
    loaded = config_mod.load(ROOT / "recipes" / "dpo_lora_starter.yaml")
    assert app.config() == config_mod.override(loaded, {"output.root": str(tmp_path / "runs")})
    app.adapter.fields["adapter.r"].value = 2
    saved = app.save(tmp_path / "mine.yaml")
    assert config_mod.load(saved).adapter.r == 2
    assert (
        app.save(tmp_path / "mine.yaml") is None and "exists" in app.recipe_note.value
    )  # no silent overwrite
    again = Workbench(recipe=saved, root=str(tmp_path / "runs"), detect_device=False)
    assert again.config() == app.config()


def test_every_shipped_recipe_round_trips_loaded_one_after_another(app, tmp_path):
    for recipe in sorted((ROOT / "recipes").glob("*.yaml")):
        app.load(recipe)
        expected = config_mod.override(config_mod.load(recipe), {"output.root": str(tmp_path / "runs")})
        assert app.config() == expected, recipe.name


def test_unusual_values_round_trip(app, tmp_path):
    (tmp_path / "mine.py").write_text("def score(completions, **kw):\n    return [0.0] * len(completions)\n")
    cfg = config_mod.override(
        config_mod.RunConfig(),
        {"adapter.target_modules": ["q_proj", "v_proj"], "adapter.r": 2048, "method.name": "grpo",
         "method.rewards": {"exact_match": 1.0, "mine.py:score": 0.25}, "method.allow_reward_code": True,
         "data.train": "bundled:reverse/prompts_train", "data.columns": {"prompt": "prompt"},
         "data.max_samples": 7, "train.learning_rate": 1.2345678e-5, "model.from_run": None,
         "output.root": str(tmp_path / "runs")},
    )  # fmt: skip
    recipe = tmp_path / "unusual.yaml"
    config_mod.save(cfg, recipe)
    app.load(recipe)
    assert app.config() == cfg and not app.run.problems


def test_a_recipe_with_errors_is_shown_and_changes_nothing(app, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  learnin_rate: 1\n")
    before = app.config()
    app.load(bad)
    assert "learnin_rate" in app.recipe_note.value and app.config() == before


def test_auto_mode_runs_npu_and_long_runs_in_a_subprocess(tiny_cfg):
    assert launch.choose_mode(tiny_cfg, "cpu")[0] == "thread"
    assert launch.choose_mode(tiny_cfg, "npu")[0] == "subprocess"
    assert (
        launch.choose_mode(config_mod.override(tiny_cfg, {"train.max_steps": -1}), "cpu")[0] == "subprocess"
    )


def test_device_detection_runs_in_a_child_and_feeds_the_other_panels(app, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(FAKES), str(ROOT)]))  # the fake Ascend NPU
    app.device.detect(wait=True)
    assert app.device.detected["type"] == "npu" and "Ascend" in app.device.found.value
    assert "qlora" not in app.adapter.type.control.options
    assert "npu has" in app.model.info.value  # the memory estimate now knows the device
    # The app opens without torch in the kernel: detection ran in a child process.
    out = subprocess.run(
        [sys.executable, "-c", "import widgets, sys; w = widgets.Workbench(); print('torch' in sys.modules)"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert out.stdout.strip() == "False", out.stderr[-2000:]


def test_the_throttle_keeps_drawing_under_its_budget():
    throttle = Throttle(budget=0.02, min_interval=0.5)
    assert throttle.due(0.0)  # the first draw at once
    throttle.record(0.0, 0.1)  # 100 ms spent: another 100 ms is affordable once 10 s have passed
    assert not throttle.due(4.0) and not throttle.due(9.9) and throttle.due(10.1)
    throttle.record(10.1, 10.2)
    assert not throttle.due(14.0) and throttle.due(15.1)  # 0.3 s of drawing in 15 s: 2%


def test_loss_plot_reads_a_run_and_draws_the_methods_own_curves(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    records = [
        {"step": s, "loss": 1 / s, "learning_rate": 1e-3, "reward_mean": s / 10, "kl": 0.01 * s}
        for s in range(1, 6)
    ]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    plot = LossPlot(run)
    assert plot.image.value[:4] == b"\x89PNG"
    assert set(plot.points) == {"loss", "learning_rate", "reward_mean", "kl"}


def test_model_and_dataset_panels_work_alone(tmp_path):
    model = ModelPanel()
    model.name.value = "qwen2.5-7b-instruct"
    assert "workbench download qwen2.5-7b-instruct" in model.info.value and "7.6 B" in model.info.value
    assert not model.download_button.disabled
    data = DatasetPanel()
    assert "messages format, 4,000 rows" in data.source.note.value and "<table>" in data.table.value


# --- real runs ---------------------------------------------------------------------------------------------


def test_a_run_from_the_panel_in_the_kernel_finishes_and_can_be_repeated_from_the_cli(tmp_path):
    cfg = tiny(tmp_path)
    panel = RunPanel(cfg)
    panel.mode.value = "kernel"
    panel.train()
    assert panel.wait(600) == "finished", panel.status.value
    assert panel.handle.result.model is not None  # the model stays in the kernel
    resolved = panel.run_dir / "resolved.yaml"
    assert config_mod.load(resolved) == cfg
    assert "held-out effect" in panel.summary.value and "exact match" in panel.summary.value
    assert f"{panel.handle.result.summary['mfu']:.1%}" in panel.summary.value  # MFU beside tokens/s
    assert panel.progress.value == 6
    done = subprocess.run(
        [sys.executable, "-m", "workbench", "train", str(resolved)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    again = Path(done.stdout.strip().splitlines()[-1].removeprefix("run directory: "))
    assert again != panel.run_dir and config_mod.load(again / "resolved.yaml") == cfg


def logging_run(cfg, mode: str) -> RunPanel:
    """A panel whose run (in `mode`) has logged its first step."""
    panel = RunPanel(cfg)
    panel.mode.value = mode
    first_log = threading.Event()
    panel.plot.add = lambda record, add=panel.plot.add: (add(record), first_log.set())
    panel.train()
    assert first_log.wait(300), panel.status.value
    return panel


def test_stop_in_the_kernel_saves_a_checkpoint_and_resume_finishes(tmp_path):
    cfg = tiny(tmp_path, "train.max_steps=30", "train.save_steps=1000", "train.logging_steps=1")
    panel = logging_run(cfg, "kernel")
    panel.stop_button.click()
    assert panel.wait(300) == "stopped", panel.status.value
    assert runs.latest_checkpoint(panel.run_dir) is not None and not panel.resume_button.disabled
    assert runs.status(panel.run_dir) == "stopped" and panel.progress.value < 30
    stopped_dir = panel.run_dir
    panel.resume_button.click()
    assert panel.wait(300) == "finished", panel.status.value
    assert panel.run_dir == stopped_dir and runs.summary(stopped_dir)["steps"] == 30
    steps = [step for step, _ in panel.plot.points["loss"]]  # the whole curve, each step once
    assert steps == list(range(1, 31))


def test_a_subprocess_run_is_followed_and_stopped_through_its_run_directory(tmp_path):
    cfg = tiny(tmp_path, "train.max_steps=400", "train.save_steps=1000", "train.logging_steps=1")
    panel = logging_run(cfg, "subprocess")
    panel.stop()
    assert panel.wait(300) == "stopped", panel.status.value
    assert runs.status(panel.run_dir) == "stopped" and runs.latest_checkpoint(panel.run_dir) is not None
    assert panel.progress.value >= 1 and (panel.run_dir / "stop").is_file()
    # The child's own output is kept with the run, and the panel shows its tail.
    assert "stopped:" in (panel.run_dir / "console.log").read_text() and "stopped:" in panel.console_log.value


@pytest.mark.parametrize("mode", ["kernel", "subprocess"])
def test_a_run_that_fails_shows_the_error_in_the_panel(tmp_path, mode):
    cfg = tiny(tmp_path, "data.train=nope.jsonl")
    panel = RunPanel(cfg)
    panel.mode.value = mode
    panel.train()
    assert panel.wait(300) == "failed"
    assert "file not found: nope.jsonl" in panel.status.value and "Traceback" not in panel.status.value
    assert list(Path(cfg.output.root).iterdir()) == []  # refused by its checks: no half-made run is left


def test_redrawing_a_long_run_does_not_grow_memory():
    import gc
    import tracemalloc

    plot = LossPlot()
    for step in range(1, 51):
        plot._keep({"step": step, "loss": 1 / step, "learning_rate": 1e-3})
    tracemalloc.start()
    for _ in range(5):  # the first draws load fonts and fill matplotlib's caches
        plot.draw()
    gc.collect()
    warm = tracemalloc.take_snapshot()
    for _ in range(10):
        plot.draw()
    gc.collect()
    # Only what drawing allocates counts: other tests' threads may still be tidying up in this process.
    drawing = [tracemalloc.Filter(True, "*matplotlib*"), tracemalloc.Filter(True, "*widgets*")]
    grown = (
        tracemalloc.take_snapshot().filter_traces(drawing).compare_to(warm.filter_traces(drawing), "filename")
    )
    tracemalloc.stop()
    assert sum(stat.size_diff for stat in grown) < 100_000  # bytes over 10 draws: one Figure is reused


def test_loss_plot_follows_a_run_until_it_ends(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "events.jsonl").write_text(json.dumps({"event": "start"}) + "\n")
    (run / "metrics.jsonl").write_text(json.dumps({"step": 1, "loss": 2.0}) + "\n")
    runs.lock(runs.Run(run))  # this process "trains" it: followed while the lock names a live process
    plot = LossPlot(run, follow=True)
    wait_for(lambda: len(plot.points.get("loss", [])) == 1)
    with (run / "metrics.jsonl").open("a") as metrics:
        metrics.write(json.dumps({"step": 2, "loss": 1.0}) + "\n")
    wait_for(lambda: len(plot.points["loss"]) == 2)  # read as it was written, while the run goes on
    with (run / "events.jsonl").open("a") as events:
        events.write(json.dumps({"event": "finish", "reason": "finished"}) + "\n")
    runs.unlock(runs.Run(run))
    wait_for(lambda: not plot.following.is_alive())
    assert plot.points["loss"] == [(1, 2.0), (2, 1.0)] and plot.image.value[:4] == b"\x89PNG"


def wait_for(condition, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_profile_view_shows_the_split_the_diagnosis_and_the_operators(tmp_path):
    from widgets import ProfileView

    run = tmp_path / "run"
    (run / "profile").mkdir(parents=True)
    timing = {"data_wait_s": 0.1, "compute_s": 0.14, "optimizer_s": 0.01, "other_s": 0.0, "step_s": 0.25}
    (run / "metrics.jsonl").write_text("".join(json.dumps({"step": s, **timing}) + "\n" for s in (10, 20)))
    finding = {"what": "data loader", "share": 0.4, "detail": "the data loader takes 40% of each step"}
    split = {"data_wait": 0.1, "compute": 0.14, "optimizer": 0.01, "other": 0.0, "step": 0.25}
    (run / "summary.json").write_text(json.dumps({"step_split_s": split, "diagnosis": [finding]}))
    speed = {"samples_per_second": 128.0, "mfu": 0.213, "model_tflops": 0.02, "peak_tflops": 0.094,
             "peak_source": "measured matmul peak"}  # fmt: skip
    (run / "summary.json").write_text(json.dumps({"step_split_s": split, "diagnosis": [finding], **speed}))
    operator = {"operator": "aten::mm", "calls": 7, "host_ms": 12.5, "device_ms": 0.0}
    timeline = {"ms": [0.0, 5.0, 9.0], "allocated_mb": [1.0, 57.0, 2.0]}
    profile = {"backend": "torch.profiler", "notes": [], "top_operators": [operator], "peak_memory_mb": 700.0,
               "memory_timeline": timeline, "communication_ms_per_step": 0.0, "cpu_fallback": []}  # fmt: skip
    (run / "profile" / "summary.json").write_text(json.dumps(profile))
    view = ProfileView(run)
    assert "data wait 40%" in view.text.value and "the data loader takes 40% of each step" in view.text.value
    assert "128.0 samples/s" in view.text.value and "MFU 21.3%" in view.text.value
    assert "aten::mm" in view.table.value and view.bars.value[:4] == b"\x89PNG"
    assert view.operators.to_dict("records") == [
        {"operator": "aten::mm", "calls": 7, "host ms": 12.5, "device ms": 0.0}
    ]
    assert view.memory.value[:4] == b"\x89PNG" and view.memory.layout.display is None
    assert "57 MB at most" in view.table.value


def test_profile_view_of_a_run_without_timing_says_so(tmp_path):
    from widgets import ProfileView

    view = ProfileView(tmp_path)
    assert "no step timing" in view.text.value and view.bars.layout.display == "none"
    assert view.memory.layout.display == "none" and view.operators is None
    assert "not profiled" in view.table.value


def test_the_profile_toggle_turns_profiling_on_for_the_run(app):
    app.run.profile_box.value = True
    app.run.train()
    (run,) = FakeRun.made
    assert run.cfg.profile.enabled and not app.config().profile.enabled


@pytest.mark.slow
def test_a_new_app_shows_the_run_still_training_and_can_stop_it(tmp_path):
    cfg = tiny(tmp_path, "train.max_steps=400", "train.save_steps=1000", "train.logging_steps=1",
               "eval.before=false")  # fmt: skip
    handle = launch.start(cfg, "subprocess")
    deadline = time.monotonic() + 300
    while runs.holder(handle.run_dir) is None or handle.status != "running":
        assert time.monotonic() < deadline, handle.status
        time.sleep(0.2)
    app = Workbench(root=cfg.output.root, detect_device=False)  # a reloaded page, or a second notebook
    assert app.run.run_dir == handle.run_dir and app.run.state == "running"
    app.run.stop()
    assert app.run.wait(300) == "stopped" and handle.wait(300) == "stopped"


@pytest.mark.parametrize("mode, budget", [("kernel", 0.01), ("subprocess", 0.05)])
def test_the_plot_may_spend_more_time_drawing_when_the_run_trains_in_another_process(app, mode, budget):
    app.run.mode.value = mode
    app.run.train()
    assert FakeRun.made[0].mode == {"kernel": "thread"}.get(mode, mode)
    assert app.run.plot.throttle.budget == budget and app.run.plot.throttle.first is None
