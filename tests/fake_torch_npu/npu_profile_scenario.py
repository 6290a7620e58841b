"""Drive workbench.profiling on the fake NPU and print, as JSON, what the fake profiler was asked to do."""

import json
import sys
import tempfile
import types
from pathlib import Path

# transformers' NPU integrations import kernels the fake has not got; the window needs only the callback
# base class, so a bare one stands in (the Trainer side is covered by the CPU tests).
sys.modules["transformers"] = types.SimpleNamespace(TrainerCallback=object)

from workbench import devices, profile_window, profiling  # noqa: E402
from workbench.config import ProfileConfig  # noqa: E402

device = devices.resolve()
window = profile_window.ProfileWindow(
    ProfileConfig(enabled=True, wait=1, warmup=1, active=2),
    device,
    Path(tempfile.mkdtemp()),
    say=lambda *a: None,
)
state = types.SimpleNamespace(max_steps=10, global_step=0)
window.on_train_begin(None, state, None)
for _ in range(4):
    window.on_step_end(None, state, None)
window.on_train_end(None, state, None)
calls = sys.modules["torch_npu.profiler"].CALLS
print(
    json.dumps(
        {
            "device": device.type,
            "backend": window.backend.module.__name__ if window.backend else None,
            "calls": calls,
            "summary": profiling.read(window.folder.parent),
        },
        default=str,
    )
)
