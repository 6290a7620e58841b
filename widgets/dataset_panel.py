"""The dataset panel: a bundled set, a local file (typed or uploaded) or a hub ID, checked before training."""

from __future__ import annotations

import functools
import html
import typing
from pathlib import Path

import ipywidgets as w

from widgets import form
from widgets.form import DEFAULTS, Field, Panel, showing
from workbench import data, methods, reading
from workbench.config import DataFormat

CUSTOM = "custom"
UNMAPPED = "(as is)"


class DatasetPanel(Panel):
    title = "Dataset"

    def __init__(self, cfg=None, upload_dir: str | Path = "uploads"):
        bundled = reading.bundled_sources("train")
        choices = [*((s, s) for s in bundled), ("a file or hub ID...", CUSTOM)]
        self.source = Field(w.Dropdown(options=choices), "Training data")
        self.source.control.add_class("wb-dataset-source")
        where = "data/train.jsonl, a folder, or owner/dataset on the hub"
        self.path = Field(w.Text(placeholder=where, continuous_update=False), "File or hub ID")
        self.upload = w.FileUpload(accept=".jsonl,.json,.csv,.parquet", description="Upload a small file")
        self.eval = form.text("Held-out data", "data.eval", placeholder="optional held-out split")
        self.format = Field(w.Dropdown(options=typing.get_args(DataFormat)), "Format", key="data.format")
        self.max_samples = Field(
            w.IntText(),
            "Rows to use (0 = all)",
            key="data.max_samples",
            to_config=lambda v: v or None,
            from_config=lambda v: v or 0,
            check=lambda v: "give 0 (all rows) or a positive number" if v < 0 else None,
        )
        self.mapping = w.VBox()  # one dropdown per field the format needs, when the columns differ
        self.table = w.HTML()
        self.upload_dir, self.accepted, self.method = Path(upload_dir), (), "sft"
        # The user's column -> our field (data.columns), and the source it was made for: a new file starts over.
        self.mapped, self._mapped_for, self._mapping_shown = {}, None, None
        super().__init__(
            [self.source, self.path, self.eval, self.format, self.max_samples],
            [self.upload, self.mapping, self.table],
        )
        self.source.control.observe(self._pair_eval, names="value")
        self.upload.observe(self._uploaded, names="value")
        self.show_config(cfg or DEFAULTS)

    def chosen(self) -> str:
        return self.path.value.strip() if self.source.value == CUSTOM else self.source.value

    def columns(self) -> dict[str, str]:
        """The user's column -> our field (data.columns)."""
        return dict(self.mapped)

    def overrides(self) -> dict:
        return {**super().overrides(), "data.train": self.chosen(), "data.columns": self.columns()}

    def show_config(self, cfg) -> None:
        bundled = cfg.data.train in reading.bundled_sources("train")
        self._filling = True
        self.source.value = cfg.data.train if bundled else CUSTOM
        self.path.value = "" if bundled else cfg.data.train
        self.mapped, self._mapped_for, self._mapping_shown = dict(cfg.data.columns), cfg.data.train, None
        super().show_config(cfg)

    def set_method(self, name: str) -> None:
        """Check the data against what `name` trains on (the Method panel calls this)."""
        self.method, self.accepted = name, data.KINDS[methods.spec(name).data][0]
        self.validate()

    def validate(self) -> None:
        showing(self.path, self.source.value == CUSTOM)
        source = self.chosen()
        if source != self._mapped_for:
            self.mapped, self._mapped_for = {}, source
        if not source or reading.is_hub(source):
            self._map([], None)
            hint = "read when the run starts (needs the network)" if source else None
            self._show(error=None if source else "give a file, a folder or a hub ID", hint=hint)
            return
        found = _survey(
            source, tuple(self.columns().items()), self.format.value, self.accepted, _stamp(source)
        )
        needs_mapping = self.mapped or (found["format"] is None and found["columns"])
        self._map(found["columns"] if needs_mapping else [], found["format"])
        problems = found["problems"]
        error = (
            None if not problems else problems[0] + (f" (+{len(problems) - 1} more)" if problems[1:] else "")
        )
        if error and self.accepted and found["format"] not in self.accepted:
            error += f"; try {_bundled_for(self.accepted)}"
        self._show(error, hint=f"{found['format'] or 'unknown'} format, {found['rows']:,} rows")
        self.table.value = _preview(source, self.columns()) if found["rows"] else ""

    def _show(self, error: str | None, hint: str | None) -> None:
        (self.path if self.source.value == CUSTOM else self.source).show(error=error, hint=hint)

    def _map(self, found: list[str], detected: str | None) -> None:
        """One dropdown per field the format needs, offering the file's columns (rebuilt only on change)."""
        fmt = (
            self.format.value
            if self.format.value != "auto"
            else detected or (self.accepted or ("alpaca",))[0]
        )
        shown = (fmt, tuple(found))  # not the mapping itself: the boxes hold it while the user edits
        if shown == self._mapping_shown:
            return
        self._mapping_shown = shown
        ours = {field: column for column, field in self.mapped.items()}
        boxes = [
            w.Dropdown(options=[UNMAPPED, *found], value=ours.get(name, UNMAPPED), description=name)
            for name in data.required_fields(fmt)
            if found
        ]
        for box in boxes:
            box.observe(self._remapped, names="value")
        heading = [w.HTML(f"<b>map your columns onto the {fmt} fields:</b>")] if boxes else []
        self.mapping.children = [*heading, *boxes]

    def _remapped(self, _change) -> None:
        boxes = self.mapping.children[1:]  # after the heading
        shown = {box.description for box in boxes}
        kept = {column: field for column, field in self.mapped.items() if field not in shown}
        chosen = {b.value: b.description for b in boxes if b.value not in (UNMAPPED, b.description)}
        self.mapped = kept | chosen
        self._changed()

    def _pair_eval(self, change) -> None:
        # A bundled training set comes with its held-out split; keep a user's own eval file.
        if change["new"] != CUSTOM and (not self.eval.value or self.eval.value.startswith("bundled:")):
            paired = change["new"].replace("_train", "_eval")
            self.eval.value = paired if paired in reading.bundled_sources("eval") else ""

    def _uploaded(self, change) -> None:
        for item in change["new"]:
            target = _free_name(self.upload_dir / Path(item["name"]).name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(bytes(item["content"]))
            self.source.value, self.path.value = CUSTOM, str(target)


@functools.lru_cache(maxsize=32)
def _survey(source: str, columns: tuple, fmt: str, accepted: tuple, stamp: float) -> dict:
    """data.survey, remembered until the file changes (`stamp`): panels re-check on every edit."""
    return data.survey(source, dict(columns), fmt, accepted)


def _stamp(source: str) -> float:
    path = reading.local_path(source)
    return path.stat().st_mtime if path and path.exists() else 0.0


def _free_name(path: Path) -> Path:
    """`path`, or path-2, path-3... so an upload never overwrites a file already there."""
    n, candidate = 1, path
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate


@functools.cache
def _bundled_format(source: str) -> str:
    records, name = reading.read_records(source, None, 1)
    return data.detect_format(records, name)


def _bundled_for(accepted: tuple) -> str:
    fits = [s for s in reading.bundled_sources("train") if _bundled_format(s) in accepted]
    return fits[0] if fits else f"a dataset in {' or '.join(accepted)} format"


def _preview(source: str, columns: dict) -> str:
    """The first rows as an HTML table (plain HTML: pandas would slow the panel's first display)."""
    try:
        rows, _ = data.preview_rows(source, 5, columns or None)
    except reading.DataError:
        return ""
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in rows[0])
    body = "".join(
        "<tr>"
        + "".join(f"<td style='white-space:pre-wrap'>{html.escape(str(v))[:200]}</td>" for v in r.values())
        + "</tr>"
        for r in rows
    )
    return f"<b>first rows</b><table><tr>{head}</tr>{body}</table>"
