"""Only workbench/devices.py names device types (DESIGN 3.5); everything else asks it.

A mention is a device type as a whole string ("cuda", 'npu:0', f"cuda:{i}") or torch's per-device module
(torch.cuda.*, torch.npu.*, torch.backends.cudnn). Prose that merely contains the word is fine.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OWNER = ROOT / "workbench" / "devices.py"
MENTION = re.compile(
    r"""["'](cuda|npu|xpu|mps)(:[^"'\s]*)?["']"""  # a device type as a string
    r"|\btorch\.(cuda|npu|xpu|mps)\b"  # torch's per-device modules
    r"|\btorch\.backends\.(cuda|cudnn|mps)\b"
)


def mentions(source: str) -> list[tuple[int, str]]:
    """(line number, line) for each line that names a device type."""
    return [
        (number, line.strip()) for number, line in enumerate(source.splitlines(), 1) if MENTION.search(line)
    ]


def sources() -> list[Path]:
    files = sorted((ROOT / "workbench").rglob("*.py")) + sorted((ROOT / "widgets").rglob("*.py"))
    return [path for path in files if path != OWNER]


@pytest.mark.parametrize(
    "line",
    [
        'device = "cuda"',
        "if kind == 'npu':",
        'model.to("npu:0")',
        'target = f"cuda:{index}"',
        "torch.cuda.synchronize()",
        "torch.npu.matmul.allow_hf32 = True",
        "torch.backends.cudnn.allow_tf32 = True",
        "available = torch.xpu.is_available()",
        'type: Literal["auto", "npu", "cuda", "cpu"] = "auto"',
    ],
)
def test_scanner_catches_a_device_name(line):
    assert mentions(f"x = 1\n{line}\n") == [(2, line)]


@pytest.mark.parametrize(
    "line",
    [
        "device = devices.resolve(cfg.device)",
        'name = "npu_workbench"',
        "# the NPU path goes through devices.py, cuda too",
        "backend = device.dist_backend",
    ],
)
def test_scanner_ignores_lines_that_name_no_device(line):
    assert mentions(line) == []


def test_scanner_looks_at_the_package_and_the_widgets():
    names = {path.relative_to(ROOT).as_posix() for path in sources()}
    assert "workbench/config.py" in names and "widgets/__init__.py" in names
    assert "workbench/devices.py" not in names


def test_only_devices_py_names_device_types():
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line}"
        for path in sources()
        for number, line in mentions(path.read_text(encoding="utf-8"))
    ]
    assert not found, "ask workbench.devices instead of naming a device type:\n" + "\n".join(found)
