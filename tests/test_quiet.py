"""Upstream lines that look like errors (pink stderr in a notebook) are dropped at their source."""

import logging
import subprocess
import sys

import pytest

from workbench import quiet


@pytest.mark.parametrize("name, start", quiet.LOG_LINES.items())
def test_quiet_drops_the_listed_line_and_keeps_the_rest_of_that_logger(caplog, name, start):
    quiet.libraries()
    quiet.libraries()  # twice adds no second filter
    log = logging.getLogger(name)
    assert sum(getattr(f, "start", None) == start for f in log.filters) == 1
    with caplog.at_level(logging.WARNING, logger=name):
        log.warning(start + ": %s", "details")
        log.warning("something else")
    assert [r.getMessage() for r in caplog.records] == ["something else"]


LORA_AND_PROFILER = """
import sys
import peft, torch, transformers.modeling_outputs
from transformers.utils.logging import disable_progress_bar
from workbench import models, quiet, starter

disable_progress_bar()  # as a run does
model = models.load_model(starter.ensure_starter())
peft.get_peft_model(model, peft.LoraConfig(r=2, target_modules=["q_proj"]))  # imports bitsandbytes
transformers.modeling_outputs.CausalLMOutputWithPast(past_key_values=None)  # the old name TRL 1.12 uses
with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]):
    torch.ones(4, 4) @ torch.ones(4, 4)
print("bitsandbytes" in sys.modules)
"""


@pytest.mark.slow
def test_a_lora_model_and_a_profiled_step_write_nothing_to_stderr(monkeypatch):
    monkeypatch.delenv("KINETO_LOG_LEVEL", raising=False)
    done = subprocess.run(
        [sys.executable, "-c", LORA_AND_PROFILER], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"  # the import whose warning is dropped did happen
    assert done.stderr == ""


def test_the_load_report_of_a_new_score_head_is_dropped_and_any_other_report_kept():
    import logging

    from workbench.quiet import _NewScoreHead

    def report(*rows):
        table = "Key          | Status  | \n-------------+---------+-\n" + "".join(f"{r} | \n" for r in rows)
        return logging.LogRecord(
            "transformers.modeling_utils", 30, "", 0, "X LOAD REPORT from: m\n" + table, (), None
        )

    keep = _NewScoreHead().filter
    assert not keep(report("score.weight | MISSING"))
    assert keep(report("score.weight | MISSING", "model.layers.0.mlp.up_proj.weight | MISSING"))
    assert keep(report("lm_head.weight | UNEXPECTED"))
    assert keep(logging.LogRecord("x", 30, "", 0, "something else", (), None))
