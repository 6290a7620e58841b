"""Run the device layer against the fake NPU and print what it decided as one JSON object.

tests/test_devices.py runs this in a subprocess (with this folder on PYTHONPATH) and asserts on the output.
"""

import json
import os
import sys
from dataclasses import asdict

from workbench import devices
from workbench.config import DeviceConfig, DistributedConfig

out = {"torch_imported_at_start": "torch" in sys.modules, "probe": devices.probe_npu()}
device = devices.resolve(DeviceConfig(), DistributedConfig())
out["auto"] = asdict(device) | {"torch_device": device.torch_device}
out["precision_args"] = devices.training_precision_args(device)
out["dtype"] = str(devices.torch_dtype(device))
out["visible"] = devices.visible_devices_env(device, "3,1,0,2")
out["dist_env"] = devices.distributed_env(device, DistributedConfig(visible_devices="0,1", timeout_s=900))
out["4bit"] = devices.supports_4bit(device)
devices.apply_matmul_precision(device, True)
out["hf32"] = sys.modules["torch"].npu.matmul.allow_hf32
devices.reset_peak_memory(device)
devices.synchronize(device)
out["peak"] = devices.peak_memory(device)
out["index_too_high"] = devices.resolve(DeviceConfig(type="npu", index=9)).note
out["wrong_backend_note"] = devices.resolve(DeviceConfig(), DistributedConfig(backend="nccl")).note

os.environ["FAKE_NPU_NAME"] = "Ascend910A"
out["910a"] = asdict(devices.resolve(DeviceConfig()))
out["910a_bf16"] = asdict(devices.resolve(DeviceConfig(precision="bf16")))
try:
    devices.resolve(DeviceConfig(precision="bf16", fallback="error"))
    out["910a_bf16_error"] = None
except devices.DeviceError as error:
    out["910a_bf16_error"] = str(error)
os.environ["FAKE_NPU_NAME"] = "Ascend910B2"


def upstream_choice() -> dict:
    """What accelerate and transformers pick, asked after the fake is registered, as in a user's session."""
    from accelerate import PartialState
    from accelerate.utils import is_npu_available
    from transformers.utils import is_torch_bf16_gpu_available, is_torch_npu_available

    return {
        "accelerate_npu": is_npu_available(),
        "accelerate_device": PartialState().default_device.type,
        "transformers_npu": is_torch_npu_available(),
        "transformers_bf16": is_torch_bf16_gpu_available(),
    }


print(json.dumps(out | upstream_choice()))
