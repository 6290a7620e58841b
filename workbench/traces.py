"""Reading what a profiler left on disk: Chrome traces and torch_npu's analysed tables.

torch.profiler writes <worker>.pt.trace.json. torch_npu's offline analysis writes, per worker,
<worker>_ascend_pt/ASCEND_PROFILER_OUTPUT/ holding trace_view.json (the same Chrome format),
operator_details.csv (a row per operator call, host and device self time in us), step_trace_time.csv
(per step: Computing, Communication(Not Overlapped), Free, in us) and memory_record.csv (Total
Allocated(MB) over Timestamp(us)). Everything here is plain json and csv: no torch.
"""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from pathlib import Path

FALLBACK_MARK = "aten::_to_cpu"  # at::native::cpu_fallback copies an operator's inputs to the host with it
COMMUNICATION = re.compile(r"nccl|hccl|hcom", re.IGNORECASE)  # collective kernels on the device
POINTS = 200  # memory timeline points kept (the peak always among them)
ASCEND = "*_ascend_pt/ASCEND_PROFILER_OUTPUT"
HOST = ("cpu_op", "user_annotation")  # host spans: operators, and the trainer's own annotations


def chrome_events(folder: Path) -> list[dict]:
    """The events of every Chrome trace in a profile folder (torch's and torch_npu's)."""
    events = []
    for path in [*folder.glob("*.pt.trace.json"), *folder.glob(f"{ASCEND}/trace_view.json")]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        events += data.get("traceEvents", []) if isinstance(data, dict) else data
    return [e for e in events if isinstance(e, dict)]


def operators(events: list[dict]) -> list[dict]:
    """Per operator: calls, host self time (its span less its children's on the same thread) and device
    time of the kernels it launched (matched by External id), in ms. What key_averages() gives, from the
    trace, in a tenth of the time."""
    spans = [e for e in events if e.get("ph") == "X" and e.get("cat") in HOST and "dur" in e]
    inner = _children_time(spans)
    launched: dict = defaultdict(float)
    for kernel in (e for e in events if e.get("cat") == "kernel" and "dur" in e):
        launched[kernel.get("args", {}).get("External id")] += kernel["dur"]
    total: dict[str, dict] = {}
    for span in spans:
        name = re.sub(r"^ProfilerStep#\d+$", "ProfilerStep*", span["name"])
        entry = total.setdefault(name, {"operator": name, "calls": 0, "host_ms": 0.0, "device_ms": 0.0})
        entry["calls"] += 1
        entry["host_ms"] += (span["dur"] - inner[id(span)]) / 1e3
        entry["device_ms"] += launched.get(span.get("args", {}).get("External id"), 0.0) / 1e3
    return [_rounded(e) for e in total.values()]


def _children_time(spans: list[dict]) -> dict[int, float]:
    """Microseconds of each span spent in its direct children, thread by thread."""
    inner: dict[int, float] = defaultdict(float)
    threads = defaultdict(list)
    for span in spans:
        threads[(span.get("pid"), span.get("tid"))].append(span)
    for thread in threads.values():
        open_spans: list[dict] = []
        for span in sorted(thread, key=lambda s: (s["ts"], -s["dur"])):
            while open_spans and open_spans[-1]["ts"] + open_spans[-1]["dur"] <= span["ts"]:
                open_spans.pop()
            if open_spans:
                inner[id(open_spans[-1])] += span["dur"]
            open_spans.append(span)
    return inner


def memory_timeline(events: list[dict]) -> dict:
    """{"ms": [...], "allocated_mb": [...]} from the profiler's [memory] events (profile_memory on).

    An accelerator's allocations are preferred to the host's; on the host they count from the window's
    start. Empty when no memory was recorded."""
    marks = [e for e in events if e.get("name") == "[memory]" and "Total Allocated" in e.get("args", {})]
    on_device = [e for e in marks if e["args"].get("Device Type", 0) != 0]
    marks = sorted(on_device or marks, key=lambda e: e["ts"])
    points = [(float(e["ts"]) / 1e3, e["args"]["Total Allocated"] / 2**20) for e in marks]
    return _timeline(points)


def fallback_operators(events: list[dict]) -> list[dict]:
    """Operators that ran on the CPU instead of the device: each encloses an aten::_to_cpu copy."""
    spans = [e for e in events if e.get("ph") == "X" and "dur" in e and e.get("cat") != "kernel"]
    by_thread = defaultdict(list)
    for span in spans:
        by_thread[(span.get("pid"), span.get("tid"))].append(span)
    found: dict[str, list[float]] = defaultdict(list)
    for mark in (e for e in spans if e.get("name") == FALLBACK_MARK):
        around = [s for s in by_thread[(mark.get("pid"), mark.get("tid"))] if _encloses(s, mark)]
        if around:
            parent = min(around, key=lambda s: s["dur"])
            found[parent["name"]].append(parent["dur"] / 1e3)
    return sorted(
        ({"operator": name, "calls": len(ms), "ms": round(sum(ms), 3)} for name, ms in found.items()),
        key=lambda r: r["ms"],
        reverse=True,
    )


def communication_ms(events: list[dict]) -> float:
    """Milliseconds of collective kernels (NCCL, HCCL) on the device in the trace."""
    kernels = (e for e in events if e.get("cat") == "kernel" and COMMUNICATION.search(e.get("name", "")))
    return sum(e.get("dur", 0) for e in kernels) / 1e3


def ascend_operators(folder: Path) -> list[dict]:
    """Operators summed over their calls from operator_details.csv (host and device self time, ms)."""
    total: dict[str, dict] = {}
    for row in _rows(folder, "operator_details.csv"):
        entry = total.setdefault(
            row["Name"], {"operator": row["Name"], "calls": 0, "host_ms": 0.0, "device_ms": 0.0}
        )
        entry["calls"] += 1
        entry["host_ms"] += _number(row.get("Host Self Duration(us)")) / 1e3
        entry["device_ms"] += _number(row.get("Device Self Duration(us)")) / 1e3
    return [
        {**e, "host_ms": round(e["host_ms"], 3), "device_ms": round(e["device_ms"], 3)}
        for e in total.values()
    ]


def ascend_steps(folder: Path) -> dict:
    """The device's average step in ms from step_trace_time.csv: computing, communication, free."""
    rows = _rows(folder, "step_trace_time.csv")
    columns = {"computing": "Computing", "communication": "Communication(Not Overlapped)", "free": "Free"}
    if not rows:
        return {}
    return {k: round(sum(_number(r.get(c)) for r in rows) / len(rows) / 1e3, 3) for k, c in columns.items()}


def ascend_memory(folder: Path) -> dict:
    """The memory timeline from memory_record.csv: the framework's (PTA) allocations on the NPU."""
    rows = [r for r in _rows(folder, "memory_record.csv") if str(r.get("Device Type", "")).startswith("NPU")]
    framework = [r for r in rows if r.get("Component") == "PTA"] or rows
    points = sorted((_number(r["Timestamp(us)"]) / 1e3, _number(r["Total Allocated(MB)"])) for r in framework)
    return _timeline(points)


def _rounded(entry: dict) -> dict:
    return {**entry, "host_ms": round(entry["host_ms"], 3), "device_ms": round(entry["device_ms"], 3)}


def _timeline(points: list[tuple[float, float]]) -> dict:
    if not points:
        return {}
    if len(points) > POINTS:  # keep each bucket's highest point, so the peak survives
        size = len(points) / POINTS
        buckets = [points[int(i * size) : int((i + 1) * size)] for i in range(POINTS)]
        points = [max(b, key=lambda p: p[1]) for b in buckets if b]
    start = points[0][0]
    return {"ms": [round(t - start, 3) for t, _ in points], "allocated_mb": [round(m, 3) for _, m in points]}


def _encloses(outer: dict, inner: dict) -> bool:
    return (
        outer is not inner
        and outer.get("name") != FALLBACK_MARK
        and (outer["ts"] <= inner["ts"] and inner["ts"] + inner["dur"] <= outer["ts"] + outer["dur"])
    )


def _rows(folder: Path, name: str) -> list[dict]:
    rows = []
    for path in folder.glob(f"{ASCEND}/{name}"):
        with path.open(newline="", encoding="utf-8") as handle:
            rows += [
                {k.strip(): (v or "").strip() for k, v in r.items() if k} for r in csv.DictReader(handle)
            ]
    return rows


def _number(text) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return 0.0
