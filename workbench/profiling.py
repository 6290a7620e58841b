"""What a profiled window leaves behind, read back: profile/summary.json and the text report.

The window itself is recorded by workbench.profile_window while a run trains.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workbench import devices

FOLDER = "profile"
TOP = 15  # operators kept in the summary


def summarise(profiler: Any, device: devices.Device) -> dict:
    """Top operators by self time (host and device, in ms) and the peak memory of the profiled window."""
    try:
        averages = profiler.key_averages()
    except (AttributeError, RuntimeError, AssertionError):  # torch_npu keeps its tables on disk
        averages = []
    rows = [
        {
            "operator": a.key,
            "calls": a.count,
            "host_ms": round(a.self_cpu_time_total / 1e3, 3),
            "device_ms": round(getattr(a, "self_device_time_total", 0) / 1e3, 3),
        }
        for a in averages
    ]
    rows.sort(key=lambda r: r["host_ms"] + r["device_ms"], reverse=True)
    return {"top_operators": rows[:TOP], "peak_memory_mb": round(devices.peak_memory(device) / 2**20, 1)}


def read(run_dir: str | Path) -> dict:
    """A run's profile summary, or {} when it was not profiled."""
    path = Path(run_dir) / FOLDER / "summary.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def report(run_dir: str | Path) -> str:
    """Where a run's time went, as text: step split, throughput, memory, top operators, diagnosis."""
    from workbench import runs

    run_dir, summary = Path(run_dir), runs.summary(run_dir)
    profile, split = read(run_dir), summary.get("step_split_s") or {}
    lines = [f"profile of {run_dir} ({profile.get('backend', 'step timing only')})"]
    if split.get("step"):
        shares = " | ".join(f"{LABELS[k]} {split[k] / split['step']:.0%}" for k in LABELS)
        lines.append(f"average step {split['step'] * 1e3:.0f} ms: {shares}")
    if summary.get("tokens_per_second"):
        lines.append(f"throughput: {summary['tokens_per_second']:,.0f} tokens/s")
    if profile:
        lines.append(f"peak memory in the profiled steps: {profile['peak_memory_mb']:,.0f} MB")
        lines += [
            "top operators by self time:",
            f"  {'operator':<48} {'calls':>6} {'host ms':>9} {'device ms':>9}",
        ]
        lines += [f"  {r['operator'][:48]:<48} {r['calls']:>6} {r['host_ms']:>9.1f} {r['device_ms']:>9.1f}"
                  for r in profile["top_operators"]]  # fmt: skip
    findings = summary.get("diagnosis") or []
    lines += ["diagnosis:"] + ([f"  - {f['detail']}" for f in findings] or ["  nothing stands out"])
    lines += [f"note: {n}" for n in summary.get("profile_notes") or profile.get("notes", [])]
    if any((run_dir / FOLDER).glob("*.json")):
        lines.append(
            f"traces: {run_dir / FOLDER} (tensorboard --logdir it, or a *.pt.trace.json in ui.perfetto.dev)"
        )
    return "\n".join(lines)


LABELS = {"data_wait": "data wait", "compute": "forward+backward", "optimizer": "optimizer", "other": "other"}
