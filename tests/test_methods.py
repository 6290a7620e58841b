"""Every alignment method trains a few steps on the starter, chained from a short SFT run.

Each test checks the written outputs and the direction of the method's effect on held-out data; the
full-size figures come from bench/alignment.py.
"""

from __future__ import annotations

import json

import pytest
from conftest import tiny

import workbench
from workbench import runs
from workbench.rewards import RewardError

pytestmark = pytest.mark.slow

PREF = ["data.train=bundled:reverse/pref_train", "data.eval=bundled:reverse/pref_eval"]
PROMPTS = ["data.train=bundled:reverse/prompts_train", "data.eval=bundled:reverse/prompts_eval"]
SMALL = ["train.per_device_train_batch_size=8", "eval.max_samples=16", "eval.batch_size=16"]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("stages")


@pytest.fixture(scope="module")
def warm(root):
    """A short SFT stage: the start of every chain below."""
    cfg = tiny(root, "train.max_steps=40", "train.per_device_train_batch_size=16", "output.name=warm",
               "eval.max_samples=8")  # fmt: skip
    return workbench.train(cfg, echo=False).run_dir


RM = ["data.train=bundled:reverse/rm_train", "data.eval=bundled:reverse/rm_eval"]


@pytest.fixture(scope="module")
def reward_run(root, warm):
    """A reward model as the starter recipe makes it: all weights, one-letter-mistake pairs."""
    cfg = tiny(root, "method.name=reward", *RM, *SMALL, f"model.from_run={warm}", "train.max_steps=60",
               "train.per_device_train_batch_size=16", "adapter.type=full", "train.learning_rate=5e-4",
               "output.name=rm")  # fmt: skip
    return workbench.train(cfg, echo=False)


def metric_names(run_dir) -> set:
    return set().union(*(r.keys() for r in runs.read_jsonl(run_dir / "metrics.jsonl")))


@pytest.mark.parametrize(("method", "raw"), [("dpo", "rewards/margins"), ("kto", "rewards/margins"),
                                             ("simpo", "rewards/margins"), ("orpo", "log_odds_ratio")])  # fmt: skip
def test_preference_method_raises_the_held_out_margin(root, warm, method, raw):
    cfg = tiny(root, f"method.name={method}", *PREF, *SMALL, f"model.from_run={warm}", "train.max_steps=10")
    result = workbench.train(cfg, echo=False)
    s = result.summary
    assert s["status"] == "finished" and s["method"] == method
    assert s["margin_after"] > s["margin_before"], s
    assert 0 <= s["preference_accuracy_after"] <= 1
    assert {"loss", "margin", raw} <= metric_names(result.run_dir)  # shared names next to TRL's own
    assert (result.run_dir / "adapter" / "adapter_model.safetensors").is_file()
    start = runs.read_jsonl(result.run_dir / "events.jsonl")[0]
    assert start["adapters"] == [str(warm / "adapter")]  # chained: the SFT adapter was merged in


def test_reward_model_learns_to_rank_and_saves_a_scoring_model(reward_run):
    s = reward_run.summary
    assert s["status"] == "finished"
    assert s["margin_after"] > s["margin_before"], s
    config = json.loads((reward_run.run_dir / "model" / "config.json").read_text())
    assert config["architectures"] == ["LlamaForSequenceClassification"]
    assert {"preference_accuracy", "reward_mean", "accuracy"} <= metric_names(reward_run.run_dir)


def test_a_lora_reward_run_saves_its_score_head_and_loads_back_for_ppo(root, warm):
    import torch

    from workbench import evaluate
    from workbench.methods import ppo

    cfg = tiny(root, "method.name=reward", *RM, *SMALL, f"model.from_run={warm}", "train.max_steps=3",
               "output.name=rm-lora")  # fmt: skip
    result = workbench.train(cfg, echo=False)
    config = json.loads((result.run_dir / "adapter" / "adapter_config.json").read_text())
    assert config["task_type"] == "SEQ_CLS"
    ppo_cfg = tiny(root, "method.name=ppo", f"method.reward_model={result.run_dir}")
    loaded = ppo.load_reward_model(ppo_cfg, result.model, result.tokenizer)
    prompts, answers = [[{"role": "user", "content": "Reverse: abcd"}]] * 2, ["dcba", "dcbb"]
    with torch.no_grad():
        trained = evaluate.reward_scores(result.model.eval(), result.tokenizer, prompts, answers)
        reloaded = evaluate.reward_scores(loaded, result.tokenizer, prompts, answers)
    assert trained == pytest.approx(reloaded, abs=1e-4)  # SFT body + score adapter, merged in order


def test_ppo_trains_against_the_reward_run_and_stays_well_formed(root, warm, reward_run):
    cfg = tiny(root, "method.name=ppo", *PROMPTS, *SMALL, f"model.from_run={warm}", "train.max_steps=3",
               f"method.reward_model={reward_run.run_dir}", "train.learning_rate=1e-4")  # fmt: skip
    result = workbench.train(cfg, echo=False)
    s = result.summary
    assert s["status"] == "finished" and s["steps"] == 3
    assert {"reward_mean_before", "reward_mean_after", "well_formed_after", "accuracy_after"} <= s.keys()
    assert {"reward_mean", "kl", "objective/scores"} <= metric_names(result.run_dir)
    assert (result.run_dir / "adapter" / "adapter_model.safetensors").is_file()


def test_ppo_stop_request_checkpoints_and_ends_the_run(root, warm, reward_run):
    cfg = tiny(root, "method.name=ppo", *PROMPTS, *SMALL, f"model.from_run={warm}", "train.max_steps=5",
               f"method.reward_model={reward_run.run_dir}", "output.name=ppo-stop")  # fmt: skip
    result = workbench.train(cfg, should_stop=lambda: True, echo=False)
    assert result.status == "stopped"
    assert runs.status(result.run_dir) == "stopped"
    assert (result.run_dir / "checkpoints" / "checkpoint-1" / "trainer_state.json").is_file()


def test_grpo_records_rewards_under_raw_and_shared_names(root, warm):
    cfg = tiny(root, "method.name=grpo", *PROMPTS, *SMALL, f"model.from_run={warm}", "train.max_steps=4",
               "method.rewards={exact_match: 1.0, similarity: 0.5}", "method.num_generations=4")  # fmt: skip
    result = workbench.train(cfg, echo=False)
    s = result.summary
    assert s["status"] == "finished"
    assert {"reward_mean_before", "reward_mean_after", "accuracy_before", "accuracy_after"} <= s.keys()
    assert {"reward_mean", "rewards/similarity/mean", "completion_length"} <= metric_names(result.run_dir)


def test_grpo_reward_failing_mid_run_marks_the_run_failed_and_keeps_the_checkpoint(root, warm, tmp_path):
    code = tmp_path / "flaky.py"
    code.write_text(
        "calls = 0\n\ndef flaky(completions, **kw):\n    global calls\n    calls += 1\n"
        "    if calls > 2:\n        raise RuntimeError('scorer offline')\n    return [0.0] * len(completions)\n"
    )
    cfg = tiny(tmp_path, "method.name=grpo", *PROMPTS, *SMALL, f"model.from_run={warm}", "train.max_steps=6",
               "train.save_steps=2", f"method.rewards={{'{code}:flaky': 1.0}}", "method.allow_reward_code=true",
               "method.num_generations=4", "eval.before=false")  # fmt: skip
    with pytest.raises(RewardError, match="scorer offline"):
        workbench.train(cfg, echo=False)
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert runs.status(run_dir) == "failed"
    assert "scorer offline" in runs.read_jsonl(run_dir / "events.jsonl")[-1]["reason"]
    assert (run_dir / "checkpoints" / "checkpoint-2" / "trainer_state.json").is_file()


def test_a_chained_result_loads_back_with_every_stage_merged(root, warm):
    import torch

    from workbench.chat import load_result

    cfg = tiny(root, "method.name=dpo", *PREF, *SMALL, f"model.from_run={warm}", "train.max_steps=4",
               "output.name=chain")  # fmt: skip
    result = workbench.train(cfg, echo=False)
    loaded, tokenizer = load_result(result.run_dir)
    ids = tokenizer("Reverse: abcd", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        trained, reloaded = result.model.eval()(ids).logits, loaded(ids).logits
    assert torch.allclose(trained, reloaded, atol=1e-4)  # SFT adapter + DPO adapter, in that order
    assert result.summary["start"]["adapters"] == [str(warm / "adapter")]


@pytest.mark.parametrize("method", ["dpo", "kto", "simpo", "orpo", "grpo", "ppo"])
def test_every_method_also_trains_full_weights(root, warm, reward_run, method):
    data = PROMPTS if method in ("grpo", "ppo") else PREF
    cfg = tiny(root, f"method.name={method}", *data, *SMALL, f"model.from_run={warm}", "adapter.type=full",
               "train.max_steps=2", "eval.before=false", "eval.after=false", "train.learning_rate=1e-4",
               "method.rewards={exact_match: 1.0}", "method.num_generations=4",
               f"method.reward_model={reward_run.run_dir}", f"output.name=full-{method}")  # fmt: skip
    result = workbench.train(cfg, echo=False)
    assert result.summary["status"] == "finished" and result.summary["adapter"] == "full"
    assert (result.run_dir / "model" / "model.safetensors").is_file()
    assert result.summary["trainable_parameters"] >= result.summary["total_parameters"] // 3  # not an adapter
