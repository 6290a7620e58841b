"""Why a run is slow, in plain words: the number behind each finding and the fix to try.

Reads the step timing every run records (workbench.steptimes) from metrics.jsonl, so it works for any
finished or running run, profiled or not.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

PHASES = ("data_wait", "compute", "optimizer", "other")  # of each optimizer step (workbench.steptimes)
DATA_SHARE = 0.20  # above this the data loader, not the device, sets the pace
OPTIMIZER_SHARE = 0.30
LOW_MFU = 0.10  # well-fed training reaches 0.3-0.5 of a measured peak
TINY_BATCH_TOKENS = 4096  # tokens per forward pass below which kernels are too small to fill a device
COMMUNICATION_SHARE = 0.15  # collectives not hidden behind compute


@dataclass(frozen=True)
class Finding:
    what: str  # the bottleneck, e.g. "data loader"
    share: float  # of the average step
    detail: str  # the number behind it and the fix to try, in plain words


@dataclass(frozen=True)
class Facts:
    """What the rules read besides the step timing; None where unknown."""

    workers: int = 0
    batch_size: int = 1  # per device, per forward pass
    tokens_per_batch: float | None = None
    mfu: float | None = None
    profile: dict = field(default_factory=dict)  # profile/summary.json, when the run was profiled


def step_split(records: list[dict]) -> dict[str, float]:
    """Average seconds per step in each phase over the run; the first window (warm-up) is left out."""
    timed = steady(records)
    if not timed:
        return {}
    split = {phase: sum(r[f"{phase}_s"] for r in timed) / len(timed) for phase in PHASES}
    return split | {"step": sum(split.values())}


def steady(records: list[dict]) -> list[dict]:
    """The timed records after the first window, which pays for warm-up."""
    timed = [r for r in records if "step_s" in r]
    return timed[1:] or timed


def diagnose(records: list[dict], facts: Facts = Facts()) -> list[Finding]:
    """The findings for a run's metric records, biggest share first; empty when nothing stands out."""
    split = step_split(records)
    if not split or not split["step"]:
        return []
    found = [
        *_data_and_optimizer(split, facts),
        *_small_batch(split, facts),
        *_communication(split, facts),
        *_cpu_fallback(split, facts),
    ]
    return sorted(found, key=lambda f: f.share, reverse=True)


def _data_and_optimizer(split: dict, facts: Facts) -> list[Finding]:
    step, found = split["step"], []
    data, optimizer = split["data_wait"] / step, split["optimizer"] / step
    if data > DATA_SHARE:
        found.append(Finding("data loader", data, (
            f"the data loader takes {data:.0%} of each step ({split['data_wait'] * 1e3:.0f} of "
            f"{step * 1e3:.0f} ms): raise train.dataloader_num_workers (now {facts.workers}), tokenize once "
            "before training, or make the per-sample transform cheaper"
        )))  # fmt: skip
    if optimizer > OPTIMIZER_SHARE:
        found.append(Finding("optimizer", optimizer, (
            f"the optimizer step takes {optimizer:.0%} of each step: try train.optim: adamw_torch_fused "
            "(one fused kernel), or an adapter (LoRA) so fewer weights are updated"
        )))  # fmt: skip
    return found


def _small_batch(split: dict, facts: Facts) -> list[Finding]:
    """Low MFU while computing (not while waiting for data) with few tokens per forward pass."""
    tokens, busy = facts.tokens_per_batch, (split["compute"] + split["optimizer"]) / split["step"]
    if facts.mfu is None or tokens is None or not busy or tokens >= TINY_BATCH_TOKENS:
        return []
    computing = facts.mfu / busy
    if computing >= LOW_MFU:
        return []
    return [Finding("small batch", 0.0, (  # not a share of the step: listed after those that are
        f"while it computes, the model uses {computing:.1%} of the device's measured peak (MFU {facts.mfu:.1%} "
        f"over the whole step) with {tokens:,.0f} tokens per forward pass: raise "
        f"train.per_device_train_batch_size (now {facts.batch_size}) and lower train.gradient_accumulation_steps "
        "to keep the same effective batch; bigger matrices keep the device busy"
    ))]  # fmt: skip


def _communication(split: dict, facts: Facts) -> list[Finding]:
    ms = facts.profile.get("communication_ms_per_step") or 0.0
    share = ms / (split["step"] * 1e3)
    if share <= COMMUNICATION_SHARE:
        return []
    return [Finding("communication", share, (
        f"communication between devices takes {share:.0%} of each step ({ms:.0f} ms not hidden behind "
        "compute): raise train.gradient_accumulation_steps so gradients are exchanged less often, "
        "or use fewer devices per run"
    ))]  # fmt: skip


def _cpu_fallback(split: dict, facts: Facts) -> list[Finding]:
    fallen = facts.profile.get("cpu_fallback") or []
    if not fallen:
        return []
    ms = sum(f["ms"] for f in fallen) / max(facts.profile.get("steps") or 1, 1)
    names = ", ".join(f["operator"] for f in fallen[:3]) + (" ..." if len(fallen) > 3 else "")
    return [Finding("CPU fallback", ms / (split["step"] * 1e3), (
        f"{len(fallen)} operator(s) fell back to the CPU ({names}; {ms:.0f} ms per step): each call "
        "copies its tensors to the host and back. Update torch_npu and CANN, or avoid the operator "
        "(the trace's call stacks, profile.with_stack, show where it is called)"
    ))]  # fmt: skip


def as_records(findings: list[Finding]) -> list[dict[str, Any]]:
    return [asdict(f) for f in findings]
