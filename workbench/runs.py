"""The run directory (DESIGN 3.2): the contract between the trainer, the CLI and the notebook.

    runs/<name>-<timestamp>/
      resolved.yaml   metrics.jsonl   events.jsonl   checkpoints/   adapter/ or model/   summary.json

Metrics and events are appended and flushed as they happen, so a dead kernel loses nothing. A run is
"finished" only once summary.json exists (written atomically, last), so a half-written run never
looks complete.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from workbench import config as config_mod


@dataclass(frozen=True)
class Run:
    path: Path

    def event(self, kind: str, **fields: Any) -> None:
        _append(self.path / "events.jsonl", {"time": time.time(), "event": kind, **fields})

    def metric(self, record: dict) -> None:
        _append(self.path / "metrics.jsonl", record)

    def finish(self, summary: dict) -> None:
        write_json_atomic(self.path / "summary.json", summary)
        self.event("finish", reason=summary.get("status", "finished"))

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"


def run_name(cfg: config_mod.RunConfig) -> str:
    """The folder prefix of a config's runs: output.name, else <method>-<adapter>."""
    return cfg.output.name or f"{cfg.method.name}-{cfg.adapter.type}"


def create(cfg: config_mod.RunConfig) -> Run:
    """Make a fresh run directory and write resolved.yaml into it."""
    name = run_name(cfg)
    root = Path(cfg.output.root)
    root.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = root / f"{name}-{stamp}"
    suffix = 1
    while path.exists():  # two runs in the same second
        suffix += 1
        path = root / f"{name}-{stamp}-{suffix}"
    path.mkdir()
    run = Run(path)
    write_text_atomic(path / "resolved.yaml", config_mod.dump(cfg))
    return run


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete HF checkpoint of a run, if any."""
    found = [
        p for p in (run_dir / "checkpoints").glob("checkpoint-*") if (p / "trainer_state.json").is_file()
    ]
    return max(found, key=lambda p: int(p.name.rsplit("-", 1)[1]), default=None)


def find_resumable(cfg: config_mod.RunConfig, recipe: str | Path | None = None) -> Run | None:
    """The run to resume: the recipe's own folder if it is a run, else the newest unfinished same-name run."""
    if recipe is not None and (Path(recipe).parent / "events.jsonl").is_file():
        folder = Path(recipe).parent
        if status(folder) == "finished":
            raise config_mod.ConfigError(
                f"{folder} already finished: nothing to resume (drop --resume to run it again)"
            )
        return Run(folder)
    name = run_name(cfg)
    newest_first = sorted(
        Path(cfg.output.root).glob(f"{name}-*"), key=lambda p: p.stat().st_mtime, reverse=True
    )
    return next((Run(p) for p in newest_first if latest_checkpoint(p) and status(p) != "finished"), None)


def status(run_dir: str | Path) -> str:
    """finished | stopped | failed | running (or dead) | unknown, from the events on disk."""
    events = read_jsonl(Path(run_dir) / "events.jsonl")
    ends = [e for e in events if e.get("event") in ("finish", "error")]
    if not ends:
        return "running" if events else "unknown"
    last = ends[-1]
    return "failed" if last["event"] == "error" else last.get("reason", "finished")


def read_jsonl(path: Path) -> list[dict]:
    """Records of a JSONL file; a torn last line (a run killed mid-write) is skipped."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def read_lines(path: Path, offset: int = 0) -> tuple[list[str], int]:
    """Complete lines appended to a text file since byte `offset`, and the new offset (for tailing)."""
    if not path.is_file():
        return [], offset
    with path.open("rb") as handle:
        handle.seek(offset)
        chunk = handle.read()
    end = chunk.rfind(b"\n") + 1  # a line still being written waits for the next call
    return chunk[:end].decode("utf-8", errors="replace").splitlines(), offset + end


def read_new(path: Path, offset: int = 0) -> tuple[list[dict], int]:
    """The complete records appended to a JSONL file since byte `offset`, and the new offset."""
    lines, offset = read_lines(path, offset)
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records, offset


def metrics(run_dir: str | Path) -> Any:
    """metrics.jsonl as a pandas DataFrame."""
    import pandas as pd

    return pd.DataFrame(read_jsonl(Path(run_dir) / "metrics.jsonl"))


def summary(run_dir: str | Path) -> dict:
    path = Path(run_dir) / "summary.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def listing(root: str | Path) -> list[dict]:
    """One row per run directory under `root`, newest first; folders that are not runs are skipped."""
    folders = [
        p for p in Path(root).glob("*") if (p / "events.jsonl").is_file() or (p / "resolved.yaml").is_file()
    ]
    rows = [_row(p) for p in folders]
    return sorted(rows, key=lambda row: row["started_at"], reverse=True)


def _row(path: Path) -> dict:
    s, events = summary(path), read_jsonl(path / "events.jsonl")
    started = events[0].get("time") if events else None
    started = started if isinstance(started, int | float) else path.stat().st_mtime
    setup = {} if "method" in s else _setup(path)  # an unfinished run has no summary yet
    return {
        "name": path.name,
        "path": path,
        "status": status(path),
        "method": s.get("method", setup.get("method")),
        "adapter": s.get("adapter", setup.get("adapter")),
        "steps": s.get("steps"),
        "final_loss": s.get("final_loss"),
        "effect": effect(s),
        "wall_time_s": s.get("wall_time_s"),
        "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
        "started_at": started,
    }


def _setup(path: Path) -> dict:
    try:
        cfg = yaml.safe_load((path / "resolved.yaml").read_text(encoding="utf-8")) or {}
        return {"method": cfg["method"]["name"], "adapter": cfg["adapter"]["type"]}
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return {}


def effect(s: dict) -> str:
    """The held-out figures a run moved, as `workbench train` prints them: "exact match 0.0% -> 50.0%"."""
    from workbench.training import EFFECTS, FIGURES  # training imports this module: import late

    shown = []
    for key in EFFECTS:
        before, after = s.get(f"{key}_before"), s.get(f"{key}_after")
        if before is not None and after is not None:
            label, fmt = FIGURES[key]
            shown.append(f"{label} {before:{fmt}} -> {after:{fmt}}")
    return ", ".join(shown)


def _append(path: Path, record: dict) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record, default=str) + "\n")
        f.flush()


def write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_json_atomic(path: Path, data: dict) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, default=str) + "\n")
