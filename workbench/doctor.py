"""`workbench doctor`: the versions that matter, CANN, the device found, and combinations known to break.

Versions come from package metadata, so nothing heavy is imported to read them. What the device layer
finds comes from `devices.diagnose()`: only workbench.devices names device types.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import os
import platform
import re
from dataclasses import dataclass, field
from pathlib import Path

from workbench import devices

PACKAGES = ("torch", "torch_npu", "transformers", "trl", "peft", "accelerate", "bitsandbytes", "datasets")


@dataclass
class Report:
    rows: list[tuple[str, str]] = field(default_factory=list)  # (what, version or finding)
    warnings: list[str] = field(default_factory=list)
    device: dict | None = None  # what the device layer found (type, count, name, memory_total, precision)


def report() -> Report:
    """Versions, the device found, and warnings for combinations known to break. Never raises."""
    found = versions()
    rows, warnings, device = devices.diagnose(torch_npu_installed=bool(found["torch_npu"]))
    version_rows = [(name, value or "not installed") for name, value in found.items()]
    found_device = dataclasses.asdict(device) if device else None
    return Report(version_rows + rows, _version_warnings(found) + warnings, found_device)


def versions() -> dict[str, str | None]:
    """Python, the ML stack and CANN; None where something is missing."""
    found = {"python": platform.python_version()} | {name: _version(name) for name in PACKAGES}
    return found | {"CANN": cann_version()}


def _version(dist: str) -> str | None:
    """An installed distribution's version, from its metadata, without importing it."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def cann_version() -> str | None:
    """The CANN toolkit version, from the files its installer writes (set_env.sh exports its home)."""
    homes = [os.environ.get("ASCEND_TOOLKIT_HOME"), os.environ.get("ASCEND_HOME_PATH")]
    homes += ["/usr/local/Ascend/ascend-toolkit/latest", "/usr/local/Ascend/cann"]
    for home in filter(None, homes):
        for name in (f"{platform.machine()}-linux/ascend_toolkit_install.info", "version.cfg"):
            path = Path(home, name)
            text = path.read_text(errors="replace") if path.is_file() else ""
            # ascend_toolkit_install.info: version=8.0.RC2
            # version.cfg: toolkit_running_version=[7.0.0.5.242:8.0.RC1]
            match = re.search(r"^(?:version|toolkit_running_version)=\[?([^\]\s]+)", text, re.MULTILINE)
            if match:
                return match.group(1).split(":")[-1]
    return None


def _version_warnings(found: dict[str, str | None]) -> list[str]:
    torch_v, npu_v, trl_v, tf_v = found["torch"], found["torch_npu"], found["trl"], found["transformers"]
    out = [] if torch_v else ["torch is not installed; pip install torch (the CPU build to use torch_npu)"]
    if torch_v and npu_v and _base_version(torch_v) != _base_version(npu_v):
        need = _base_version(npu_v)
        out.append(
            f"torch {torch_v} and torch_npu {npu_v} do not match: torch_npu {npu_v} needs torch {need}; "
            f"pip install torch=={need}, or the torch_npu release for torch {_base_version(torch_v)}"
        )
    if npu_v and found["bitsandbytes"]:
        out.append("bitsandbytes has no NPU kernels: QLoRA cannot run on an NPU; use lora with bf16")
    if npu_v and not found["CANN"]:
        out.append(
            f"torch_npu is installed but no CANN toolkit was found; install CANN and run {devices.SET_ENV}"
        )
    if trl_v and tuple(map(int, re.findall(r"\d+", trl_v)[:2])) >= (1, 14):
        out.append(f"trl {trl_v} has no PPO (removed in 1.14); pip install 'trl<1.14' for method ppo")
    if tf_v and int(re.findall(r"\d+", tf_v)[0]) < 5:
        out.append(f"transformers {tf_v} is older than 5; the workbench needs transformers>=5")
    return out


def _base_version(version: str) -> str:
    """2.5.1 for 2.5.1+cpu, 2.5.1.post1 and 2.5.1rc1: the part torch_npu must share with torch."""
    return ".".join(re.findall(r"\d+", version)[:3])


def format_report(report: Report) -> str:
    """The report as aligned text, for a terminal or a notebook cell."""
    width = max(len(name) for name, _ in report.rows)
    lines = [f"  {name.ljust(width)}  {value}" for name, value in report.rows]
    problems = [f"  ! {text}" for text in report.warnings] or ["  no known problems"]
    return "\n".join(["workbench doctor", *lines, "warnings:", *problems])
