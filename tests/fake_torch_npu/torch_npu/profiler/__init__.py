"""A stand-in for torch_npu.profiler: records how it was driven, in CALLS.

The window itself writes nothing; the offline analysis (torch_npu.profiler.profiler.analyse) writes the
tables in ascend_profiler_output/ as torch_npu would.
"""

import enum

CALLS = []


class ProfilerActivity(enum.Enum):
    CPU = "CPU"
    NPU = "NPU"


def schedule(wait, warmup, active, repeat=0, skip_first=0):
    return {"wait": wait, "warmup": warmup, "active": active, "repeat": repeat}


def tensorboard_trace_handler(dir_name=None, worker_name=None, analyse_flag=True):
    return {"trace_handler": dir_name, "analyse_flag": analyse_flag}


class profile:
    def __init__(self, activities=None, schedule=None, on_trace_ready=None, **options):
        CALLS.append(
            {
                "activities": [a.value for a in activities],
                "schedule": schedule,
                "on_trace_ready": on_trace_ready,
                **options,
            }
        )

    def start(self):
        CALLS.append("start")

    def step(self):
        CALLS.append("step")

    def stop(self):
        CALLS.append("stop")
