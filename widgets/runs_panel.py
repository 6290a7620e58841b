"""The runs panel: past runs under a folder, several runs' curves in one plot, one run's record.

Everything shown is read from the run directories (DESIGN 3.2), so runs started from the CLI, from
another kernel or still running appear the same way; Refresh reads the disk again.
"""

from __future__ import annotations

import html
import json
import time
from pathlib import Path

import ipywidgets as w

from widgets import plots
from widgets.form import Field, shown_path
from workbench import runs

COLUMNS = {"name": "run", "status": "status", "method": "method", "adapter": "adapter", "steps": "steps",
           "final_loss": "final loss", "effect": "held-out effect", "wall_time_s": "wall time (s)",
           "started": "started"}  # fmt: skip
# Curves every method logs under the same name (DESIGN 3.4), offered whenever a run logged them.
SHARED = (*plots.CURVES, *plots.PAIRED.values(), "grad_norm", "tokens_per_second")
# The x axis and its stand-ins, counters and the step timer's internals: logged, but not curves to compare.
NOT_CURVES = ("step", "epoch", "elapsed_s", "max_steps", "num_tokens", "total_flos", "data_share")
EMPTY = "No runs yet: train one in the Run tab or with `workbench train recipes/quickstart.yaml`"
LAST_RECORDS = 5


class RunsPanel(w.VBox):
    """Past runs: a table, an overlay of one metric for the runs chosen, and one run's record."""

    def __init__(self, root: str | Path = "runs"):
        self.root = Field(w.Text(value=str(root), continuous_update=False), "Runs folder")
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.table = w.HTML(layout=w.Layout(width="100%", overflow_x="auto"))
        self.chosen = Field(w.SelectMultiple(rows=6), "Compare runs", tip="ctrl/shift-click for several")
        self.metric = Field(w.Dropdown(options=["loss"], value="loss"), "Metric")
        self.plot = w.Image(format="png", layout=w.Layout(max_width="100%", display="none"))
        self.run = Field(w.Dropdown(), "View run")
        self.details = w.HTML()
        self._quiet = False  # set while the panel itself changes values, so observers do not echo
        super().__init__([self.root, self.refresh_button, self.table, self.chosen, self.metric, self.plot,
                          self.run, self.details])  # fmt: skip
        self.add_class("wb-runs")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.root.control.observe(lambda _: self.refresh(), names="value")
        self.chosen.control.observe(self._on_compare, names="value")
        self.metric.control.observe(self._on_compare, names="value")
        self.run.control.observe(self._on_view, names="value")
        self.refresh()

    def refresh(self) -> list[dict]:
        """Read the runs folder again; returns the rows shown."""
        folder = Path(self.root.value).expanduser()
        rows = runs.listing(folder) if folder.is_dir() else []
        for row in rows:
            row["status"] = _status(row["path"], row["status"])
        self.root.show(hint=f"{len(rows)} run(s) there" if rows else None)  # a fresh install has no folder
        self.table.value = (
            _table(list(COLUMNS.values()), [[r[k] for k in COLUMNS] for r in rows]) if rows else _note(EMPTY)
        )
        options = [(r["name"], str(r["path"])) for r in rows]
        self._quietly(lambda: self._set_options(options))
        return rows

    def _set_options(self, options: list[tuple[str, str]]) -> None:
        known = {v for _, v in options}
        chosen, viewed = [v for v in self.chosen.value if v in known], self.run.value
        self.chosen.control.options = self.run.control.options = options
        self.chosen.value, self.run.value = chosen, viewed if viewed in known else None

    def compare(self, run_names_or_dirs: list[str | Path], metric: str = "loss") -> bytes:
        """Draw `metric` of these runs (folder names under the root, or paths) in one plot; returns the PNG."""
        dirs = [self._dir(r) for r in run_names_or_dirs]
        curves = {d.name: runs.read_jsonl(d / "metrics.jsonl") for d in dirs}
        present = _metrics(curves.values())
        self._quietly(lambda: self._show_choice([str(d) for d in dirs], present, metric))
        problem = _problem(dirs, present, metric)
        lacking = [d.name for d in dirs if not any(metric in r for r in curves[d.name])]
        hint = f"not logged by {', '.join(lacking)}" if lacking else None
        self.metric.show(error=problem, hint=hint if dirs else "choose runs to compare")
        self.plot.value = b"" if problem or not dirs else plots.overlay(curves, metric)
        self.plot.layout.display = None if self.plot.value else "none"  # an empty Image shows a broken icon
        return bytes(self.plot.value)

    def _show_choice(self, dirs: list[str], present: list[str], metric: str) -> None:
        self.metric.control.options = list(dict.fromkeys([*present, metric]))
        self.metric.value = metric
        options = {v for _, v in self.chosen.control.options}
        self.chosen.value = [d for d in dirs if d in options]

    def _on_compare(self, _change=None) -> None:
        if not self._quiet:
            self.compare(self.chosen.value, self.metric.value or "loss")

    def _on_view(self, change) -> None:
        if change["new"] and not self._quiet:
            self.view(change["new"])

    def view(self, run_dir: str | Path) -> None:
        """Show one run's summary, events and last metric records (read-only)."""
        path = self._dir(run_dir)
        if str(path) in {v for _, v in self.run.control.options}:
            self._quietly(lambda: setattr(self.run, "value", str(path)))
        problem = None if (path / "events.jsonl").is_file() else f"not a run folder: {shown_path(path)}"
        self.run.show(error=problem, hint=f"{path.name}: {_status(path, runs.status(path))}")
        self.details.value = "" if problem else _record(path)

    def _dir(self, run: str | Path) -> Path:
        path = Path(run).expanduser()
        return path if path.is_dir() else Path(self.root.value).expanduser() / str(run)

    def _quietly(self, change) -> None:
        self._quiet = True
        try:
            change()
        finally:
            self._quiet = False


def _metrics(curves) -> list[str]:
    """Curves the runs logged: the shared names first (loss leads), then other numbers that vary by step.

    A value logged once (train_runtime, total_flos in the trainer's last record) is not a curve.
    """
    found = set()
    for records in curves:
        values: dict[str, set] = {}
        for r in records:
            for k, v in r.items():
                if isinstance(v, int | float) and not isinstance(v, bool):
                    values.setdefault(k, set()).add(v)
        found |= {k for k, seen in values.items() if k in SHARED or len(seen) > 1}
    found = {k for k in found if k not in NOT_CURVES and not _timing(k)}
    return sorted(found, key=lambda k: (SHARED.index(k) if k in SHARED else len(SHARED), k))


def _timing(key: str) -> bool:
    """The step timer's parts (compute_s, data_wait_s) and the trainer's runtime figures."""
    return key.endswith("_s") or "runtime" in key or (key.endswith("_per_second") and key not in SHARED)


def _status(path: Path, status: str) -> str:
    """A run's status; a failed run says why (the reason of its last error event)."""
    reason = runs.failure(path) if status == "failed" else None
    return f"failed: {_cell(reason)[:300]}" if reason else status


def _problem(dirs: list[Path], present: list[str], metric: str) -> str | None:
    missing = [d.name for d in dirs if not (d / "events.jsonl").is_file()]
    if missing:
        return f"not a run folder: {', '.join(missing)}"
    return f"no chosen run logged {metric}" if dirs and metric not in present else None


def _record(path: Path) -> str:
    """A run's summary, events and last metric records as HTML tables."""
    s = {k: v for k, v in runs.summary(path).items() if k != "eval_examples"}
    events = [_event(e) for e in runs.read_jsonl(path / "events.jsonl")]
    last = runs.read_jsonl(path / "metrics.jsonl")[-LAST_RECORDS:]
    keys = list(dict.fromkeys(k for record in last for k in record))
    return (
        f"<b>summary</b>{_table(['field', 'value'], [[k, v] for k, v in s.items()])}"
        f"<b>events</b>{_table(['time', 'event', 'reason', 'details'], events)}"
        f"<b>last {len(last)} metric records</b>{_table(keys, [[r.get(k) for k in keys] for r in last])}"
    )


def _event(e: dict) -> list:
    moment = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e["time"])) if "time" in e else ""
    details = ", ".join(f"{k}={v}" for k, v in e.items() if k not in ("time", "event", "reason"))
    return [moment, e.get("event", ""), e.get("reason", ""), details]


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict | list):
        value = json.dumps(value, default=str)
        value = value if len(value) <= 160 else value[:160] + "…"
    return "" if value is None else str(value)


def _note(text: str) -> str:
    return f'<div style="color:#555">{html.escape(text)}</div>'


def _table(headers: list[str], rows: list[list]) -> str:
    """Rows as an HTML table; the first column (a run's name, a field, a time) never wraps."""
    if not rows:
        return _note("(none)")
    head = "".join(f"<th style='text-align:left;padding:2px 8px'>{html.escape(h)}</th>" for h in headers)
    cell = "<td style='padding:2px 8px{}'>{}</td>"
    body = "".join(
        "<tr>"
        + "".join(
            cell.format(";white-space:nowrap" * (i == 0), html.escape(_cell(v))) for i, v in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table class='wb-table'><tr>{head}</tr>{body}</table>"
