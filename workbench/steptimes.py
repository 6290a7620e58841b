"""Always-on step timing, no profiler: how long each optimizer step waited for data, computed and stepped.

The Trainer loop (transformers 5.x) runs, per optimizer step: fetch the batches (`get_batch_samples`),
on_step_begin, forward + backward, on_pre_optimizer_step, optimizer.step(), on_optimizer_step, the
scheduler and zero_grad, on_step_end. The clock wraps `get_batch_samples` for the data wait and reads
the hooks for the rest. On devices that queue work (CUDA, NPU) it synchronises first, so queued kernels
count for the phase that queued them. Each log gets the window's per-step averages (`data_wait_s`,
`compute_s`, `optimizer_s`, `other_s`, `step_s`) and `data_share`.
"""

from __future__ import annotations

import time
from typing import Any

from transformers import TrainerCallback

from workbench import devices
from workbench.diagnosis import PHASES


class StepClock(TrainerCallback):
    def __init__(self, device: devices.Device):
        self.device = device
        self.sync = device.type != "cpu"  # CPU work is synchronous: no need to wait for it
        self.window = dict.fromkeys(PHASES, 0.0)
        self.steps, self.fetching, self.mark = 0, 0.0, None

    def attach(self, trainer: Any) -> None:
        """Time the trainer's batch fetching (trainers with their own loop, such as PPO, keep no time)."""
        fetch = getattr(trainer, "get_batch_samples", None)
        if fetch is None:
            return

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return fetch(*args, **kwargs)
            finally:
                self.fetching += time.perf_counter() - started

        trainer.get_batch_samples = timed

    def now(self) -> float:
        if self.sync:
            devices.synchronize(self.device)
        return time.perf_counter()

    def _lap(self, phase: str | None) -> None:
        now = self.now()
        if phase is not None and self.mark is not None:
            self.window[phase] += now - self.mark
        self.mark = now

    def on_step_begin(self, args, state, control, **kwargs):
        self._lap(None)

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        self._lap("compute")

    def on_optimizer_step(self, args, state, control, **kwargs):
        self._lap("optimizer")

    def on_step_end(self, args, state, control, **kwargs):
        self._lap("other")
        self.window["data_wait"] += self.fetching
        self.fetching, self.mark = 0.0, None
        self.steps += 1

    def take(self) -> dict[str, float]:
        """Per-step averages since the last call (the logging window), then start a new window."""
        if not self.steps:
            return {}
        out = {f"{phase}_s": round(total / self.steps, 5) for phase, total in self.window.items()}
        step = sum(self.window.values()) / self.steps
        out |= {"step_s": round(step, 5), "data_share": round(out["data_wait_s"] / step, 4) if step else 0.0}
        self.window, self.steps = dict.fromkeys(PHASES, 0.0), 0
        return out
