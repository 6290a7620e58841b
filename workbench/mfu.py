"""Model FLOPs utilisation: the FLOPs a run's model does per token, over what the device can do.

The device's peak is measured, not looked up: a square matmul in the training dtype, grown until one
takes long enough to time, best of a few. It is measured once per device and kept in
$WORKBENCH_CACHE/peak_flops.json (default ~/.cache/npu-workbench), or set by `profile.peak_tflops`.
A measured peak is what this machine reaches with its libraries, so an MFU near 1 is possible on CPU.
"""

from __future__ import annotations

import importlib
import json
import time
from pathlib import Path
from typing import Any

from workbench import devices, starter

SIZES = (512, 1024, 2048, 4096, 8192)  # matmul sides tried, smallest first
LONG_ENOUGH_S = 0.02  # a matmul this long times reliably; larger sides are not needed


def cache_file() -> Path:
    return starter.cache_root() / "peak_flops.json"


def peak(device: devices.Device, configured_tflops: float | None = None) -> tuple[float, str]:
    """(FLOP/s, where it came from): the configured peak, the cached measurement, or a new one."""
    if configured_tflops:
        return configured_tflops * 1e12, "configured (profile.peak_tflops)"
    key, path = _key(device), cache_file()
    known = _read(path)
    if key not in known:
        known[key] = {"flops": measure(device), "measured": time.strftime("%Y-%m-%d %H:%M")}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(known, indent=2) + "\n", encoding="utf-8")
        except OSError:
            pass  # an unwritable cache only means measuring again next time
    return known[key]["flops"], f"measured matmul peak ({key}, cached in {path})"


def measure(device: devices.Device, repeats: int = 5) -> float:
    """Best FLOP/s of a square matmul in the dtype the model trains in."""
    torch = importlib.import_module("torch")
    best = 0.0
    for n in SIZES:
        a, b = (
            torch.randn(n, n, dtype=devices.torch_dtype(device), device=device.torch_device) for _ in "ab"
        )
        a @ b  # warm-up: kernels chosen, memory allocated
        seconds = min(_timed(device, a, b) for _ in range(repeats))
        best = max(best, 2 * n**3 / seconds)
        if seconds >= LONG_ENOUGH_S:
            break
    return best


def _timed(device: devices.Device, a: Any, b: Any) -> float:
    devices.synchronize(device)
    started = time.perf_counter()
    a @ b
    devices.synchronize(device)
    return time.perf_counter() - started


def flops_per_token(model: Any, tokens_per_sample: float) -> float:
    """Training FLOPs per token: every linear layer forward (2 per weight) and backward to its input
    (2 more), weight gradients (2 more) only where the weight trains, and attention scores and mixing
    (12 x layers x width x sequence). Generation (GRPO, PPO) and recomputation are not counted."""
    import torch

    linear = trainable = 0
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            size = module.in_features * module.out_features  # 4-bit weights are packed: use the shape
            linear += size
            trainable += size if module.weight.requires_grad else 0
    config = getattr(model, "config", None)
    layers = getattr(config, "num_hidden_layers", 0) or 0
    heads, head_dim = getattr(config, "num_attention_heads", 0), getattr(config, "head_dim", None)
    width = heads * head_dim if heads and head_dim else getattr(config, "hidden_size", 0) or 0
    return 4 * linear + 2 * trainable + 12 * layers * width * tokens_per_sample


def _key(device: devices.Device) -> str:
    torch = importlib.import_module("torch")
    threads = f" {torch.get_num_threads()} threads" if device.type == "cpu" else ""
    return f"{device.type} {device.name or ''} {device.precision}{threads} torch {torch.__version__}".strip()


def _read(path: Path) -> dict:
    try:
        known = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return known if isinstance(known, dict) else {}
