"""`profile.enabled`: profile a bounded window of steps and keep what people look at (DESIGN 3.6).

The device layer picks the profiler (torch.profiler, or torch_npu.profiler on an NPU, whose offline
analysis runs once training is over); the recipe never names it. Traces go to runs/<x>/profile/ for
TensorBoard or Perfetto; profile/summary.json keeps what workbench.profiling reads from them. Profiling
can never cost the run: a missing profiler, a failed analysis or a folder that cannot be written leaves
a note, and training goes on with the always-on step timing only.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from transformers import TrainerCallback

from workbench import devices, profiling
from workbench.config import ProfileConfig


class ProfileWindow(TrainerCallback):
    def __init__(self, cfg: ProfileConfig, device: devices.Device, run_dir: Path, say: Callable = print):
        self.cfg, self.device, self.folder, self.say = cfg, device, run_dir / profiling.FOLDER, say
        self.backend, self.profiler, self.notes, self.peak_mb = None, None, [], None
        self.steps = self.active = self.recorded = 0

    def on_train_begin(self, args, state, control, **kwargs):
        wait, warmup, self.active = self._window(state.max_steps - state.global_step)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.backend = devices.profiler_backend(self.device)
        except (OSError, devices.DeviceError) as error:
            self._note(
                f"profiling is off for this run ({error}); the step timing in metrics.jsonl still works"
            )
            return
        module = self.backend.module
        self.profiler = module.profile(
            activities=self.backend.activities,
            schedule=module.schedule(wait=wait, warmup=warmup, active=self.active, repeat=1),
            on_trace_ready=module.tensorboard_trace_handler(str(self.folder), **self.backend.handler_options),
            record_shapes=self.cfg.record_shapes,
            profile_memory=self.cfg.profile_memory,
            with_stack=self.cfg.with_stack,
        )
        self.steps = wait + warmup + self.active
        if wait + warmup == 0:
            devices.reset_peak_memory(self.device)
        self.profiler.start()

    def _window(self, steps: int) -> tuple[int, int, int]:
        """The schedule, clipped (with a note) when the run is shorter than the window asked for."""
        c = self.cfg
        if c.wait + c.warmup + c.active <= steps:
            return c.wait, c.warmup, c.active
        wait, warmup = min(c.wait, max(steps - 1, 0)), min(c.warmup, max(steps - 1 - c.wait, 0))
        active = max(steps - wait - warmup, 1)
        self._note(f"the profile window ({c.wait}+{c.warmup}+{c.active} steps) is longer than the run "
                   f"({steps} steps): clipped to {wait}+{warmup}+{active}")  # fmt: skip
        return wait, warmup, active

    def on_step_end(self, args, state, control, **kwargs):
        if self.profiler is None or self.recorded >= self.steps:
            return
        self.profiler.step()
        self.recorded += 1
        if self.recorded == self.steps - self.active:  # the recorded steps start: their own peak
            devices.reset_peak_memory(self.device)
        if self.recorded == self.steps:
            self._close()

    def on_train_end(self, args, state, control, **kwargs):
        self._close()  # a run that stopped inside the window keeps what was recorded
        self._summarise()

    def _close(self) -> None:
        if self.profiler is not None and self.peak_mb is None:
            self.peak_mb = round(devices.peak_memory(self.device) / 2**20, 1)
            self.profiler.stop()

    def _summarise(self) -> None:
        """The offline analysis where the backend has one, then profile/summary.json."""
        if self.profiler is None:
            return
        if self.backend.analyse is not None:
            try:
                self.backend.analyse(str(self.folder))
            except Exception as error:  # a failed analysis keeps the raw data for a later try
                self._note(f"the profiler's offline analysis failed ({type(error).__name__}: {error}); "
                           f"the raw data is in {self.folder}")  # fmt: skip
        steps = max(self.recorded - (self.steps - self.active), 1)  # recorded never passes self.steps
        summary = {
            "backend": self.backend.module.__name__,
            "notes": self.notes,
            **profiling.summarise(self.folder, steps, self.peak_mb),
        }
        self.profiler = None
        try:
            (self.folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        except OSError as error:
            self._note(f"could not write {self.folder / 'summary.json'}: {error}")

    def _note(self, text: str) -> None:
        self.notes.append(text)
        self.say(f"note: {text}")
