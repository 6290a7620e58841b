"""Where a run's time went, inline: the split of each step as stacked bars and in total, throughput and
MFU, the diagnosis, the memory timeline and the top operators.

Reads the run directory only (metrics.jsonl's step timing, summary.json, profile/summary.json), so it
shows runs from the CLI, from another kernel, or profiled on another machine.
"""

from __future__ import annotations

import html
import io
from pathlib import Path

import ipywidgets as w

from widgets.form import note_html
from workbench import profiling, runs
from workbench.diagnosis import PHASES

COLOURS = {"data_wait": "#d62728", "compute": "#1f77b4", "optimizer": "#ff7f0e", "other": "#7f7f7f",
           "communication": "#9467bd"}  # fmt: skip


class ProfileView(w.VBox):
    """`ProfileView(run_dir)`; `show(run_dir)` switches to another run; `.operators` is a DataFrame."""

    def __init__(self, run_dir: str | Path | None = None):
        self.text, self.table = w.HTML(), w.HTML()
        self.bars = _image()
        self.memory = _image()
        self.operators = None  # pandas DataFrame of the top operators, once a profiled run is shown
        super().__init__([self.text, self.bars, self.memory, self.table])
        self.add_class("wb-profile")
        if run_dir is not None:
            self.show(run_dir)

    def show(self, run_dir: str | Path) -> None:
        run_dir = Path(run_dir)
        records = [r for r in runs.read_jsonl(run_dir / "metrics.jsonl") if "step_s" in r]
        summary, profile = runs.summary(run_dir), profiling.read(run_dir)
        _set(self.bars, _bars(records, summary, profile) if records else b"")
        _set(self.memory, _memory(profile.get("memory_timeline") or {}))
        self.text.value = _findings(summary, records)
        self.operators = profiling.operator_table(profile) if profile else None
        self.table.value = _operators(profile, self.operators)


def _image() -> w.Image:
    return w.Image(format="png", layout=w.Layout(max_width="100%", display="none"))


def _set(image: w.Image, png: bytes) -> None:
    image.value = png
    image.layout.display = None if png else "none"


def _findings(summary: dict, records: list[dict]) -> str:
    if not records:
        return note_html("no step timing in this run yet", "#555", indent=False)
    split = summary.get("step_split_s") or {}
    parts = [f"<b>average step {split['step'] * 1e3:.0f} ms</b>"] if split.get("step") else []
    parts += [f"{profiling.LABELS[p]} {split[p] / split['step']:.0%}" for p in PHASES if split.get("step")]
    for key, text in (("tokens_per_second", "{:,.0f} tokens/s"), ("samples_per_second", "{:,.1f} samples/s")):
        if summary.get(key):
            parts.append(text.format(summary[key]))
    if summary.get("mfu") is not None:
        tip = html.escape(
            f"{summary['model_tflops']:.4f} of {summary['peak_tflops']:.4f} TFLOP/s, {summary['peak_source']}"
        )
        parts.append(f"<span title='{tip}'>MFU {summary['mfu']:.1%}</span>")
    findings = summary.get("diagnosis") or []
    said = [note_html(f"▶ {f['detail']}", "#b00020", indent=False) for f in findings]
    if summary and not findings:
        said = [note_html("nothing stands out", "#2e7d32", indent=False)]
    return " · ".join(parts) + "".join(said)


def _bars(records: list[dict], summary: dict, profile: dict) -> bytes:
    """One stacked bar per logged window (ms per step by phase), and the run's average beside them, with
    communication taken out of forward+backward where a profile measured it."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.5, 2.6), layout="constrained")
    steps_axis, total_axis = figure.subplots(1, 2, width_ratios=[6, 1], sharey=True)
    steps = [r["step"] for r in records]
    width = 0.8 * min((b - a for a, b in zip(steps, steps[1:], strict=False)), default=1)
    _stack(steps_axis, steps, {p: [r.get(f"{p}_s", 0.0) * 1e3 for r in records] for p in PHASES}, width)
    split = summary.get("step_split_s") or {}
    if split.get("step"):
        average = {p: [split[p] * 1e3] for p in PHASES}
        talk = min(profile.get("communication_ms_per_step") or 0.0, average["compute"][0])
        average["compute"][0] -= talk
        _stack(total_axis, ["average"], average | {"communication": [talk]}, 0.6)
    steps_axis.set_xlabel("step", fontsize=8)
    steps_axis.set_ylabel("ms per step", fontsize=8)
    handles, labels = steps_axis.get_legend_handles_labels()
    more = [
        (h, lab) for h, lab in zip(*total_axis.get_legend_handles_labels(), strict=True) if lab not in labels
    ]
    figure.legend(handles + [h for h, _ in more], labels + [lab for _, lab in more], fontsize=7, ncols=5,
                  loc="outside upper center")  # fmt: skip
    return _png(figure)


def _stack(axis, xs: list, heights: dict[str, list[float]], width: float) -> None:
    bottom = [0.0] * len(xs)
    for phase, values in heights.items():
        if phase == "communication" and not any(values):
            continue
        label = profiling.LABELS.get(phase, phase)
        axis.bar(xs, values, width, bottom=bottom, label=label, color=COLOURS[phase])
        bottom = [b + h for b, h in zip(bottom, values, strict=True)]
    axis.tick_params(labelsize=7)


def _memory(timeline: dict) -> bytes:
    """Tensor memory over the profiled steps, where the profiler recorded it."""
    if not timeline:
        return b""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.5, 2.0), layout="constrained")
    axis = figure.subplots()
    axis.plot(timeline["ms"], timeline["allocated_mb"], color="#2ca02c", linewidth=1)
    axis.set_xlabel("ms into the profiled steps", fontsize=8)
    axis.set_ylabel("allocated MB", fontsize=8)
    axis.set_title("memory timeline", fontsize=8)
    axis.tick_params(labelsize=7)
    return _png(figure)


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=72)
    return buffer.getvalue()


def _operators(profile: dict, table) -> str:
    if not profile:
        return note_html(
            "not profiled: turn on profile.enabled (or the Run panel's toggle) for operators", "#555", False
        )
    lines = [*profiling.describe(profile), f"recorded by {profile['backend']}"]
    notes = "".join(note_html(n, "#8a6d00", indent=False) for n in profile.get("notes", []))
    said = "<br>".join(html.escape(line) for line in lines)
    rows = table.to_html(index=False, float_format="{:,.1f}".format, border=0, justify="left")
    return f"<b>top operators by self time</b>{rows}{said}{notes}"
