"""`profile.enabled`: profile a bounded window of steps and keep what people look at (DESIGN 3.6).

The device layer picks the profiler (torch.profiler, or torch_npu.profiler on an NPU); the recipe never
names it. Traces go to runs/<x>/profile/ for TensorBoard or Perfetto; profile/summary.json keeps the
top operators by self time (host and device), the peak memory in the window, and notes. Profiling can
never cost the run: a missing profiler or a folder that cannot be written leaves a note, and training
goes on with the always-on step timing only.
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
        self.profiler, self.module, self.notes, self.left = None, None, [], 0

    def on_train_begin(self, args, state, control, **kwargs):
        wait, warmup, active = self._window(state.max_steps - state.global_step)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.module, activities = devices.profiler_backend(self.device)
        except (OSError, devices.DeviceError) as error:
            self._note(
                f"profiling is off for this run ({error}); the step timing in metrics.jsonl still works"
            )
            return
        self.profiler = self.module.profile(
            activities=activities,
            schedule=self.module.schedule(wait=wait, warmup=warmup, active=active, repeat=1),
            on_trace_ready=self.module.tensorboard_trace_handler(str(self.folder)),
            record_shapes=self.cfg.record_shapes,
            profile_memory=self.cfg.profile_memory,
            with_stack=self.cfg.with_stack,
        )
        self.left = wait + warmup + active
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
        if self.profiler is not None:
            self.profiler.step()
            self.left -= 1
            if self.left <= 0:
                self._finish()

    def on_train_end(self, args, state, control, **kwargs):
        self._finish()  # a run that stopped inside the window keeps what was recorded

    def _finish(self) -> None:
        if self.profiler is None:
            return
        profiler, self.profiler = self.profiler, None
        profiler.stop()
        summary = {
            "backend": self.module.__name__,
            "notes": self.notes,
            **profiling.summarise(profiler, self.device),
        }
        try:
            (self.folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        except OSError as error:
            self._note(f"could not write {self.folder / 'summary.json'}: {error}")

    def _note(self, text: str) -> None:
        self.notes.append(text)
        self.say(f"note: {text}")
