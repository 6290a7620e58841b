"""npu-workbench: fine-tune and align language models on Ascend NPUs, CUDA GPUs or a CPU.

`import workbench` is instant: torch, transformers and TRL load only when a run starts.

    import workbench
    cfg = workbench.load_config("recipes/quickstart.yaml", ["train.max_steps=50"])
    result = workbench.train(cfg)
"""

from workbench.config import ConfigError, RunConfig, override
from workbench.config import load as load_config

__version__ = "0.1.0"
__all__ = ["ConfigError", "RunConfig", "load_config", "override", "train"]


def train(cfg, on_log=None, should_stop=None, resume=None, echo=True, recipe=None):
    """Run a RunConfig or recipe path; see workbench.training.train."""
    from workbench.training import train as _train

    return _train(cfg, on_log, should_stop, resume, echo, recipe)
