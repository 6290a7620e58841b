"""MFU: the model's FLOPs per token and the device's peak, measured once and cached, or configured."""

from __future__ import annotations

import json

import pytest
import torch

from workbench import devices, mfu

CPU = devices.Device("cpu", name="test cpu")


def test_flops_per_token_counts_linear_layers_and_only_trainable_weight_gradients():
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    model[2].weight.requires_grad_(False)
    # forward 2x and input gradients 2x for 32 + 16 weights; weight gradients 2x for the 32 trainable
    assert mfu.flops_per_token(model, tokens_per_sample=10) == 4 * 48 + 2 * 32


def test_flops_per_token_adds_attention_for_a_transformer():
    from transformers import LlamaConfig, LlamaForCausalLM

    c = LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, head_dim=4)  # fmt: skip
    model = LlamaForCausalLM(c)
    without = mfu.flops_per_token(model, tokens_per_sample=0)
    with_attention = mfu.flops_per_token(model, tokens_per_sample=64)
    assert with_attention - without == 12 * c.num_hidden_layers * c.num_attention_heads * c.head_dim * 64


def test_the_peak_is_measured_once_per_device_and_then_read_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path))
    measured = []
    monkeypatch.setattr(mfu, "measure", lambda device: measured.append(device) or 2.5e11)
    first, source = mfu.peak(CPU)
    again, _ = mfu.peak(CPU)
    assert first == again == 2.5e11 and len(measured) == 1 and "measured matmul peak" in source
    (entry,) = json.loads((tmp_path / "peak_flops.json").read_text()).values()
    assert entry["flops"] == 2.5e11
    mfu.peak(devices.Device("cpu", name="another cpu"))
    assert len(measured) == 2  # a different device is measured for itself


def test_a_configured_peak_is_used_as_given(monkeypatch):
    monkeypatch.setattr(mfu, "measure", lambda device: pytest.fail("a configured peak needs no measurement"))
    assert mfu.peak(CPU, configured_tflops=312) == (312e12, "configured (profile.peak_tflops)")


def test_an_unwritable_cache_still_gives_the_peak(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "file"))  # a folder under a file: cannot be made
    monkeypatch.setattr(mfu, "measure", lambda device: 1e11)
    assert mfu.peak(CPU)[0] == 1e11


def test_the_cpu_matmul_peak_is_a_plausible_rate():
    assert 1e9 < mfu.measure(devices.Device("cpu")) < 1e14  # at least 1 GFLOP/s, and not a division slip
