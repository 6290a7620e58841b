"""Why a run is slow, in plain words: the number behind each finding and the fix to try.

Reads the step timing every run records (workbench.steptimes) from metrics.jsonl, so it works for any
finished or running run, profiled or not.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

PHASES = ("data_wait", "compute", "optimizer", "other")  # of each optimizer step (workbench.steptimes)
DATA_SHARE = 0.20  # above this the data loader, not the device, sets the pace
OPTIMIZER_SHARE = 0.30


@dataclass(frozen=True)
class Finding:
    what: str  # the bottleneck, e.g. "data loader"
    share: float  # of the average step
    detail: str  # the number behind it and the fix to try, in plain words


def step_split(records: list[dict]) -> dict[str, float]:
    """Average seconds per step in each phase over the run; the first window (warm-up) is left out."""
    timed = [r for r in records if "step_s" in r]
    timed = timed[1:] or timed
    if not timed:
        return {}
    split = {phase: sum(r[f"{phase}_s"] for r in timed) / len(timed) for phase in PHASES}
    return split | {"step": sum(split.values())}


def diagnose(records: list[dict], workers: int = 0) -> list[Finding]:
    """The findings for a run's metric records, biggest share first; empty when nothing stands out."""
    split = step_split(records)
    if not split or not split["step"]:
        return []
    step, found = split["step"], []
    data, optimizer = split["data_wait"] / step, split["optimizer"] / step
    if data > DATA_SHARE:
        found.append(Finding("data loader", data, (
            f"the data loader takes {data:.0%} of each step ({split['data_wait'] * 1e3:.0f} of "
            f"{step * 1e3:.0f} ms): raise train.dataloader_num_workers (now {workers}), tokenize once "
            "before training, or make the per-sample transform cheaper"
        )))  # fmt: skip
    if optimizer > OPTIMIZER_SHARE:
        found.append(Finding("optimizer", optimizer, (
            f"the optimizer step takes {optimizer:.0%} of each step: try train.optim: adamw_torch_fused "
            "(one fused kernel), or an adapter (LoRA) so fewer weights are updated"
        )))  # fmt: skip
    return sorted(found, key=lambda f: f.share, reverse=True)


def as_records(findings: list[Finding]) -> list[dict[str, Any]]:
    return [asdict(f) for f in findings]
