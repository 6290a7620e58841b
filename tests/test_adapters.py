"""Every adapter through the engine on the starter: what trains, what stays frozen, what is saved."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, tiny

import workbench
from workbench import adapters, config, devices, models, runs
from workbench.adapters import AdapterError

RECIPES = sorted((ROOT / "recipes").glob("*.yaml"))
ADAPTERS = ("full", "freeze", "lora", "qlora", "dora", "galore")
# A few steps prove what trains; evaluation and checkpoints would only cost time here.
SHORT = ("train.max_steps=3", "train.per_device_train_batch_size=8", "train.save_steps=1000")
NO_EVAL = ("eval.before=false", "eval.after=false")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Train an adapter once per module, on first use; return (RunResult, the trainer it used)."""
    done = {}

    def run(kind: str):
        if kind not in done:
            cfg = tiny(tmp_path_factory.mktemp(kind), f"adapter.type={kind}", *SHORT, *NO_EVAL)
            done[kind] = _train_keeping_trainer(cfg)
        return done[kind]

    return run


def _train_keeping_trainer(cfg):
    # The RunResult holds the model but not the trainer; the optimizer lives on the trainer.
    from workbench.methods import sft

    kept, build = [], sft.build

    def keep(*args):
        kept.append(build(*args))
        return kept[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sft, "build", keep)
        result = workbench.train(cfg, echo=False)
    return result, kept[0]


@pytest.fixture(scope="module")
def start():
    """The starter's weights before any training, by parameter name."""
    from safetensors.torch import load_file

    return load_file(Path(models.resolve(config.ModelConfig())) / "model.safetensors")


def weights(model) -> dict:
    """Parameters under the starter's own names: PEFT's wrapper prefixes are stripped."""
    out = {}
    for name, param in model.named_parameters():
        name = name.removeprefix("base_model.model.").replace(".base_layer", "")
        out[name] = param.detach().float().cpu()
    return out


def changed(before, after, names) -> dict[str, bool]:
    import torch

    return {n: not torch.equal(before[n].float(), after[n]) for n in names}


def lora_b_nonzero(model) -> bool:
    # PEFT starts every lora_B at zero, so any non-zero value was learned.
    b = [p for n, p in model.named_parameters() if "lora_B" in n]
    return bool(b) and all(p.detach().abs().sum() > 0 for p in b)


# ---------------------------------------------------------------------------------------- what trains


@pytest.mark.slow
def test_lora_trains_the_adapter_and_leaves_the_base_weights_alone(trained, start):
    result, _ = trained("lora")
    after = weights(result.model)
    assert lora_b_nonzero(result.model)
    assert not any(changed(start, after, start).values())


@pytest.mark.slow
def test_full_trains_every_weight(trained, start):
    result, _ = trained("full")
    assert all(changed(start, weights(result.model), start).values())
    assert result.summary["trainable_parameters"] == result.summary["total_parameters"]


@pytest.mark.slow
def test_freeze_trains_only_the_last_block_and_the_final_norm(trained, start):
    result, _ = trained("freeze")
    moved = changed(start, weights(result.model), start)
    trainable = {n for n in start if n.startswith("model.layers.3.") or n == "model.norm.weight"}
    assert {n for n, c in moved.items() if c} == trainable
    assert result.summary["trainable_parameters"] == sum(start[n].numel() for n in trainable)


@pytest.mark.slow
def test_qlora_quantizes_the_base_to_4bit_and_trains_lora(trained):
    from bitsandbytes.nn import Linear4bit

    result, _ = trained("qlora")
    quantized = [n for n, m in result.model.named_modules() if isinstance(m, Linear4bit)]
    assert len(quantized) == 4 * len(models.PROJECTIONS)  # every projection of the 4 blocks
    assert lora_b_nonzero(result.model)


@pytest.mark.slow
def test_qlora_adapters_train_in_fp32_on_the_cpu(trained):
    import torch

    # TRL casts QLoRA adapters to bf16, which a CPU runs ~3x slower; the engine casts them back.
    result, _ = trained("qlora")
    lora = [p for n, p in result.model.named_parameters() if "lora_" in n]
    assert lora and all(p.dtype == torch.float32 for p in lora)


@pytest.mark.slow
def test_qlora_counts_each_4bit_weight_as_the_matrix_it_stands_for(trained):
    qlora, _ = trained("qlora")
    lora, _ = trained("lora")
    assert qlora.summary["total_parameters"] == lora.summary["total_parameters"]


@pytest.mark.slow
def test_dora_trains_a_magnitude_vector_next_to_lora(trained, start):
    result, _ = trained("dora")
    magnitudes = [p for n, p in result.model.named_parameters() if "lora_magnitude_vector" in n]
    assert magnitudes and all(p.requires_grad for p in magnitudes)
    assert lora_b_nonzero(result.model)
    assert not any(changed(start, weights(result.model), start).values())


@pytest.mark.slow
def test_galore_projects_the_block_matrices_and_trains_the_weights(trained, start):
    from galore_torch import GaLoreAdamW

    result, trainer = trained("galore")
    optimizer = getattr(trainer.optimizer, "optimizer", trainer.optimizer)  # accelerate wraps it
    assert isinstance(optimizer, GaLoreAdamW)
    projected = [g for g in optimizer.param_groups if "rank" in g]
    assert len(projected) == 1 and len(projected[0]["params"]) == 4 * len(models.PROJECTIONS)
    assert changed(start, weights(result.model), ["model.layers.0.self_attn.q_proj.weight"]) == {
        "model.layers.0.self_attn.q_proj.weight": True
    }


@pytest.mark.slow
@pytest.mark.parametrize("kind", ADAPTERS)
def test_result_is_safetensors_in_adapter_or_model_folder(trained, kind):
    result, _ = trained(kind)
    folder = "adapter" if kind in ("lora", "qlora", "dora") else "model"
    assert result.summary["result"] == folder
    files = list((result.run_dir / folder).iterdir())
    assert any(f.suffix == ".safetensors" for f in files)
    assert not any(f.suffix in (".bin", ".pt", ".pth") for f in files)


@pytest.mark.slow
def test_lora_loss_falls_over_a_short_run(tmp_path):
    cfg = tiny(tmp_path, "train.max_steps=30", "train.logging_steps=5", "train.save_steps=1000", *NO_EVAL)
    result = workbench.train(cfg, echo=False)
    losses = [m["loss"] for m in runs.read_jsonl(result.run_dir / "metrics.jsonl") if "loss" in m]
    assert len(losses) == 6 and losses[-1] < 0.9 * losses[0]


# ---------------------------------------------------------------------------------------- refusals


def test_qlora_where_4bit_is_impossible_is_a_clear_adapter_error(tmp_path, monkeypatch):
    reason = "bitsandbytes ships no kernels for this device"
    monkeypatch.setattr(devices, "supports_4bit", lambda device: (False, reason))
    cfg = tiny(tmp_path, "adapter.type=qlora")
    with pytest.raises(AdapterError, match=f"adapter.type: qlora cannot run here: {reason}"):
        workbench.train(cfg, echo=False)
    assert not (tmp_path / "runs").exists()  # refused before a run directory was made


def test_freeze_refuses_more_blocks_than_the_model_has():
    model = models.load_model(models.resolve(config.ModelConfig()))
    with pytest.raises(AdapterError, match="has 4 blocks: choose 1 to 4"):
        adapters.freeze(model, 5)


def test_galore_targets_the_models_own_projection_names():
    cpu = devices.Device("cpu")
    plan = adapters.plan(config.AdapterConfig(type="galore"), cpu, ["query_key_value", "dense"])
    assert plan.trainer_args["optim"] == "galore_adamw"
    assert plan.trainer_args["optim_target_modules"] == ["query_key_value", "dense"]


# ---------------------------------------------------------------------------------------- recipes


@pytest.mark.parametrize("recipe", RECIPES, ids=[p.name for p in RECIPES])
def test_every_recipe_loads_strictly(recipe):
    cfg = workbench.load_config(recipe)
    assert isinstance(cfg, workbench.RunConfig)


@pytest.mark.parametrize("kind", [k for k in ADAPTERS if k != "lora"])
def test_each_adapter_has_a_starter_recipe_of_that_type(kind):
    cfg = workbench.load_config(ROOT / "recipes" / f"sft_{kind}_starter.yaml")
    assert cfg.adapter.type == kind and cfg.model.name_or_path == "starter"


@pytest.mark.slow
def test_a_lora_run_never_loads_bitsandbytes_and_a_qlora_run_after_it_still_quantizes(tmp_path):
    script = f"""
import sys
sys.path.insert(0, {str(ROOT / "tests")!r})
from pathlib import Path
from conftest import tiny
import workbench
quiet = ("eval.before=false", "eval.after=false")
workbench.train(tiny(Path({str(tmp_path)!r}), *quiet), echo=False)
print("after lora:", "bitsandbytes" in sys.modules)
r = workbench.train(tiny(Path({str(tmp_path)!r}), *quiet, "adapter.type=qlora"), echo=False)
print("qlora layer:", type(r.model.base_model.model.model.layers[0].self_attn.q_proj.base_layer).__name__)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "after lora: False" in done.stdout and "qlora layer: Linear4bit" in done.stdout
