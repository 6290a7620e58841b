"""Adapters: how much of the model trains, translated onto PEFT, bitsandbytes and transformers.

full    every weight trains
freeze  only the last `freeze_trainable_layers` blocks and the final norm train
lora    PEFT LoRA on `target_modules`
dora    LoRA with weight decomposition (PEFT `use_dora=True`)
qlora   LoRA over a 4-bit (bitsandbytes) base model
galore  full training with GaLore's low-rank gradient projection (transformers' galore optimizers)
"""

from __future__ import annotations

import contextlib
import importlib.util
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from workbench import devices
from workbench.config import AdapterConfig
from workbench.errors import AdapterError


@dataclass
class Plan:
    """What an adapter asks of model loading and of the trainer."""

    peft_config: Any = None
    quantization_config: Any = None
    trainer_args: dict = field(default_factory=dict)
    freeze_layers: int | None = None


def plan(cfg: AdapterConfig, device: devices.Device, targets: list[str] | str, head: str = "causal") -> Plan:
    """Translate the adapter section for this device and model (LoRA targets already resolved).

    head "reward" (a scoring model) makes PEFT train the new score layer in full next to the adapter.
    """
    if cfg.type in ("full", "freeze"):
        return Plan(freeze_layers=cfg.freeze_trainable_layers if cfg.type == "freeze" else None)
    if cfg.type == "galore":
        return Plan(trainer_args=_galore_args(cfg, targets))
    return Plan(
        peft_config=_lora(cfg, targets, "SEQ_CLS" if head == "reward" else "CAUSAL_LM"),
        quantization_config=_four_bit(cfg, device) if cfg.type == "qlora" else None,
    )


def _lora(cfg: AdapterConfig, targets: list[str] | str, task_type: str) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=cfg.r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=_targets(cfg, targets),
        use_dora=cfg.type == "dora",
        task_type=task_type,
    )


def _targets(cfg: AdapterConfig, resolved: list[str] | str) -> list[str] | str:
    """The recipe's target_modules, or the model's own projection names for "auto"."""
    chosen = resolved if cfg.target_modules == "auto" else cfg.target_modules
    return list(chosen) if isinstance(chosen, tuple | list) else chosen


def _four_bit(cfg: AdapterConfig, device: devices.Device) -> Any:
    ok, reason = devices.supports_4bit(device)
    if not ok:
        raise AdapterError(f"adapter.type: qlora cannot run here: {reason}")
    import torch
    from transformers import BitsAndBytesConfig

    compute = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(device.precision, torch.float32)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=cfg.bnb_4bit_quant_type,
        bnb_4bit_use_double_quant=cfg.bnb_4bit_use_double_quant,
        bnb_4bit_compute_dtype=compute,
        bnb_4bit_quant_storage=compute,
    )


def _galore_args(cfg: AdapterConfig, targets: list[str] | str) -> dict:
    """Trainer arguments that replace `train.optim` with GaLore's AdamW.

    GaLore projects the gradients of the same block matrices LoRA would wrap (names differ per family:
    q_proj, query_key_value, wqkv, ...); embeddings, norms and the head train with plain AdamW.
    """
    if not importlib.util.find_spec("galore_torch"):
        raise AdapterError("adapter.type: galore needs the galore-torch package: pip install galore-torch")
    projection = f"rank={cfg.galore_rank},update_proj_gap={cfg.galore_update_proj_gap}"
    return {
        "optim": "galore_adamw",
        "optim_target_modules": _targets(cfg, targets),
        "optim_args": f"{projection},scale={cfg.galore_scale}",
    }


@contextlib.contextmanager
def bitsandbytes_only_if(quantized: bool) -> Iterator[None]:
    """Keep PEFT from importing bitsandbytes while it wraps a model that has no 4-bit layers.

    PEFT (0.17-0.18, peft/tuners/lora/model.py) imports bitsandbytes' dispatchers for every LoRA model
    when it is installed: ~1.5 s of start-up and a kernel warning per run, for nothing unless the model is
    quantized. Its module-level names are switched for the call only; PEFT's cached check is untouched,
    so a QLoRA run later in the same process still finds bitsandbytes.
    """
    if quantized:
        yield
        return
    from peft.tuners.lora import model as lora

    if not hasattr(lora, "is_bnb_4bit_available"):  # another PEFT layout: leave it as it is
        yield
        return
    saved = lora.is_bnb_available, lora.is_bnb_4bit_available
    lora.is_bnb_available = lora.is_bnb_4bit_available = lambda: False
    try:
        yield
    finally:
        lora.is_bnb_available, lora.is_bnb_4bit_available = saved


def match_adapter_dtype(model: Any, plan: Plan) -> None:
    """Give QLoRA adapters the base's compute dtype again, where that is fp32 (the CPU).

    TRL 1.12's SFTTrainer casts the trainable weights of every 4-bit model to bf16 (right on a bf16
    GPU, as in the QLoRA paper); a CPU without bf16 units then runs each step ~3x slower. Call it
    after the trainer is built and before it trains.
    """
    import torch

    quant = plan.quantization_config
    if quant is None or quant.bnb_4bit_compute_dtype != torch.float32:
        return
    for param in model.parameters():
        if param.requires_grad and param.is_floating_point():
            param.data = param.data.float()


def freeze(model: Any, trainable_layers: int) -> None:
    """Freeze every weight but the last `trainable_layers` decoder blocks, the final norm and a score layer."""
    block = re.compile(r"\.layers\.(\d+)\.")
    indices = [int(m.group(1)) for n, _ in model.named_parameters() if (m := block.search(n))]
    if not indices:
        raise AdapterError(
            "adapter.type: freeze found no '.layers.N.' blocks in this model; use lora instead"
        )
    count = max(indices) + 1
    if not 1 <= trainable_layers <= count:
        raise AdapterError(
            f"adapter.freeze_trainable_layers is {trainable_layers}, but this model has {count} blocks: "
            f"choose 1 to {count} (or adapter.type: full to train everything)"
        )
    first = count - trainable_layers
    for name, param in model.named_parameters():
        m = block.search(name)
        # a reward model's new score layer always trains
        param.requires_grad = (
            (int(m.group(1)) >= first) if m else name.endswith(("norm.weight", "score.weight"))
        )


def trainable_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter counts; a 4-bit weight counts as the matrix it stands for."""
    total = sum(_numel(p) for p in model.parameters())
    return sum(_numel(p) for p in model.parameters() if p.requires_grad), total


def _numel(param: Any) -> int:
    # bitsandbytes packs two 4-bit values per byte into a flat tensor; its quant_state keeps the real shape.
    state = getattr(param, "quant_state", None)
    return state.shape.numel() if state is not None else param.numel()
