"""A stand-in for torch_npu.profiler.profiler: analyse() lays out what torch_npu's offline analysis writes.

The tables in ../../ascend_profiler_output were written by hand in the column formats torch_npu documents
(operator_details.csv, step_trace_time.csv, memory_record.csv, trace_view.json); they are not a recording
from an NPU. The step has 30 ms of computing, 12 ms of communication not hidden by it and 3 ms free; one
operator, aten::isin.Tensor_Tensor_out, falls back to the CPU.
"""

import shutil
from pathlib import Path

from torch_npu.profiler import CALLS

TABLES = Path(__file__).resolve().parents[2] / "ascend_profiler_output"


def analyse(profiler_path="", max_process_number=None, export_type=None):
    CALLS.append({"analyse": profiler_path})
    shutil.copytree(TABLES, Path(profiler_path) / "fakehost_1234_20261202_ascend_pt" / "ASCEND_PROFILER_OUTPUT")
