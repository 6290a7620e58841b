"""The runs and chat panels, headless: one tiny real run, plus fake run folders written by hand."""

from __future__ import annotations

import html
import json
import time
from pathlib import Path

import pytest
from conftest import tiny

import workbench
from widgets.chat_panel import ChatPanel
from widgets.runs_panel import RunsPanel
from workbench import chat, runs
from workbench import config as config_mod

PNG = b"\x89PNG\r\n\x1a\n"


def fake_run(folder: Path, cfg, events: list[dict], metrics=(), summary=None) -> Path:
    """A run directory written by hand, as a stopped or foreign run leaves it."""
    folder.mkdir(parents=True)
    (folder / "resolved.yaml").write_text(config_mod.dump(cfg))
    (folder / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    (folder / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in metrics))
    if summary is not None:
        (folder / "summary.json").write_text(json.dumps(summary))
    return folder


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """The one training of this file: a tiny SFT run, shared read-only by every test.

    A gentle learning rate keeps the starter's habit of answering with letters; six steps at the
    quickstart's rate teach it to answer only newlines, which reply() strips to "".
    """
    cfg = tiny(tmp_path_factory.mktemp("wb"), "output.name=tiny", "train.learning_rate=1e-5")
    return workbench.train(cfg, echo=False)


@pytest.fixture(scope="module")
def stopped(finished):
    """A DPO run stopped after two logs, started a minute after the real one (so it is the newest)."""
    later = time.time() + 60
    events = [{"time": later, "event": "start"}, {"time": later + 1, "event": "stop"},
              {"time": later + 2, "event": "finish", "reason": "stopped"}]  # fmt: skip
    metrics = [{"step": 1, "loss": 0.7, "margin": 0.1}, {"step": 2, "loss": 0.6, "margin": 0.3}]
    cfg = tiny(finished.run_dir.parents[1], "method.name=dpo")
    return fake_run(finished.run_dir.parent / "dpo-lora-20300101-000000", cfg, events, metrics)


@pytest.fixture(scope="module")
def root(finished, stopped):
    (finished.run_dir.parent / "notes").mkdir()  # not a run: skipped
    (finished.run_dir.parent / "readme.txt").write_text("not a run either")
    return finished.run_dir.parent


def test_listing_gives_one_row_per_run_newest_first(root, finished, stopped):
    rows = runs.listing(root)
    assert [r["name"] for r in rows] == [stopped.name, finished.run_dir.name]
    new, old = rows
    assert (new["status"], new["method"], new["adapter"], new["steps"]) == ("stopped", "dpo", "lora", None)
    s = finished.summary
    assert (old["status"], old["method"], old["adapter"], old["steps"]) == ("finished", "sft", "lora", 6)
    assert old["final_loss"] == s["final_loss"] and old["wall_time_s"] == s["wall_time_s"]
    assert old["effect"] == f"exact match: {s['accuracy_before']:.1%} -> {s['accuracy_after']:.1%}"


def test_runs_panel_lists_the_runs_with_their_status(root, finished, stopped):
    panel = RunsPanel(root)
    assert finished.run_dir.name in panel.table.value and stopped.name in panel.table.value
    assert "stopped" in panel.table.value and "finished" in panel.table.value
    assert [value for _, value in panel.chosen.control.options] == [str(stopped), str(finished.run_dir)]
    assert "wb-runs" in panel._dom_classes


def test_compare_draws_two_runs_in_one_png(root, finished, stopped):
    panel = RunsPanel(root)
    png = panel.compare([finished.run_dir.name, stopped])
    assert png.startswith(PNG) and bytes(panel.plot.value) == png
    assert panel.chosen.value == (str(finished.run_dir), str(stopped))
    assert panel.metric.control.options[0] == "loss" and "margin" in panel.metric.control.options
    panel.metric.value = "margin"  # only the DPO run logged it: a different picture
    assert bytes(panel.plot.value).startswith(PNG) and bytes(panel.plot.value) != png


def test_compare_on_a_metric_no_run_logged_says_so(root, finished):
    panel = RunsPanel(root)
    assert panel.compare([finished.run_dir], metric="kl") == b""
    assert "no chosen run logged kl" in panel.metric.note.value


def test_view_shows_summary_events_and_last_records(root, finished, stopped):
    panel = RunsPanel(root)
    panel.view(finished.run_dir)
    assert panel.run.value == str(finished.run_dir)
    assert f"{finished.summary['final_loss']:.4g}" in panel.details.value
    assert "finish" in panel.details.value and "eval_examples" not in panel.details.value
    last_step = runs.read_jsonl(finished.run_dir / "metrics.jsonl")[-1]["step"]
    assert f"<td style='padding:2px 8px;white-space:nowrap'>{last_step}</td>" in panel.details.value
    panel.run.value = str(stopped)  # choosing in the dropdown views that run
    assert "stopped" in panel.details.value and "0.6" in panel.details.value


def test_a_missing_root_shows_how_to_start_not_an_error(tmp_path):
    panel = RunsPanel(tmp_path / "nowhere")
    assert "No runs yet" in panel.table.value and panel.root.error is None
    assert panel.chosen.control.options == ()


def test_chat_lists_only_finished_runs_that_can_chat(root, finished):
    panel = ChatPanel(root)
    assert panel.refresh() == [str(finished.run_dir.resolve())]
    assert "wb-chat" in panel._dom_classes


def test_send_answers_on_both_sides_and_the_boxes_show_the_replies(root, finished):
    panel = ChatPanel(root, run_dir=finished.run_dir)
    mine, theirs = panel.send("Reverse: abc")
    assert mine and theirs, panel.run.note.value
    result, start = panel.sides["result"], panel.sides["start"]
    assert (result.answer, start.answer) == (mine, theirs)
    assert html.escape(mine) in result.reply.value and html.escape(theirs) in start.reply.value
    assert [m["role"] for m in result.history] == ["user", "assistant"] == [m["role"] for m in start.history]
    assert "Reverse: abc" in result.transcript.value


def answered(panel: ChatPanel) -> None:
    deadline = time.time() + 120
    while panel.send_button.disabled and time.time() < deadline:
        time.sleep(0.1)


@pytest.mark.parametrize("how", ["button", "enter"])
def test_send_button_or_enter_answers_in_the_background(root, finished, how):
    panel = ChatPanel(root, run_dir=finished.run_dir)
    panel.compare_box.value = False
    if how == "button":  # the box alone no longer sends: only the button can
        panel.message.control.unobserve(panel._entered, names="value")
    panel.message.value = "Reverse: dacz"  # without continuous updates, a typed value arrives on Enter
    if how == "button":
        panel.send_button.click()
    answered(panel)
    assert panel.last is not None and panel.last[0] and panel.last[1] is None, panel.run.note.value
    assert panel.sides["result"].answer == panel.last[0] and panel.message.value == ""
    assert panel.sides["start"].history == [] and panel.sides["start"].layout.display == "none"
    assert finished.run_dir.name in panel.sides["result"].header.value  # the answer is labelled by its run


def test_load_start_is_the_base_the_run_started_from(finished):
    import torch
    from transformers import AutoModelForCausalLM

    start, tokenizer = chat.load_start(finished.run_dir)
    trained, _ = chat.load_result(finished.run_dir)
    base = AutoModelForCausalLM.from_pretrained(finished.summary["start"]["base"]).eval()
    ids = tokenizer("Reverse: abcd", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = start(ids).logits
        assert torch.allclose(logits, base(ids).logits, atol=1e-5)
        assert not torch.allclose(logits, trained(ids).logits, atol=1e-3)  # the adapter changed it


@pytest.mark.parametrize(
    ("kind", "message"), [("reward", "reward model"), ("missing", "not a run directory")]
)
def test_a_run_that_cannot_chat_shows_why_in_the_panel(tmp_path, kind, message):
    folder = tmp_path / "runs" / f"{kind}-20300101-000000"
    if kind == "reward":
        done = [{"time": time.time(), "event": "finish", "reason": "finished"}]
        fake_run(folder, tiny(tmp_path, "method.name=reward"), done, summary={"status": "finished"})
        (folder / "adapter").mkdir()
        assert ChatPanel(tmp_path / "runs").refresh() == []  # never offered
    panel = ChatPanel(tmp_path / "runs", run_dir=folder)
    assert panel.send("hello") is None
    assert message in panel.run.error and message in panel.run.note.value
    assert panel.sides["result"].history == [] and panel.sides["result"].reply.value == ""


def test_send_without_a_run_or_a_message_says_what_is_missing(tmp_path):
    panel = ChatPanel(tmp_path / "empty")
    assert panel.send("hello") is None and "choose a run first" in panel.run.error
    assert panel.send("  ") is None and "type a message first" in panel.message.error
