"""The run directory (DESIGN 3.2): the contract between the trainer, the CLI and the notebook.

    runs/<name>-<timestamp>/
      resolved.yaml   metrics.jsonl   events.jsonl   checkpoints/   adapter/ or model/   summary.json

Metrics and events are appended and flushed as they happen, so a dead kernel loses nothing. A run's status
comes from its events (the latest segment: a resume starts another); summary.json is written atomically
when a segment ends, finished or stopped, so a half-written run never looks complete.
"""

from __future__ import annotations

import errno
import itertools
import json
import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from workbench import config as config_mod
from workbench import lines
from workbench.errors import RunError

LOCK = "lock.json"  # names the live process that trains in this directory (pid, host)
STOP = "stop"  # a stop request: any process may write it; the trainer checks for it after each step


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

    def request_stop(self) -> None:
        """Ask whoever trains here to stop after this step (with a checkpoint)."""
        (self.path / STOP).touch()
        self.event("stop_request")

    def stop_requested(self) -> bool:
        return (self.path / STOP).exists()


def run_name(cfg: config_mod.RunConfig) -> str:
    """The folder prefix of a config's runs: output.name, else <method>-<adapter>."""
    return cfg.output.name or f"{cfg.method.name}-{cfg.adapter.type}"


def create(cfg: config_mod.RunConfig) -> Run:
    """Make a fresh run directory and write resolved.yaml into it; safe against simultaneous creates."""
    root, stamp = Path(cfg.output.root), time.strftime("%Y%m%d-%H%M%S")
    try:
        root.mkdir(parents=True, exist_ok=True)
        for n in itertools.count(1):  # mkdir is atomic: the one that makes a name owns it
            path = root / (f"{run_name(cfg)}-{stamp}" + (f"-{n}" if n > 1 else ""))
            try:
                path.mkdir()
                break
            except FileExistsError:
                continue
        write_text_atomic(path / "resolved.yaml", config_mod.dump(cfg))
    except OSError as error:
        raise RunError(
            f"cannot make a run directory under output.root ({root}): {cant_write(root, error)}"
        ) from None
    return Run(path)


def cant_write(folder: Path, error: OSError) -> str:
    """Why `folder` cannot be written, in words, with the fix."""
    if error.errno == errno.ENOSPC:
        free = shutil.disk_usage(_existing(folder)).free / 2**20
        return f"no space left on the device ({free:,.0f} MB free); free some space or choose another output.root"
    if error.errno in (errno.ENOTDIR, errno.EEXIST):
        return "a file stands where a folder should be; choose another output.root"
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "the folder is not writable; choose another output.root (e.g. output.root=runs in your home)"
    return f"{error.strerror or error} ({type(error).__name__})"


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def lock(run: Run, pid: int | None = None) -> None:
    """Record `pid` (default: this process) as the one training in `run`; refuse if another live one is."""
    pid = pid or os.getpid()
    record = json.dumps({"pid": pid, "host": socket.gethostname(), "time": time.time()})
    try:  # O_EXCL: of two processes locking at once, one makes the file
        with os.fdopen(os.open(run.path / LOCK, os.O_CREAT | os.O_EXCL | os.O_WRONLY), "w") as f:
            f.write(record)
        return
    except FileExistsError:
        pass
    # Held already: by us, by the parent handing its run to this child, or by a dead process (stale)
    if (held := holder(run.path)) and held["pid"] not in (pid, os.getpid(), os.getppid()):
        raise RunError(f"{run.path} is still training ({_who(held)}): two processes must never write one run "
                       f"directory; wait for it, or stop it first (workbench stop {run.path})")  # fmt: skip
    write_text_atomic(run.path / LOCK, record)


def unlock(run: Run) -> None:
    (run.path / LOCK).unlink(missing_ok=True)


def holder(run_dir: Path) -> dict | None:
    """The live process training in `run_dir` (from its lock), or None; a lock left by a dead one is stale."""
    try:
        held = json.loads((Path(run_dir) / LOCK).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if held.get("host") != socket.gethostname():
        return held  # another machine's process cannot be probed from here: trust its lock
    try:
        os.kill(int(held["pid"]), 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, owned by another user
    return held


def _who(held: dict) -> str:
    since = time.strftime("%H:%M:%S", time.localtime(held.get("time", 0)))
    return f"pid {held['pid']} on {held.get('host')}, since {since}; a lock in {LOCK}"


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete HF checkpoint of a run, if any."""
    found = [
        p for p in (run_dir / "checkpoints").glob("checkpoint-*") if (p / "trainer_state.json").is_file()
    ]
    return max(found, key=lambda p: int(p.name.rsplit("-", 1)[1]), default=None)


def resumable(run_dir: Path) -> bool:
    """Whether a run can continue: a complete checkpoint, and a method whose TRL loop can resume."""
    from workbench import methods  # methods import this module through stages: import late

    method = _setup(Path(run_dir)).get("method")
    return latest_checkpoint(Path(run_dir)) is not None and (method is None or methods.spec(method).resumable)


def find_resumable(cfg: config_mod.RunConfig, recipe: str | Path | None = None) -> Run | None:
    """The run to resume: the recipe's own folder if it is a run, else the newest unfinished same-name run.

    A run another process is still training is refused, never attached to.
    """
    if recipe is not None and (Path(recipe).parent / "events.jsonl").is_file():
        run = Run(Path(recipe).parent)
        if status(run.path) == "finished":
            raise config_mod.ConfigError(
                f"{run.path} already finished: nothing to resume (drop --resume to run it again)"
            )
    else:
        newest_first = sorted(
            Path(cfg.output.root).glob(f"{run_name(cfg)}-*"), key=lambda p: p.stat().st_mtime, reverse=True
        )
        found = (p for p in newest_first if latest_checkpoint(p) and status(p) != "finished")
        run = next((Run(p) for p in found), None)
    if run is not None and (held := holder(run.path)):
        raise RunError(f"cannot resume {run.path}: it is still training ({_who(held)}); "
                       f"wait for it, or stop it first (workbench stop {run.path})")  # fmt: skip
    return run


def rewind(run: Run, checkpoint: Path | None) -> None:
    """Prepare a run to continue from `checkpoint`: drop the metrics logged after it (they are replayed),
    and any stop request left from before."""
    (run.path / STOP).unlink(missing_ok=True)
    step = int(checkpoint.name.rsplit("-", 1)[1]) if checkpoint else 0
    kept = [r for r in read_jsonl(run.path / "metrics.jsonl") if r.get("step", 0) <= step]
    write_text_atomic(run.path / "metrics.jsonl", "".join(json.dumps(r, default=str) + "\n" for r in kept))


def status(run_dir: str | Path) -> str:
    """finished | stopped | failed | running | dead | starting | unknown, from the run directory.

    Only the latest segment counts (a resumed run starts a new one); a run with no end whose lock names
    a process that is gone died without a word (killed, out of memory).
    """
    run_dir = Path(run_dir)
    events = read_jsonl(run_dir / "events.jsonl")
    starts = [i for i, e in enumerate(events) if e.get("event") in ("launch", "start")]
    segment = events[starts[-1] :] if starts else events
    ends = [e for e in segment if e.get("event") in ("finish", "error")]
    if ends:
        last = ends[-1]
        return "failed" if last["event"] == "error" else last.get("reason", "finished")
    if not events:
        return "unknown"
    if (run_dir / LOCK).is_file() and holder(run_dir) is None:
        return "dead"
    return "running" if any(e.get("event") == "start" for e in segment) else "starting"


def failure(run_dir: str | Path) -> str | None:
    """Why the latest segment of a run failed (its last error event), or None."""
    errors = [e for e in read_jsonl(Path(run_dir) / "events.jsonl") if e.get("event") == "error"]
    return errors[-1].get("reason") if errors and status(run_dir) == "failed" else None


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
        "effect": ", ".join(lines.effects(s)),
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
