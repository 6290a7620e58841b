"""The trainer callback that records a run as it happens and honours stop requests.

Every log becomes a line in metrics.jsonl (flushed at once) with the trainer's raw keys, the same
values under the shared names the plots use (the method's MethodSpec.curves), and `step`, `epoch`,
`elapsed_s`, `tokens_per_second` and `memory_peak_mb`. A stop request (the Stop button, Ctrl-C, SIGTERM) saves a
checkpoint, then ends training cleanly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from transformers import TrainerCallback

from workbench import devices, lines
from workbench.methods import MethodSpec
from workbench.runs import Run


class StopTraining(Exception):
    """Ends a trainer whose loop ignores `should_training_stop` (TRL's PPO), after its checkpoint."""


class Recorder(TrainerCallback):
    def __init__(
        self,
        run: Run,
        device: devices.Device,
        on_log: Callable[[dict], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        say: Callable[[str], None] | None = print,
        spec: MethodSpec | None = None,
        clock: Any = None,
    ):
        # not `self.on_log`: that name is the callback hook itself
        self.run, self.device, self.notify, self.should_stop = run, device, on_log, should_stop
        self.say = say  # where progress lines go: the console, a run's console.log, or nowhere (None)
        self.stopped = False
        self.curves = spec.curves if spec else {}
        self.stop_by_exception = spec is not None and spec.stop_by_exception
        self.clock = clock  # a steptimes.StepClock: each log carries the window's step timing
        self.started = self.last_time = time.perf_counter()
        self.last_tokens = 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = self.last_time = time.perf_counter()
        self.last_tokens = 0.0
        self.run.event("train_begin", max_steps=state.max_steps, start_step=state.global_step)

    def on_step_end(self, args, state, control, **kwargs):
        if self.should_stop is not None and self.should_stop() and not self.stopped:
            self.stopped = True
            control.should_save = True  # a checkpoint first, so the run can be resumed
            control.should_training_stop = True
            self.run.event("stop", step=state.global_step, reason="stop requested")

    def on_save(self, args, state, control, **kwargs):
        self.run.event(
            "checkpoint", step=state.global_step, path=f"checkpoints/checkpoint-{state.global_step}"
        )
        if self.stopped and self.stop_by_exception:
            raise StopTraining

    def on_log(self, args, state, control, logs=None, **kwargs):
        record = self.record(state, logs or {})
        self.run.metric(record)
        if self.notify is not None:
            self.notify(record)
        if self.say and "train_runtime" not in logs:  # the end-of-training totals repeat the last step
            self.say(lines.progress(record, state.max_steps))

    def record(self, state: Any, logs: dict) -> dict:
        now = time.perf_counter()
        record = {"step": state.global_step, "max_steps": state.max_steps, "epoch": state.epoch,
                  "elapsed_s": round(now - self.started, 3)}  # fmt: skip
        record.update({k: v for k, v in logs.items() if isinstance(v, int | float | str)})
        record.update(
            {name: logs[raw] for name, raw in self.curves.items() if raw in logs and name not in record}
        )
        tokens = logs.get("num_tokens")
        if isinstance(tokens, int | float) and now > self.last_time:
            record["tokens_per_second"] = round((tokens - self.last_tokens) / (now - self.last_time), 1)
            self.last_tokens, self.last_time = tokens, now
        record["memory_peak_mb"] = round(devices.peak_memory(self.device) / 2**20, 1)
        if self.clock is not None:
            record.update(self.clock.take())
        return record
