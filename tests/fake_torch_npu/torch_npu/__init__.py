"""A stand-in for torch_npu: registers a fake "npu" PrivateUse1 backend, so device code runs without one.

Put this folder's parent on sys.path *in a subprocess*: renaming PrivateUse1 is process-wide and irreversible.
FAKE_NPU_NAME (default Ascend910B2; Ascend910A has no bf16) and FAKE_NPU_COUNT (default 8) shape the fake,
read at each call so one process can try several chips. No tensor can live on it: there are no kernels.
"""

import os
import types

import torch

__version__ = os.environ.get("FAKE_NPU_VERSION", torch.__version__.split("+")[0])
_stats = {"allocated": 1024, "peak": 4096}  # reset_peak_memory_stats brings peak down to 1024


def _name(device=None):
    return os.environ.get("FAKE_NPU_NAME", "Ascend910B2")


def _count():
    return int(os.environ.get("FAKE_NPU_COUNT", "8"))


def _is_bf16_supported():
    # Like torch_npu's own check (SoC version >= Ascend910B1): the first 910 generation has no bf16 units.
    return not _name().startswith(("Ascend910A", "Ascend910Pro", "Ascend910Premium", "Ascend310"))


def _reset_peak(device=None):
    _stats["peak"] = _stats["allocated"]


npu = types.ModuleType("torch_npu.npu")
npu.__dict__.update(
    is_available=lambda: _count() > 0,
    device_count=_count,
    current_device=lambda: 0,
    set_device=lambda device: None,
    get_device_name=_name,
    get_device_properties=lambda device=None: types.SimpleNamespace(name=_name(), total_memory=64 * 2**30),
    is_bf16_supported=_is_bf16_supported,
    get_amp_supported_dtype=lambda: [torch.float16, torch.bfloat16],
    synchronize=lambda device=None: None,
    memory_allocated=lambda device=None: _stats["allocated"],
    max_memory_allocated=lambda device=None: _stats["peak"],
    reset_peak_memory_stats=_reset_peak,
    empty_cache=lambda: None,
    manual_seed=lambda seed: None,
    manual_seed_all=lambda seed: None,
    is_initialized=lambda: True,
    _is_in_bad_fork=lambda: False,
    _lazy_init=lambda: None,
    matmul=types.SimpleNamespace(allow_hf32=False),
    conv=types.SimpleNamespace(allow_hf32=False),
)

torch.utils.rename_privateuse1_backend("npu")
torch._register_device_module("npu", npu)
torch.utils.generate_methods_for_privateuse1_backend(for_storage=False)


def _autoload():
    """torch calls this at `import torch` (entry point torch.backends), as it does for the real torch_npu."""
