"""What a profiled window leaves behind, read back: profile/summary.json and the text report.

The window itself is recorded by workbench.profile_window while a run trains.
"""

from __future__ import annotations

import json
from pathlib import Path

from workbench import traces

FOLDER = "profile"
TOP = 15  # operators kept in the summary


def summarise(folder: Path, steps: int, peak_mb: float | None) -> dict:
    """What the window recorded, read from its files: top operators by self time (host and device ms),
    peak memory, the memory timeline, operators that fell back to the CPU, and communication per step."""
    events = traces.chrome_events(folder)
    device_steps = traces.ascend_steps(folder)  # torch_npu's own split of the device's time
    communication = device_steps.get("communication", traces.communication_ms(events) / steps)
    timeline = traces.ascend_memory(folder) or traces.memory_timeline(events)
    return {
        "top_operators": _top(traces.ascend_operators(folder) or traces.operators(events)),
        "peak_memory_mb": max([peak_mb or 0.0, *timeline.get("allocated_mb", [])]),
        "memory_timeline": timeline,
        "cpu_fallback": traces.fallback_operators(events),
        "communication_ms_per_step": round(communication, 3),
        "device_step_ms": device_steps,
        "steps": steps,
    }


def _top(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: r["host_ms"] + r["device_ms"], reverse=True)[:TOP]


def read(run_dir: str | Path) -> dict:
    """A run's profile summary, or {} when it was not profiled."""
    path = Path(run_dir) / FOLDER / "summary.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def report(run_dir: str | Path) -> str:
    """Where a run's time went, as text: step split, throughput, MFU, memory, top operators, diagnosis."""
    from workbench import runs

    run_dir, summary = Path(run_dir), runs.summary(run_dir)
    profile, split = read(run_dir), summary.get("step_split_s") or {}
    lines = [f"profile of {run_dir} ({profile.get('backend', 'step timing only')})"]
    if split.get("step"):
        shares = " | ".join(f"{LABELS[k]} {split[k] / split['step']:.0%}" for k in LABELS)
        lines.append(f"average step {split['step'] * 1e3:.0f} ms: {shares}")
    lines += _speed_lines(summary) + _profile_lines(profile)
    findings = summary.get("diagnosis") or []
    lines += ["diagnosis:"] + ([f"  - {f['detail']}" for f in findings] or ["  nothing stands out"])
    lines += [f"note: {n}" for n in summary.get("profile_notes") or profile.get("notes", [])]
    if any((run_dir / FOLDER).glob("*.json")) or any((run_dir / FOLDER).glob(traces.ASCEND)):
        lines.append(
            f"traces: {run_dir / FOLDER} (tensorboard --logdir it, or a *.pt.trace.json in ui.perfetto.dev)"
        )
    return "\n".join(lines)


def _speed_lines(summary: dict) -> list[str]:
    parts = [f"{summary[k]:,.{d}f} {unit}" for k, unit, d in
             (("tokens_per_second", "tokens/s", 0), ("samples_per_second", "samples/s", 1)) if summary.get(k)]  # fmt: skip
    lines = [f"throughput: {', '.join(parts)}"] if parts else []
    if summary.get("mfu") is not None:
        lines.append(f"MFU: {summary['mfu']:.1%} ({summary['model_tflops'] * 1e3:,.1f} of "
                     f"{summary['peak_tflops'] * 1e3:,.1f} GFLOP/s, {summary['peak_source']})")  # fmt: skip
    return lines


def _profile_lines(profile: dict) -> list[str]:
    if not profile:
        return []
    lines = describe(profile)
    lines += [
        "top operators by self time:",
        f"  {'operator':<48} {'calls':>6} {'host ms':>9} {'device ms':>9}",
    ]
    return lines + [f"  {r['operator'][:48]:<48} {r['calls']:>6} {r['host_ms']:>9.1f} {r['device_ms']:>9.1f}"
                    for r in profile["top_operators"]]  # fmt: skip


def describe(profile: dict) -> list[str]:
    """The profile's memory, the device's own split of its step, and CPU fallbacks, a line each."""
    lines = [f"peak memory in the profiled steps: {profile['peak_memory_mb']:,.0f} MB"]
    timeline = profile.get("memory_timeline") or {}
    if timeline:
        mb = timeline["allocated_mb"]
        lines.append(f"tensor memory over {timeline['ms'][-1]:,.0f} ms: {mb[0]:,.0f} MB at the start, "
                     f"{max(mb):,.0f} MB at most, {mb[-1]:,.0f} MB at the end")  # fmt: skip
    device = profile.get("device_step_ms") or {}
    if device:
        lines.append("the device per step: " + ", ".join(f"{k} {v:,.1f} ms" for k, v in device.items()))
    elif profile.get("communication_ms_per_step"):
        lines.append(f"communication: {profile['communication_ms_per_step']:,.1f} ms per step")
    lines += [f"fell back to the CPU: {f['operator']} ({f['calls']} calls, {f['ms']:,.1f} ms)"
              for f in profile.get("cpu_fallback", [])]  # fmt: skip
    return lines


def operator_table(profile: dict):
    """The top operators as a pandas DataFrame (operator, calls, host ms, device ms)."""
    import pandas as pd

    columns = {"operator": "operator", "calls": "calls", "host_ms": "host ms", "device_ms": "device ms"}
    return pd.DataFrame(profile.get("top_operators", []), columns=list(columns)).rename(columns=columns)


# "other" is the host's work between steps (scheduler, zero_grad, logging): the device idles through it
LABELS = {
    "data_wait": "data wait",
    "compute": "forward+backward",
    "optimizer": "optimizer",
    "other": "idle / other",
}
