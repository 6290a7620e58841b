"""Where a run's time went, inline: the split of each step as stacked bars, the diagnosis, the top operators.

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

COLOURS = {"data_wait": "#d62728", "compute": "#1f77b4", "optimizer": "#ff7f0e", "other": "#7f7f7f"}


class ProfileView(w.VBox):
    """`ProfileView(run_dir)`; `show(run_dir)` switches to another run."""

    def __init__(self, run_dir: str | Path | None = None):
        self.text, self.table = w.HTML(), w.HTML()
        self.bars = w.Image(format="png", layout=w.Layout(max_width="100%", display="none"))
        super().__init__([self.text, self.bars, self.table])
        self.add_class("wb-profile")
        if run_dir is not None:
            self.show(run_dir)

    def show(self, run_dir: str | Path) -> None:
        run_dir = Path(run_dir)
        records = [r for r in runs.read_jsonl(run_dir / "metrics.jsonl") if "step_s" in r]
        self.bars.value = _bars(records) if records else b""
        self.bars.layout.display = None if records else "none"
        self.text.value = _findings(runs.summary(run_dir), records)
        self.table.value = _operators(profiling.read(run_dir))


def _findings(summary: dict, records: list[dict]) -> str:
    if not records:
        return note_html("no step timing in this run yet", "#555", indent=False)
    split = summary.get("step_split_s") or {}
    parts = [f"<b>average step {split['step'] * 1e3:.0f} ms</b>"] if split.get("step") else []
    parts += [f"{profiling.LABELS[p]} {split[p] / split['step']:.0%}" for p in PHASES if split.get("step")]
    if summary.get("tokens_per_second"):
        parts.append(f"{summary['tokens_per_second']:,.0f} tokens/s")
    findings = summary.get("diagnosis") or []
    said = [note_html(f"▶ {f['detail']}", "#b00020", indent=False) for f in findings]
    if summary and not findings:
        said = [note_html("nothing stands out", "#2e7d32", indent=False)]
    return " · ".join(parts) + "".join(said)


def _bars(records: list[dict]) -> bytes:
    """One stacked bar per logged window (seconds per step by phase)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.0, 2.6), layout="constrained")
    axis = figure.subplots()
    steps, bottom = [r["step"] for r in records], [0.0] * len(records)
    width = 0.8 * min((b - a for a, b in zip(steps, steps[1:], strict=False)), default=1)
    for phase in PHASES:
        heights = [r.get(f"{phase}_s", 0.0) * 1e3 for r in records]
        axis.bar(steps, heights, width, bottom=bottom, label=profiling.LABELS[phase], color=COLOURS[phase])
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    axis.set_xlabel("step", fontsize=8)
    axis.set_ylabel("ms per step", fontsize=8)
    axis.legend(fontsize=7, ncols=4, loc="upper center", bbox_to_anchor=(0.5, 1.2))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=72)
    return buffer.getvalue()


def _operators(profile: dict) -> str:
    if not profile:
        return note_html(
            "not profiled: turn on profile.enabled (or the Run panel's toggle) for operators", "#555", False
        )
    head = "<tr><th>operator</th><th>calls</th><th>host ms</th><th>device ms</th></tr>"
    rows = "".join(
        f"<tr><td>{html.escape(r['operator'])}</td><td>{r['calls']}</td><td>{r['host_ms']:.1f}</td>"
        f"<td>{r['device_ms']:.1f}</td></tr>"
        for r in profile["top_operators"]
    )
    notes = "".join(note_html(n, "#8a6d00", indent=False) for n in profile.get("notes", []))
    memory = f"peak memory in the profiled steps: {profile['peak_memory_mb']:,.0f} MB ({profile['backend']})"
    return f"<b>top operators by self time</b><table>{head}{rows}</table>{html.escape(memory)}{notes}"
