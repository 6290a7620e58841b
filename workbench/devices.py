"""Every device decision in one place: which accelerator, which precision, which distributed backend.

No other module names a device type or calls `torch.<device>.*`; they ask here. torch is imported inside the
functions, so `import workbench.devices` stays instant.

With torch_npu installed, torch auto-loads it as a PrivateUse1 backend, and on a machine without CANN that
makes `import torch` itself fail (a broken driver can even abort the process). Call `guard_torch_import()`
before the first `import torch` of a process (entry points and notebooks do): it probes torch_npu in a
subprocess and hides it when it cannot load. Every function here that needs torch calls it first.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import os
import platform
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import DeviceError

if TYPE_CHECKING:  # config reads ORDER from here, so the import at run time goes the other way
    from workbench.config import DeviceConfig, DistributedConfig

log = logging.getLogger(__name__)

ORDER = ("npu", "cuda", "xpu", "mps", "cpu")  # detection order, best first
_VISIBLE_ENV = {"npu": "ASCEND_RT_VISIBLE_DEVICES", "cuda": "CUDA_VISIBLE_DEVICES", "xpu": "ZE_AFFINITY_MASK"}
_BACKEND = {"npu": "hccl", "cuda": "nccl", "mps": "gloo", "cpu": "gloo"}
_NPU_NO_BF16 = re.compile(r"^Ascend(910(A|ProA|ProB|PremiumA)?|310.*)$")  # first 910 generation, 310 chips
SET_ENV = "`source /usr/local/Ascend/ascend-toolkit/set_env.sh` before starting Python"


@dataclass(frozen=True)
class Device:
    type: str  # npu, cuda, xpu, mps or cpu
    index: int = 0
    count: int = 1  # devices of this type visible to the process
    name: str = ""
    precision: str = "fp32"  # bf16, fp16 or fp32
    dist_backend: str = "gloo"
    visible_devices_env: str | None = None
    memory_total: int | None = None  # bytes
    note: str | None = None  # why we fell back or changed what was asked; show it to the user

    @property
    def torch_device(self) -> str:
        return "cpu" if self.type == "cpu" else f"{self.type}:{self.index}"

    def __str__(self) -> str:
        return f"{self.torch_device} {self.name} (x{self.count}), {self.precision}, {self.dist_backend}"


# --- probing torch_npu --------------------------------------------------------------------------------------

_PROBE = r"""
import json, sys
sys.path[:] = json.loads(sys.argv[1])
out = {"stage": "torch"}
try:
    import torch
    out["stage"], out["torch"] = "torch_npu", torch.__version__
    import torch_npu
    out["version"] = getattr(torch_npu, "__version__", "?")
    out["count"] = torch.npu.device_count() if torch.npu.is_available() else 0
except BaseException as error:
    out["error"] = f"{type(error).__name__}: {error}"
print("WORKBENCH_PROBE " + json.dumps(out))
"""


@lru_cache(maxsize=4)
def probe_npu(timeout: float = 60) -> tuple[bool, str]:
    """Can torch_npu load and see an NPU? Asked in a subprocess: a broken driver can abort the caller."""
    if "torch_npu" in sys.modules and sys.modules["torch_npu"] is None:
        return False, "torch_npu is switched off in this process: it failed to load earlier (see the log)"
    if "torch_npu" in sys.modules:  # already loaded here, so asking it directly is safe
        torch = sys.modules["torch"]
        count = torch.npu.device_count() if torch.npu.is_available() else 0
        return count > 0, f"torch_npu is loaded and sees {count} NPU(s)"
    if importlib.util.find_spec("torch_npu") is None:
        return False, "torch_npu is not installed"
    # Without autoload the child imports torch_npu itself, so an error names torch_npu's own cause.
    env = {**os.environ, "TORCH_DEVICE_BACKEND_AUTOLOAD": "0"}
    command = [sys.executable, "-c", _PROBE, json.dumps(sys.path)]
    try:
        done = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, f"loading torch_npu took over {timeout:g} s (a hung NPU driver?); check `npu-smi info`"
    return _read_probe(done)


def _read_probe(done: subprocess.CompletedProcess) -> tuple[bool, str]:
    """The probe's output as (ok, reason in plain words)."""
    if done.returncode < 0:
        signame = signal.Signals(-done.returncode).name
        return False, (
            f"loading torch_npu killed the process ({signame}): the NPU driver or CANN is broken; "
            "check `npu-smi info` and that driver, CANN and torch_npu versions match"
        )
    lines = [line for line in done.stdout.splitlines() if line.startswith("WORKBENCH_PROBE ")]
    if not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return False, f"the torch_npu probe exited with code {done.returncode}: {tail[0]}"
    out = json.loads(lines[-1].split(" ", 1)[1])
    error = out.get("error", "")
    if error and out["stage"] == "torch":
        reason = f"`import torch` fails: {error}"
    elif ".so" in error:  # libhccl.so, libascendcl.so: CANN is missing or its set_env.sh was not sourced
        reason = f"torch_npu cannot load the CANN libraries ({error}); install CANN and run {SET_ENV}"
    elif error:
        reason = f"`import torch_npu` fails ({error}); it must match torch {out['torch']} exactly"
    elif out["count"] == 0:
        reason = f"torch_npu {out['version']} sees no NPU; check `npu-smi info` and {_VISIBLE_ENV['npu']}"
    else:
        return True, f"torch_npu {out['version']} sees {out['count']} NPU(s)"
    return False, reason


def guard_torch_import() -> None:
    """Hide a torch_npu that cannot load from this process, so torch and everything above it still work.

    Call it before the first `import torch` of a process. It costs one probe subprocess, and only where
    torch_npu is installed.
    """
    if "torch_npu" in sys.modules or importlib.util.find_spec("torch_npu") is None:
        return  # loaded (so it works), hidden already, or not installed
    ok, reason = probe_npu()
    if not ok:
        log.warning("not using torch_npu: %s", reason)
        # Else torch auto-loads it and dies ("Failed to load the backend extension: torch_npu").
        os.environ.setdefault("TORCH_DEVICE_BACKEND_AUTOLOAD", "0")
        # find_spec now answers None, so transformers' is_torch_npu_available() (which imports torch_npu
        # unguarded) and accelerate's is_npu_available() say no instead of crashing or aborting.
        sys.modules["torch_npu"] = None


def _torch():
    """torch, imported safely, with torch_npu registered when it works."""
    guard_torch_import()
    import torch

    if "torch_npu" not in sys.modules and probe_npu()[0]:
        import torch_npu  # noqa: F401  (registers torch.npu)
    return torch


# --- choosing the device ------------------------------------------------------------------------------------


def detect() -> list[str]:
    """Device types usable here, best first; always ends with cpu."""
    torch = _torch()
    return [kind for kind in ORDER[:-1] if _available(torch, kind)] + ["cpu"]


def _available(torch, kind: str) -> bool:
    if kind == "mps":
        return torch.backends.mps.is_available()
    module = getattr(torch, kind, None)
    try:
        return bool(module is not None and module.is_available() and module.device_count() > 0)
    except RuntimeError:  # some backends raise instead of saying no
        return False


def resolve(cfg: DeviceConfig | None = None, distributed: DistributedConfig | None = None) -> Device:
    """The recipe's device section as a concrete Device, falling back to the CPU or failing as asked."""
    from workbench.config import DeviceConfig

    cfg, notes, torch = cfg or DeviceConfig(), [], _torch()
    found = detect()
    kind = found[0] if cfg.type == "auto" else cfg.type
    if kind not in found:
        problem = f"{kind} was asked for, but found only {', '.join(found)}: {_why_missing(torch, kind)}."
        _refuse_or_note(cfg, notes, problem, "Using the CPU instead.")
        kind = "cpu"
    count = 1 if kind in ("cpu", "mps") else getattr(torch, kind).device_count()
    index = 0 if kind == "cpu" else cfg.index
    if index >= count:
        problem = f"{kind}:{index} was asked for, but only {count} {kind} device(s) are visible."
        _refuse_or_note(cfg, notes, problem, f"Using {kind}:0.")
        index = 0
    name = _name(torch, kind, index)
    precision = _precision(cfg, notes, kind, name, _bf16_supported(torch, kind, name))
    backend = _backend(torch, cfg, notes, kind, distributed.backend if distributed else "auto")
    memory, note = _memory_total(torch, kind, index), " ".join(notes) or None
    return Device(kind, index, count, name, precision, backend, _VISIBLE_ENV.get(kind), memory, note)


def _refuse_or_note(cfg: DeviceConfig, notes: list[str], problem: str, instead: str) -> None:
    if cfg.fallback == "error":
        raise DeviceError(f"{problem} (device.fallback is error, so the run stops here.)")
    notes.append(f"{problem} {instead}")


def _why_missing(torch, kind: str) -> str:
    """Why `kind` is not usable, and how to fix it."""
    if kind == "npu":
        reason, base = probe_npu()[1], re.sub(r"\+.*", "", torch.__version__)
        if reason != "torch_npu is not installed":
            return reason
        return f"{reason}; fix: pip install torch-npu=={base} (as torch is {base}), install CANN, {SET_ENV}"
    if kind == "cuda" and torch.version.cuda is None and getattr(torch.version, "hip", None) is None:
        return f"torch {torch.__version__} is a CPU-only build; fix: install a CUDA build (see pytorch.org)"
    if kind == "cuda":
        return f"torch sees no GPU; fix: check `nvidia-smi`, the driver and {_VISIBLE_ENV['cuda']}"
    if kind == "xpu":
        return "torch sees no Intel GPU; fix: install the XPU build of torch and the Intel GPU driver"
    return "MPS needs Apple silicon, macOS 12.3+ and an arm64 Python"


def _name(torch, kind: str, index: int) -> str:
    if kind == "mps":
        return f"Apple {platform.machine()} (MPS)"
    if kind != "cpu":
        return getattr(torch, kind).get_device_name(index)
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []
    models = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return models[0] if models else platform.processor() or platform.machine() or "CPU"


def _memory_total(torch, kind: str, index: int) -> int | None:
    try:
        if kind == "cpu":
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        if kind == "mps":
            return torch.mps.recommended_max_memory()
        return getattr(torch, kind).get_device_properties(index).total_memory
    except (AttributeError, ValueError, OSError, RuntimeError):
        return None


def _bf16_supported(torch, kind: str, name: str) -> bool:
    """Does the device compute in bf16 natively, not emulated?"""
    if kind == "cuda":
        try:  # without the flag newer torch says yes to pre-Ampere GPUs that only emulate bf16
            return torch.cuda.is_bf16_supported(including_emulation=False)
        except TypeError:
            return torch.cuda.is_bf16_supported()
    if kind == "npu":  # names first: some torch_npu releases lack is_bf16_supported
        return not _NPU_NO_BF16.match(name) and bool(getattr(torch.npu, "is_bf16_supported", lambda: True)())
    if kind == "xpu":
        return bool(getattr(torch.xpu, "is_bf16_supported", lambda: False)())
    if kind == "mps":
        return torch.backends.mps.is_macos_or_newer(14, 0)
    return True  # CPU: works everywhere, fast only with AVX512-BF16 or AMX


def _precision(cfg: DeviceConfig, notes: list[str], kind: str, name: str, bf16: bool) -> str:
    if cfg.precision == "auto" and kind in ("cpu", "mps"):
        return "fp32"  # bf16 autocast is slower than fp32 on most CPUs, and MPS half precision is fragile
    if cfg.precision == "auto":
        return "bf16" if bf16 else "fp16"
    if cfg.precision == "bf16" and kind == "cpu":
        notes.append("bf16 on a CPU works but is usually slower than fp32 (precision auto picks fp32).")
    elif cfg.precision == "bf16" and not bf16:
        _refuse_or_note(cfg, notes, f"bf16 was asked for, but {name} has no bf16 support.", "Using fp16.")
        return "fp16"
    elif cfg.precision == "fp16" and kind == "cpu":
        _refuse_or_note(cfg, notes, "fp16 was asked for, but fp16 needs an accelerator.", "Using fp32.")
        return "fp32"
    return cfg.precision


def _backend(torch, cfg: DeviceConfig, notes: list[str], kind: str, asked: str) -> str:
    xccl = getattr(torch.distributed, "is_xccl_available", lambda: False)()
    right = _BACKEND.get(kind) or ("xccl" if xccl else "gloo")
    if asked in (right, "gloo"):  # gloo runs anywhere, slowly
        return asked
    if asked != "auto":
        _refuse_or_note(
            cfg, notes, f"backend {asked} was asked for; {kind} needs {right}.", f"Using {right}."
        )
    return right


# --- what the trainer and the launcher need -----------------------------------------------------------------


def training_precision_args(device: Device) -> dict[str, bool]:
    """`bf16`/`fp16` for TRL and transformers configs: always explicit, since TRL turns bf16 on by default."""
    return {"bf16": device.precision == "bf16", "fp16": device.precision == "fp16"}


def torch_dtype(device: Device):
    """The dtype to load model weights in."""
    torch = _torch()
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[device.precision]


def apply_matmul_precision(device: Device, allow: bool) -> None:
    """Allow TF32 matmuls on CUDA, or their analogue HF32 on NPU; nothing elsewhere."""
    torch = _torch()
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high" if allow else "highest")
        torch.backends.cudnn.allow_tf32 = allow
    elif device.type == "npu":  # torch's TF32 switches do nothing on an NPU
        torch.npu.matmul.allow_hf32 = allow
        torch.npu.conv.allow_hf32 = allow


def visible_devices_env(device: Device, devices: str | None) -> dict[str, str]:
    """The variable that limits a run to `devices` ("0,1,2,3"); empty where the device type has none."""
    if not devices or device.visible_devices_env is None:
        return {}
    try:
        ids = [int(part) for part in devices.split(",")]
    except ValueError:
        raise DeviceError(f"visible devices {devices!r} must be numbers and commas, e.g. '0,1,2,3'") from None
    if len(set(ids)) != len(ids):
        raise DeviceError(f"visible devices {devices!r} lists a device twice")
    if device.type == "npu" and ids != sorted(ids):  # CANN rejects a list that is not ascending
        ids = sorted(ids)
        log.warning("%s must be ascending: using %s, not %s", device.visible_devices_env, ids, devices)
    return {device.visible_devices_env: ",".join(map(str, ids))}


def distributed_env(device: Device, dist: DistributedConfig) -> dict[str, str]:
    """Environment for a multi-process launch: visible devices and, on NPU, HCCL's connect timeout.

    NCCL has no such variable: its timeout belongs to the process group, so pass `ddp_timeout=dist.timeout_s`.
    """
    env = visible_devices_env(device, dist.visible_devices)
    if device.dist_backend == "hccl":  # HCCL takes 120..7200 s; its 120 s default is short for big models
        env["HCCL_CONNECT_TIMEOUT"] = str(min(max(dist.timeout_s, 120), 7200))
    return env


# --- memory and synchronisation -----------------------------------------------------------------------------


def _module(device: Device):
    """torch.cuda, torch.npu, torch.xpu or torch.mps for `device`; None for the CPU."""
    return None if device.type == "cpu" else getattr(_torch(), device.type)


def synchronize(device: Device) -> None:
    """Wait for the device's queued work, so timings measure the work and not its launch."""
    module = _module(device)
    if module is not None:
        module.synchronize(*([] if device.type == "mps" else [device.index]))


def memory_allocated(device: Device) -> int:
    """Bytes in use now: tensors on an accelerator, the process's resident memory on the CPU."""
    module = _module(device)
    if module is None:
        return _proc_status_bytes("VmRSS") or peak_memory(device)
    if device.type == "mps":
        return module.current_allocated_memory()
    return module.memory_allocated(device.index)


def peak_memory(device: Device) -> int:
    """Peak bytes since the last reset: tensors on an accelerator, resident memory (RSS) on the CPU."""
    module = _module(device)
    if module is None:
        return _proc_status_bytes("VmHWM") or _lifetime_peak_rss()
    if device.type == "mps":  # MPS keeps no peak; the driver's total is the closest
        return module.driver_allocated_memory()
    return module.max_memory_allocated(device.index)


def reset_peak_memory(device: Device) -> None:
    """Start a new peak-memory window."""
    module = _module(device)
    if module is None:
        try:  # Linux resets the peak RSS (VmHWM) when "5" is written here
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            pass
    elif device.type != "mps":
        module.reset_peak_memory_stats(device.index)


def empty_cache(device: Device) -> None:
    """Hand cached, unused accelerator memory back to the driver."""
    module = _module(device)
    if module is not None:
        module.empty_cache()


def _proc_status_bytes(key: str) -> int | None:
    status = Path("/proc/self/status")
    lines = status.read_text().splitlines() if status.is_file() else []
    values = [int(line.split()[1]) * 1024 for line in lines if line.startswith(f"{key}:")]
    return values[0] if values else None


def _lifetime_peak_rss() -> int:
    """Peak RSS of the whole process so far, where /proc is missing (macOS)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux


@dataclass(frozen=True)
class ProfilerBackend:
    module: Any  # offers profile(), schedule() and tensorboard_trace_handler()
    activities: list
    handler_options: dict = field(default_factory=dict)  # extra tensorboard_trace_handler arguments
    analyse: Callable[[str], None] | None = None  # offline analysis of the folder, after training


def profiler_backend(device: Device) -> ProfilerBackend:
    """The profiler for `device` (DESIGN 3.6): torch_npu.profiler on an NPU, torch.profiler elsewhere.

    On an NPU the stock profiler sees only the host. torch_npu's trace handler would parse its data when
    the window closes, stalling training; the workbench asks for raw data only and runs the offline
    analysis once training is over. DeviceError when the profiler is missing.
    """
    if device.type == "npu":
        try:
            module = importlib.import_module("torch_npu.profiler")
            offline = importlib.import_module("torch_npu.profiler.profiler")
        except ImportError as error:
            raise DeviceError(f"torch_npu has no profiler module here ({error}); update torch_npu") from None
        activities = [module.ProfilerActivity.CPU, module.ProfilerActivity.NPU]
        analyse = lambda folder: offline.analyse(profiler_path=folder)  # noqa: E731 -> <worker>_ascend_pt/
        return ProfilerBackend(module, activities, {"analyse_flag": False}, analyse)
    module = getattr(_torch(), "profiler", None)
    if module is None or not hasattr(module, "schedule"):
        raise DeviceError("this torch has no torch.profiler with schedules; install torch >= 2.0")
    extra = [module.ProfilerActivity.CUDA] if device.type == "cuda" else []
    return ProfilerBackend(module, [module.ProfilerActivity.CPU, *extra])


def subprocess_reason(kind: str) -> str | None:
    """Why runs on a `kind` device belong in a subprocess rather than a notebook kernel (DESIGN 3.3)."""
    if kind == "npu":
        return "NPU: torch_npu disables its task queue inside IPython, which slows training"
    return None


def four_bit_problem(kind: str) -> str | None:
    """Why 4-bit QLoRA cannot run on a `kind` device, found without importing torch; None if it may."""
    if kind == "npu":
        return (
            "bitsandbytes from PyPI ships no Ascend NPU kernels, so 4-bit QLoRA cannot run on an NPU; "
            "use adapter.type: lora with bf16 (and DeepSpeed ZeRO-3 for a model too big for one NPU)"
        )
    if kind not in ("cpu", "cuda"):
        return f"4-bit QLoRA runs on CPU and CUDA only, not {kind}; use adapter.type: lora"
    if importlib.util.find_spec("bitsandbytes") is None:
        return "bitsandbytes is not installed; pip install bitsandbytes, or use adapter.type: lora"
    return None


def supports_4bit(device: Device) -> tuple[bool, str]:
    """Can bitsandbytes quantise to 4 bits here (QLoRA)? With the reason and what to do instead."""
    if problem := four_bit_problem(device.type):
        return False, problem
    try:
        bnb = importlib.import_module("bitsandbytes")
    except Exception as error:  # noqa: BLE001  (a broken native library raises all sorts)
        return False, f"bitsandbytes is installed but cannot be imported ({type(error).__name__}: {error})"
    return True, f"bitsandbytes {getattr(bnb, '__version__', '?')} quantises to 4 bits on {device.type}"


# --- what `workbench doctor` reports (workbench.doctor adds versions and CANN) ------------------------------


def diagnose(torch_npu_installed: bool) -> tuple[list[tuple[str, str]], list[str], Device | None]:
    """The doctor's rows, warnings and the device found (None if torch fails): probe, precision, backend."""
    rows, warnings = [], []
    if torch_npu_installed:
        ok, reason = probe_npu()
        rows.append(("torch_npu probe", reason))
        warnings += [] if ok else [f"torch_npu is installed but unusable: {reason}"]
    try:
        device, torch_cuda = resolve(), _torch().version.cuda
    except Exception as error:  # noqa: BLE001  (a missing or broken torch is what doctor must report)
        rows.append(("device", f"unknown: torch cannot be used ({type(error).__name__}: {error})"))
        return rows, [*warnings, f"torch cannot be used: {error}"], None
    rows += [("device", str(device)), ("precision", device.precision), ("backend", device.dist_backend)]
    rows += [("note", device.note)] if device.note else []
    if torch_npu_installed and torch_cuda:
        warnings.append(
            f"torch_npu is installed next to a CUDA build of torch (CUDA {torch_cuda}); "
            "torch_npu needs the CPU build of the same torch version: never install both"
        )
    return rows, warnings, device
