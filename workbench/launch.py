"""One way to start, follow and stop a run (DESIGN 3.7): `start(cfg, mode) -> RunHandle`.

The parent makes the run directory first, then trains in it from a thread of this process or from a
child process (`python -m workbench train --run-dir D`). From then on the run directory is the only
channel: the handle reads events and metrics from it, `stop()` writes a stop request into it, a failure
is its last `error` event, and its lock names the live process. So a second notebook, a reloaded page or
the CLI (`attach(run_dir)`) sees the same run as the one that started it.

    handle = launch.start(cfg, "subprocess")
    for record in handle.follow():   # metrics as logged; events carry an "event" key
        ...
    handle.wait()                     # "finished" | "stopped" | "failed"
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from workbench import config as config_mod
from workbench import devices, methods, runs
from workbench.config import RunConfig
from workbench.errors import RunError, describe

MODES = ("thread", "subprocess")
ENDED = ("finished", "stopped", "failed", "dead")
LONG_RUN_STEPS = 500  # longer runs go to a subprocess by default: they survive a kernel restart


def start(
    cfg: RunConfig, mode: str = "thread", resume: bool = False, recipe: str | Path | None = None
) -> RunHandle:
    """Make (or, with `resume`, reopen) the run directory, then train `cfg` in it.

    `mode` is "thread" (this process keeps the trained model: `handle.result`) or "subprocess" (survives
    a kernel restart; the default on an NPU). Several processes (`distributed.num_processes > 1`) always
    go through a child process, which is where a launcher will start the ranks.
    """
    if mode not in MODES:
        raise config_mod.ConfigError(f"run mode {mode!r}: choose one of {', '.join(MODES)}")
    if resume and not methods.spec(cfg.method.name).resumable:
        raise config_mod.ConfigError(f"resume: TRL's {cfg.method.name.upper()} loop cannot continue from a "
                                     "checkpoint; start a new run")  # fmt: skip
    run, fresh = _prepare(cfg, resume, recipe)  # the run is locked by this process from here
    try:
        run.event("launch", mode=mode, resume=resume, pid=os.getpid())
        if mode == "subprocess" or cfg.distributed.num_processes > 1:
            return RunHandle(run.path, process=_spawn(run, resume), fresh=fresh)
        handle = RunHandle(run.path, fresh=fresh)
        handle.thread = threading.Thread(
            target=handle._train, args=(cfg, resume), name="workbench-run", daemon=True
        )
        handle.thread.start()
        return handle
    except OSError as error:  # nothing started: say why, and leave no half-made run
        _abandon(run, fresh, f"the run could not start: {runs.cant_write(run.path, error)}")
        raise RunError(f"{run.path}: the run could not start: {runs.cant_write(run.path, error)}") from None


def _abandon(run: runs.Run, fresh: bool, reason: str) -> None:
    if fresh:
        shutil.rmtree(run.path, ignore_errors=True)
        return
    try:
        run.event("error", reason=reason)
    finally:
        runs.unlock(run)


def choose_mode(cfg: RunConfig, device_kind: str) -> tuple[str, str]:
    """The mode for "auto", with the reason a panel shows."""
    if why := devices.subprocess_reason(device_kind):
        return "subprocess", why
    if cfg.distributed.num_processes > 1:
        return "subprocess", "several devices need a launcher"
    if cfg.train.max_steps < 0 or cfg.train.max_steps > LONG_RUN_STEPS:
        return "subprocess", "a long run: it survives a kernel restart"
    return "thread", "a short run: the trained model stays in this process"


def live(root: str | Path) -> Path | None:
    """The newest run under `root` that a live process is training (a reloaded page shows it again)."""
    held = [p for p in Path(root).glob("*/" + runs.LOCK) if runs.holder(p.parent)]
    return max(held, key=_mtime).parent if held else None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:  # unlocked meanwhile
        return 0.0


def attach(run_dir: str | Path) -> RunHandle:
    """A handle on a run started elsewhere (another kernel, the CLI): follow it, stop it, wait for it."""
    return RunHandle(Path(run_dir))


def _prepare(cfg: RunConfig, resume: bool, recipe: str | Path | None) -> tuple[runs.Run, bool]:
    """The run directory to train in, locked by this process, and whether it is new."""
    run = runs.find_resumable(cfg, recipe) if resume else None
    if run is None:
        run = runs.create(cfg)
        runs.lock(run)
        return run, True
    runs.lock(run)  # first: a second resume of the same run is refused before anything changes
    runs.rewind(run, runs.latest_checkpoint(run.path))  # before anyone follows it: no replayed steps
    return run, False


def _spawn(run: runs.Run, resume: bool) -> subprocess.Popen:
    """The child that trains in `run`: its output goes to console.log, in its own session so that
    interrupting or restarting the kernel (which signals the kernel's process group) leaves it running."""
    resume_flag = ["--resume"] if resume else []
    command = [sys.executable, "-m", "workbench", "train", "--run-dir", str(run.path), *resume_flag]
    with (run.path / "console.log").open("ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True)  # fmt: skip
    runs.lock(run, process.pid)  # handed to the child (it takes it over as its parent's)
    return process


class RunHandle:
    """A run, seen only through its directory."""

    def __init__(self, run_dir: Path, process: subprocess.Popen | None = None, fresh: bool = False):
        self.run_dir, self.process, self.fresh = Path(run_dir), process, fresh
        self.thread: threading.Thread | None = None
        self.result: Any = None  # thread mode: the RunResult, with the trained model in memory
        self.refused: str | None = None  # why its checks refused a new run (whose folder is then removed)

    @property
    def status(self) -> str:
        """starting | running | stopping | finished | stopped | failed | dead."""
        self._settle()  # may find the run refused by its checks and remove its folder
        if self.refused:
            return "failed"
        state = runs.status(self.run_dir)
        if state in ("starting", "running") and runs.Run(self.run_dir).stop_requested():
            return "stopping"
        return state

    @property
    def error(self) -> str | None:
        """Why the run failed (its last error event), or None."""
        return self.refused or runs.failure(self.run_dir)

    @property
    def alive(self) -> bool:
        """Whether whatever trains this run is still at it."""
        if self.thread is not None:
            return self.thread.is_alive()
        if self.process is not None:
            return self.process.poll() is None
        return runs.holder(self.run_dir) is not None

    def stop(self) -> None:
        """Ask the run to stop after its current step; it saves a checkpoint first, so it can be resumed."""
        runs.Run(self.run_dir).request_stop()

    def wait(self, timeout: float | None = None) -> str:
        """Block until the run ends (or `timeout` passes); return its status."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if self.thread is not None:
            self.thread.join(timeout)
        elif self.process is not None:
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        else:
            while self.alive and (deadline is None or time.monotonic() < deadline):
                time.sleep(0.2)
        return self.status

    def follow(self, poll: float = 0.5) -> Iterator[dict]:
        """Every metric record and event of the run, from the start, as they are written, until it ends.

        Events carry an "event" key (launch, start, checkpoint, stop, error, finish ...); metrics do not.
        """
        offsets = {"metrics.jsonl": 0, "events.jsonl": 0}
        while True:
            ended = not self.alive  # decided before reading: everything written until the end is read
            if ended:
                self._settle()
            for name in offsets:
                records, offsets[name] = runs.read_new(self.run_dir / name, offsets[name])
                yield from records
            if ended:
                return
            time.sleep(poll)

    def console(self, lines: int = 20) -> list[str]:
        """The last lines the run printed (console.log), for a log tail."""
        text, _ = runs.read_lines(self.run_dir / "console.log")
        return text[-lines:]

    def _train(self, cfg: RunConfig, resume: bool) -> None:
        from workbench import training

        log = (self.run_dir / "console.log").open("a", encoding="utf-8", buffering=1)
        try:
            self.result = training.train(cfg, resume=resume, echo=lambda *a, **k: print(*a, file=log),
                                         run_dir=self.run_dir)  # fmt: skip
        except BaseException as error:  # noqa: BLE001  (recorded as the run's error event; the kernel lives on)
            if runs.status(self.run_dir) not in ENDED:  # it failed before the run could record it
                runs.Run(self.run_dir).event("error", reason=describe(error))
        finally:
            log.close()
            if (runs.holder(self.run_dir) or {}).get("pid") == os.getpid():  # refused before train took it
                runs.unlock(runs.Run(self.run_dir))

    def _settle(self) -> None:
        """Once the worker has ended: a silent death gets an error event on its behalf, and a new run
        that its checks refused is removed (bad input leaves no half-made run), keeping the reason."""
        own = self.process is not None or self.thread is not None  # an attached handle only reads
        if not own or self.alive or self.refused or not self.run_dir.is_dir():
            return
        if runs.status(self.run_dir) in ("starting", "running", "dead"):  # killed, or crashed on import
            code = f" (exit code {self.process.returncode})" if self.process is not None else ""
            tail = "\n".join(self.console(12))
            reason = f"the training process ended without finishing{code}"
            runs.Run(self.run_dir).event("error", reason=reason + (f":\n{tail}" if tail else ""))
            runs.unlock(runs.Run(self.run_dir))
        errors = [e for e in runs.read_jsonl(self.run_dir / "events.jsonl") if e.get("event") == "error"]
        if self.fresh and errors and errors[-1].get("phase") == "check":
            self.refused = errors[-1]["reason"]
            shutil.rmtree(self.run_dir, ignore_errors=True)
