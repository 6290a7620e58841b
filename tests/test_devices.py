"""The device layer: selection, precision, backend, probing, memory, and the doctor built on it.

A fake torch_npu (tests/fake_torch_npu) stands in for an Ascend NPU. Registering it renames torch's
PrivateUse1 backend for good, so everything that needs it runs in a subprocess and reports back as JSON.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from workbench import devices, doctor
from workbench.config import DeviceConfig, DistributedConfig

ROOT = Path(__file__).resolve().parents[1]
FAKES = Path(__file__).resolve().parent / "fake_torch_npu"
REAL_NPU_STACK = importlib.util.find_spec("torch_npu") is not None
no_real_npu_stack = pytest.mark.skipif(REAL_NPU_STACK, reason="torch_npu is really installed here")
CPU = devices.Device("cpu")


def start_python(args: list[str], *pythonpath: Path) -> subprocess.Popen:
    """Start the venv's Python with `pythonpath` first on its path."""
    env = {k: v for k, v in os.environ.items() if k not in ("TORCH_DEVICE_BACKEND_AUTOLOAD", "FAKE_NPU_NAME")}
    env["PYTHONPATH"] = os.pathsep.join(map(str, [*pythonpath, ROOT]))
    return subprocess.Popen(
        [sys.executable, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def result(process: subprocess.Popen):
    """The JSON that the process prints on its last line."""
    stdout, stderr = process.communicate(timeout=180)
    assert process.returncode == 0, stderr[-3000:]
    return json.loads(stdout.strip().splitlines()[-1])


BROKEN_NPU_SESSION = """
import json, os
from workbench import devices
devices.guard_torch_import()
import torch
from transformers.utils import is_torch_npu_available
print(json.dumps({"autoload": os.environ.get("TORCH_DEVICE_BACKEND_AUTOLOAD"), "probe": devices.probe_npu(),
                  "found": devices.detect(), "transformers_npu": is_torch_npu_available()}))
"""


@pytest.fixture(scope="module")
def sessions() -> dict:
    """Two processes, started together to save time: one with the fake NPU, one with a broken torch_npu."""
    started = {
        "fake": start_python([str(FAKES / "npu_scenario.py")], FAKES),
        "broken": start_python(["-c", BROKEN_NPU_SESSION], FAKES / "broken_import"),
    }
    return {name: result(process) for name, process in started.items()}


@pytest.fixture
def fake_npu(sessions) -> dict:
    """What the device layer decides in a process that has the fake torch_npu (an 8-NPU Ascend910B2)."""
    return sessions["fake"]


@pytest.fixture
def broken_npu(sessions) -> dict:
    """A process whose torch_npu cannot load (no CANN) that guards, then imports torch."""
    return sessions["broken"]


@pytest.fixture(autouse=True)
def fresh_probe():
    devices.probe_npu.cache_clear()
    yield
    devices.probe_npu.cache_clear()


# --- with the fake NPU --------------------------------------------------------------------------------------


def test_probe_runs_before_torch_is_imported(fake_npu):
    assert fake_npu["torch_imported_at_start"] is False
    ok, reason = fake_npu["probe"]
    assert ok and reason.endswith("sees 8 NPU(s)")


def test_auto_picks_the_npu(fake_npu):
    auto = fake_npu["auto"]
    assert (auto["type"], auto["torch_device"], auto["count"], auto["name"]) == (
        "npu",
        "npu:0",
        8,
        "Ascend910B2",
    )


def test_910b_trains_in_bf16(fake_npu):
    assert fake_npu["auto"]["precision"] == "bf16"
    assert fake_npu["precision_args"] == {"bf16": True, "fp16": False}
    assert fake_npu["dtype"] == "torch.bfloat16"


def test_npu_uses_hccl_and_ascend_visible_devices(fake_npu):
    assert fake_npu["auto"]["dist_backend"] == "hccl"
    assert fake_npu["auto"]["visible_devices_env"] == "ASCEND_RT_VISIBLE_DEVICES"


def test_npu_visible_devices_are_sorted_ascending(fake_npu):
    assert fake_npu["visible"] == {"ASCEND_RT_VISIBLE_DEVICES": "0,1,2,3"}


def test_npu_distributed_env_sets_the_hccl_timeout(fake_npu):
    assert fake_npu["dist_env"] == {"ASCEND_RT_VISIBLE_DEVICES": "0,1", "HCCL_CONNECT_TIMEOUT": "900"}


def test_910a_trains_in_fp16(fake_npu):
    assert (fake_npu["910a"]["precision"], fake_npu["910a"]["note"]) == ("fp16", None)


def test_bf16_asked_on_910a_becomes_fp16_with_a_note(fake_npu):
    assert fake_npu["910a_bf16"]["precision"] == "fp16"
    assert "Ascend910A has no bf16" in fake_npu["910a_bf16"]["note"]


def test_bf16_asked_on_910a_with_fallback_error_stops(fake_npu):
    assert "Ascend910A has no bf16" in fake_npu["910a_bf16_error"]


def test_npu_index_past_the_last_device_is_noted(fake_npu):
    assert (
        fake_npu["index_too_high"]
        == "npu:9 was asked for, but only 8 npu device(s) are visible. Using npu:0."
    )


def test_nccl_asked_on_npu_becomes_hccl(fake_npu):
    assert "npu needs hccl" in fake_npu["wrong_backend_note"]


def test_no_4bit_on_npu(fake_npu):
    ok, reason = fake_npu["4bit"]
    assert not ok and "adapter.type: lora with bf16" in reason


def test_matmul_precision_sets_hf32_on_npu(fake_npu):
    assert fake_npu["hf32"] is True


def test_peak_memory_comes_from_the_npu_after_a_reset(fake_npu):
    assert fake_npu["peak"] == 1024


def test_accelerate_selects_the_npu(fake_npu):
    assert fake_npu["accelerate_npu"] is True
    assert fake_npu["accelerate_device"] == "npu"


def test_transformers_sees_the_npu_and_its_bf16(fake_npu):
    assert fake_npu["transformers_npu"] is True
    assert fake_npu["transformers_bf16"] is True


# --- a broken torch_npu -------------------------------------------------------------------------------------


def test_probe_explains_a_torch_npu_without_cann(broken_npu):
    ok, reason = broken_npu["probe"]
    assert not ok and "libhccl.so" in reason and "set_env.sh" in reason


def test_guard_turns_off_backend_autoload_so_torch_imports(broken_npu):
    assert broken_npu["autoload"] == "0"
    assert broken_npu["found"][-1] == "cpu" and "npu" not in broken_npu["found"]


def test_guard_hides_the_broken_torch_npu_from_transformers(broken_npu):
    assert broken_npu["transformers_npu"] is False  # without the guard: ImportError from transformers


def test_probe_survives_a_torch_npu_that_aborts(monkeypatch):
    monkeypatch.syspath_prepend(str(FAKES / "broken_abort"))
    ok, reason = devices.probe_npu()
    assert not ok and "SIGABRT" in reason


@no_real_npu_stack
def test_probe_skips_the_subprocess_without_torch_npu(monkeypatch):
    monkeypatch.setattr(devices.subprocess, "run", lambda *a, **k: pytest.fail("probe started a subprocess"))
    assert devices.probe_npu() == (False, "torch_npu is not installed")


def test_import_loads_no_torch():
    code = "import json, sys, workbench.devices; print(json.dumps('torch' in sys.modules))"
    assert result(start_python(["-c", code])) is False


# --- CPU and missing accelerators ---------------------------------------------------------------------------


def test_detect_ends_with_cpu():
    assert devices.detect()[-1] == "cpu"


def test_cpu_trains_in_fp32():
    device = devices.resolve(DeviceConfig(type="cpu"))
    assert (device.precision, device.dist_backend, device.torch_device) == ("fp32", "gloo", "cpu")


def test_cpu_precision_args_are_both_false():
    device = devices.resolve(DeviceConfig(type="cpu"))
    assert devices.training_precision_args(device) == {"bf16": False, "fp16": False}


def test_cpu_loads_weights_in_float32():
    import torch

    assert devices.torch_dtype(devices.resolve(DeviceConfig(type="cpu"))) is torch.float32


@no_real_npu_stack
def test_missing_npu_falls_back_to_cpu_with_how_to_fix():
    device = devices.resolve(DeviceConfig(type="npu"))
    assert device.type == "cpu"
    for words in ("npu was asked for", "found only", "torch_npu is not installed", "pip install torch-npu=="):
        assert words in device.note
    assert "set_env.sh" in device.note


@no_real_npu_stack
def test_missing_npu_with_fallback_error_raises():
    with pytest.raises(devices.DeviceError, match="npu was asked for"):
        devices.resolve(DeviceConfig(type="npu", fallback="error"))


def test_missing_cuda_on_a_cpu_build_says_install_a_cuda_build():
    import torch

    if torch.version.cuda is not None:
        pytest.skip("this torch is a CUDA build")
    assert "install a CUDA build" in devices.resolve(DeviceConfig(type="cuda")).note


def test_bf16_asked_on_cpu_is_honoured_with_a_note():
    device = devices.resolve(DeviceConfig(type="cpu", precision="bf16"))
    assert device.precision == "bf16" and "slower" in device.note


def test_fp16_asked_on_cpu_becomes_fp32():
    device = devices.resolve(DeviceConfig(type="cpu", precision="fp16"))
    assert device.precision == "fp32" and "fp16 needs an accelerator" in device.note


def test_hccl_asked_on_cpu_with_fallback_error_raises():
    with pytest.raises(devices.DeviceError, match="cpu needs gloo"):
        devices.resolve(DeviceConfig(type="cpu", fallback="error"), DistributedConfig(backend="hccl"))


def test_matmul_precision_leaves_the_cpu_alone():
    import torch

    before = torch.get_float32_matmul_precision()
    devices.apply_matmul_precision(CPU, allow=before == "highest")
    assert torch.get_float32_matmul_precision() == before


# --- visible devices and the launcher's environment ---------------------------------------------------------


def test_cpu_has_no_visible_devices_variable():
    assert devices.visible_devices_env(CPU, "0,1") == {}


def test_cuda_visible_devices_keep_their_order():
    gpu = devices.Device("cuda", visible_devices_env="CUDA_VISIBLE_DEVICES", dist_backend="nccl")
    assert devices.visible_devices_env(gpu, "3, 1") == {"CUDA_VISIBLE_DEVICES": "3,1"}


def test_visible_devices_must_be_numbers():
    gpu = devices.Device("cuda", visible_devices_env="CUDA_VISIBLE_DEVICES")
    with pytest.raises(devices.DeviceError, match="e.g. '0,1,2,3'"):
        devices.visible_devices_env(gpu, "gpu0")


def test_hccl_timeout_is_raised_to_its_minimum():
    npu = devices.Device("npu", dist_backend="hccl", visible_devices_env="ASCEND_RT_VISIBLE_DEVICES")
    assert devices.distributed_env(npu, DistributedConfig(timeout_s=30)) == {"HCCL_CONNECT_TIMEOUT": "120"}


# --- memory -------------------------------------------------------------------------------------------------


def test_cpu_peak_memory_sees_a_large_allocation():
    devices.reset_peak_memory(CPU)
    before = devices.peak_memory(CPU)
    block = b"x" * (256 * 2**20)  # written, so resident
    assert devices.peak_memory(CPU) >= before + 200 * 2**20
    del block


def test_cpu_memory_allocated_is_the_resident_size():
    assert 10 * 2**20 < devices.memory_allocated(CPU) <= devices.peak_memory(CPU)


# --- 4-bit --------------------------------------------------------------------------------------------------


def _fake_bitsandbytes(tmp_path, monkeypatch, body: str) -> None:
    (tmp_path / "bitsandbytes").mkdir()
    (tmp_path / "bitsandbytes" / "__init__.py").write_text(body)
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # so the undo removes our fake again
    monkeypatch.delitem(sys.modules, "bitsandbytes")
    monkeypatch.syspath_prepend(str(tmp_path))


def test_4bit_needs_bitsandbytes_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # find_spec then says "not installed"
    ok, reason = devices.supports_4bit(CPU)
    assert not ok and "pip install bitsandbytes" in reason


def test_4bit_reports_a_bitsandbytes_that_cannot_import(tmp_path, monkeypatch):
    _fake_bitsandbytes(tmp_path, monkeypatch, "raise OSError('libbitsandbytes_cpu.so: bad ELF')")
    ok, reason = devices.supports_4bit(CPU)
    assert not ok and "libbitsandbytes_cpu.so" in reason


def test_4bit_works_on_cpu_with_bitsandbytes(tmp_path, monkeypatch):
    _fake_bitsandbytes(tmp_path, monkeypatch, "")
    assert devices.supports_4bit(CPU)[0] is True


# --- doctor -------------------------------------------------------------------------------------------------

GOOD = {
    "torch": "2.5.1+cpu",
    "torch_npu": None,
    "transformers": "5.2.0",
    "trl": "1.12.0",
    "bitsandbytes": None,
}


def doctor_with(monkeypatch, **changes) -> doctor.Report:
    found = GOOD | changes
    monkeypatch.setattr(doctor, "_version", lambda name: found.get(name, "1.0"))
    return doctor.report()


def test_doctor_warns_when_torch_and_torch_npu_differ(monkeypatch):
    report = doctor_with(monkeypatch, torch_npu="2.4.0.post2")
    assert any("torch 2.5.1+cpu and torch_npu 2.4.0.post2 do not match" in w for w in report.warnings)


def test_doctor_accepts_a_post_release_of_the_same_torch_npu(monkeypatch):
    report = doctor_with(monkeypatch, torch_npu="2.5.1.post1")
    assert not any("do not match" in w for w in report.warnings)


def test_doctor_warns_about_bitsandbytes_next_to_torch_npu(monkeypatch):
    report = doctor_with(monkeypatch, torch_npu="2.5.1", bitsandbytes="0.45.0")
    assert any("bitsandbytes has no NPU kernels" in w for w in report.warnings)


def test_doctor_warns_that_trl_1_14_has_no_ppo(monkeypatch):
    assert any("no PPO" in w for w in doctor_with(monkeypatch, trl="1.14.0").warnings)


def test_doctor_warns_about_transformers_4(monkeypatch):
    assert any("older than 5" in w for w in doctor_with(monkeypatch, transformers="4.57.1").warnings)


def test_doctor_is_quiet_on_a_good_cpu_setup(monkeypatch):
    assert doctor_with(monkeypatch).warnings == []


def test_doctor_warns_about_torch_npu_next_to_a_cuda_build(monkeypatch):
    monkeypatch.setattr(devices, "resolve", lambda: CPU)
    monkeypatch.setattr(devices, "_torch", lambda: SimpleNamespace(version=SimpleNamespace(cuda="12.1")))
    report = doctor_with(monkeypatch, torch_npu="2.5.1")
    assert any("next to a CUDA build" in w for w in report.warnings)


def test_doctor_reports_a_broken_torch_instead_of_crashing(monkeypatch):
    def broken():
        raise RuntimeError("Failed to load the backend extension: torch_npu")

    monkeypatch.setattr(devices, "resolve", broken)
    report = doctor_with(monkeypatch)
    assert dict(report.rows)["device"].startswith("unknown: torch cannot be used")


def test_format_doctor_lists_versions_and_warnings(monkeypatch):
    text = doctor.format_report(doctor_with(monkeypatch, trl="1.14.0"))
    assert "torch         2.5.1+cpu" in text and "! trl 1.14.0 has no PPO" in text


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("{arch}-linux/ascend_toolkit_install.info", "package_name=Ascend-cann-toolkit\nversion=8.0.RC2\n"),
        (
            "version.cfg",
            "runtime_running_version=[7.0.0.5.242:8.0.RC1]\ntoolkit_running_version=[7.0.0.5.242:8.0.RC1]",
        ),
    ],
)
def test_cann_version_is_read_from_the_toolkit_home(tmp_path, monkeypatch, name, text):
    path = tmp_path / name.format(arch=doctor.platform.machine())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    monkeypatch.setenv("ASCEND_TOOLKIT_HOME", str(tmp_path))
    assert doctor.cann_version() == ("8.0.RC2" if "RC2" in text else "8.0.RC1")
