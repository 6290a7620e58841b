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
from workbench import runs

LONG_RUN_STEPS = 500  # longer runs go to a subprocess by default: they survive a kernel restart


@dataclass
class Callbacks:
    on_start: Callable[[Path], None]
    on_log: Callable[[dict], None]
    on_end: Callable[[str, str | None], None]


def choose_mode(cfg: config_mod.RunConfig, device_kind: str) -> tuple[str, str]:
    """kernel or subprocess for mode 'auto', with the reason shown in the panel."""
    if device_kind == "npu":
        return "subprocess", "NPU: torch_npu disables its task queue inside IPython, which slows training"
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
            self.calls.on_end(self.result.status, None)
        except BaseException as error:  # noqa: BLE001  (the panel shows every failure; the kernel lives on)
            self.calls.on_end("failed", describe(error))


def describe(error: BaseException) -> str:
    """A user's error by its message; anything else with where it happened, for a bug report."""
    from workbench.cli import KNOWN_ERRORS

    if isinstance(error, KNOWN_ERRORS()):
        return str(error)
    where = traceback.format_exception(error)[-3:]
    return f"{type(error).__name__}: {error}\n{''.join(where)}"


class SubprocessRun:
    """`python -m workbench train` in a child process, watched through its run directory."""

    def __init__(self, cfg, callbacks: Callbacks, resume: bool = False, recipe: Path | None = None):
        self.calls, self.resume = callbacks, resume
        self.recipe, self.temporary = recipe, recipe is None
        if recipe is None:  # the child reads the config from a file; it is removed when the run ends
            root = Path(cfg.output.root)
            root.mkdir(parents=True, exist_ok=True)
            handle, name = tempfile.mkstemp(prefix=".panel-", suffix=".yaml", dir=root)
            os.close(handle)
            self.recipe = Path(name)
            config_mod.save(cfg, self.recipe)
        self.tail = deque(maxlen=40)  # the child's last lines, for the error message
        self.run_dir: Path | None = None
        self.process: subprocess.Popen | None = None
        self.thread = threading.Thread(target=self._main, name="workbench-subprocess", daemon=True)

    def start(self) -> SubprocessRun:
        command = [sys.executable, "-m", "workbench", "train", str(self.recipe)]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            command + (["--resume"] if self.resume else []),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # the CLI turns it into a clean stop with a checkpoint

    def join(self, timeout: float | None = None) -> None:
        self.thread.join(timeout)

    def _main(self) -> None:
        done = threading.Event()
        follower = threading.Thread(target=self._follow, args=(done,), daemon=True)
        for line in self.process.stdout:
            self.tail.append(line.rstrip())
            if line.startswith("run directory: ") and self.run_dir is None:
                self.run_dir = Path(line.removeprefix("run directory: ").strip())
                self.calls.on_start(self.run_dir)
                follower.start()
        code = self.process.wait()
        done.set()
        if follower.is_alive():
            follower.join()
        if self.temporary:
            self.recipe.unlink(missing_ok=True)
        status = {0: "finished", 130: "stopped"}.get(code, "failed")
        self.calls.on_end(status, None if status != "failed" else self._why(code))

    def _follow(self, done: threading.Event) -> None:
        """Pass on each new line of metrics.jsonl until the child has ended and the file is read."""
        offset = 0
        while True:
            finished = done.is_set()
            records, offset = runs.read_new(self.run_dir / "metrics.jsonl", offset)
            for record in records:
                self.calls.on_log(record)
            if finished:
                return
            time.sleep(0.5)

    def _why(self, code: int) -> str:
        errors = [line.removeprefix("error: ") for line in self.tail if line.startswith("error: ")]
        return errors[-1] if errors else f"exit code {code}:\n" + "\n".join(list(self.tail)[-12:])
