"""Two ways to run a config from a panel (DESIGN 3.3), with one interface: start, stop, join.

- In the kernel: `workbench.train` in a background thread; Stop sets an event that the trainer callback
  turns into a clean stop with a checkpoint; the trained model stays in memory (`result.model`).
- In a subprocess: `python -m workbench train <recipe>`; the panel tails metrics.jsonl, and Stop sends
  SIGINT, which the CLI turns into the same clean stop. The default on NPU and for long runs.

Both report through callbacks: on_start(run_dir), on_log(record) and on_end(status, message), where
status is finished, stopped or failed and message says why a run failed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from workbench import config as config_mod
from workbench import devices, runs
from workbench.errors import WorkbenchError

LONG_RUN_STEPS = 500  # longer runs go to a subprocess by default: they survive a kernel restart


@dataclass
class Callbacks:
    on_start: Callable[[Path], None]
    on_log: Callable[[dict], None]
    on_end: Callable[[str, str | None], None]


def choose_mode(cfg: config_mod.RunConfig, device_kind: str) -> tuple[str, str]:
    """kernel or subprocess for mode 'auto', with the reason shown in the panel."""
    if why := devices.subprocess_reason(device_kind):
        return "subprocess", why
    if cfg.distributed.num_processes > 1:
        return "subprocess", "several devices need a launcher"
    if cfg.train.max_steps < 0 or cfg.train.max_steps > LONG_RUN_STEPS:
        return "subprocess", "a long run: it survives a kernel restart"
    return "kernel", "a short run: the trained model stays in this kernel"


class KernelRun:
    """workbench.train in a thread of this kernel."""

    def __init__(self, cfg, callbacks: Callbacks, resume: bool = False, recipe: Path | None = None):
        self.cfg, self.calls, self.resume, self.recipe = cfg, callbacks, resume, recipe
        self.stop_event = threading.Event()
        self.result = None
        self.thread = threading.Thread(target=self._main, name="workbench-run", daemon=True)

    def start(self) -> KernelRun:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()

    def join(self, timeout: float | None = None) -> None:
        self.thread.join(timeout)

    def _main(self) -> None:
        import workbench

        try:
            self.result = workbench.train(
                self.cfg,
                on_log=self.calls.on_log,
                should_stop=self.stop_event.is_set,
                resume=self.resume,
                echo=False,
                recipe=self.recipe,
                on_start=self.calls.on_start,
            )
            status, message = self.result.status, None
        except BaseException as error:  # noqa: BLE001  (the panel shows every failure; the kernel lives on)
            status, message = "failed", describe(error)
        self.calls.on_end(status, message)


def describe(error: BaseException) -> str:
    """A user's error by its message; anything else with where it happened, for a bug report."""
    if isinstance(error, WorkbenchError):
        return str(error)
    where = traceback.format_exception(error)[-3:]
    return f"{type(error).__name__}: {error}\n{''.join(where)}"


class SubprocessRun:
    """`python -m workbench train` in a child process, watched through its console log and run directory.

    The child runs in its own session with its output in a file, so interrupting or restarting the kernel
    (which signals the kernel's whole process group) leaves it training; its log ends up in the run
    directory as console.log.
    """

    def __init__(self, cfg, callbacks: Callbacks, resume: bool = False, recipe: Path | None = None):
        self.calls, self.resume = callbacks, resume
        root = Path(cfg.output.root)
        root.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=".panel-", suffix=".log", dir=root)
        os.close(handle)
        self.log = Path(name)
        self.recipe, self.temporary = recipe, recipe is None
        if recipe is None:  # the child reads the config from a file, removed once its run directory exists
            self.recipe = self.log.with_suffix(".yaml")
            config_mod.save(cfg, self.recipe)
        self.tail = deque(maxlen=40)  # the child's last lines, for the error message
        self.run_dir: Path | None = None
        self.process: subprocess.Popen | None = None
        self.stop_asked = False
        self.thread = threading.Thread(target=self._main, name="workbench-subprocess", daemon=True)

    def start(self) -> SubprocessRun:
        command = [sys.executable, "-m", "workbench", "train", str(self.recipe)]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                command + (["--resume"] if self.resume else []),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        self.thread.start()
        return self

    def stop(self) -> None:
        # Before the run directory exists the child has no signal handler yet: the signal waits for it.
        self.stop_asked = True
        if self.run_dir is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # the CLI turns it into a clean stop with a checkpoint

    def join(self, timeout: float | None = None) -> None:
        self.thread.join(timeout)

    def _main(self) -> None:
        status, message = "failed", None
        try:
            code = self._watch()
            status = {0: "finished", 130: "stopped"}.get(code, "failed")
            message = None if status != "failed" else self._why(code)
        except Exception as error:  # noqa: BLE001  (whatever happens here, the panel must hear the end)
            message = describe(error)
        finally:
            self._tidy()
        self.calls.on_end(status, message)

    def _watch(self) -> int:
        """Pass on console lines and metrics until the child has ended; return its exit code."""
        console, metrics = 0, 0
        while True:
            ended = self.process.poll() is not None
            lines, console = runs.read_lines(self.log, console)
            for line in lines:
                self._line(line)
            if self.run_dir is not None:
                records, metrics = runs.read_new(self.run_dir / "metrics.jsonl", metrics)
                for record in records:
                    self.calls.on_log(record)
            if ended:
                return self.process.returncode
            time.sleep(0.5)

    def _line(self, line: str) -> None:
        self.tail.append(line)
        if line.startswith("run directory: ") and self.run_dir is None:
            self.run_dir = Path(line.removeprefix("run directory: ").strip())
            if self.temporary:
                self.recipe.unlink(missing_ok=True)  # resolved.yaml in the run directory holds it now
            self.calls.on_start(self.run_dir)
            if self.stop_asked:
                self.stop()

    def _tidy(self) -> None:
        if self.temporary:
            self.recipe.unlink(missing_ok=True)
        if self.run_dir is not None and self.run_dir.is_dir():  # a resumed run adds to its console.log
            with (self.run_dir / "console.log").open("ab") as kept:
                kept.write(self.log.read_bytes())
        self.log.unlink(missing_ok=True)

    def _why(self, code: int) -> str:
        errors = [line.removeprefix("error: ") for line in self.tail if line.startswith("error: ")]
        return errors[-1] if errors else f"exit code {code}:\n" + "\n".join(list(self.tail)[-12:])
