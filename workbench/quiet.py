"""Library chatter that asks nothing of the user, silenced where it is emitted (DESIGN 4: quiet output).

In a notebook every line on stderr is a pink box that reads like an error. Each entry below names the
exact line and says why it is harmless here; everything else those libraries say still shows.
"""

from __future__ import annotations

import logging
import os
import warnings

# Log lines, by the logger that emits them (a filter there drops these and keeps the rest)
LOG_LINES = {
    # PEFT imports bitsandbytes for every LoRA model when it is installed; bitsandbytes then tries an
    # optional CPU kernel from the hub and, failing (offline, untrusted), uses its own CPU code instead.
    "bitsandbytes.backends.cpu.ops": "Failed to load CPU gemm_4bit_forward",
    # TRL 1.12's SFT loss builds its outputs with the name transformers 5.2x renamed.
    "transformers.utils.generic": "`past_key_values`/`cache_params` are deprecated",
    # TRL's PPO passes output flags next to its generation config; upstream's call, not the user's.
    "transformers.generation.utils": "Passing `generation_config` together",
}

# Python warnings: (category, the start of the message)
WARNINGS = (
    # TRL 1.12 asks models for the name transformers 5.2x renamed; nothing for a user to change.
    (FutureWarning, "`is_gradient_checkpointing` is deprecated"),
    # galore-torch 1.0 ships its own AdamW and warns about it on every run; it is the optimizer GaLore needs.
    (FutureWarning, "This implementation of AdamW is deprecated"),
    # bitsandbytes' 4-bit matmul has no autograd registration; QLoRA's gradients reach the adapters
    # through its own backward (the sft_qlora starter's measured effect checks that it learns).
    (UserWarning, "bitsandbytes::gemv_4bit: an autograd kernel was not registered"),
    # TRL's PPO logs the variance of a one-element ratio on a batch of one; the metric is nan, not the run.
    (UserWarning, r"var\(\): degrees of freedom is <= 0"),
    # torch advises against more loader workers than cores; a loader that waits (I/O, decoding) gains from
    # more, and the workbench's own diagnosis says when workers are short (DESIGN 3.6).
    (UserWarning, "This DataLoader will create"),
)


class _Drop(logging.Filter):
    def __init__(self, start: str):
        super().__init__()
        self.start = start

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.start)


class _NewScoreHead(logging.Filter):
    """Drops transformers' load report when all it says is that the score head is new: a reward model
    made from a language model gets one on purpose. Any other missing or unexpected weight still shows."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if "LOAD REPORT" not in text:
            return True
        rows = [r for r in text.splitlines() if r.count("|") >= 2 and "Status" not in r and r.strip("-+| ")]
        return not rows or not all(
            r.split("|")[0].strip().startswith("score.") and "MISSING" in r for r in rows
        )


def libraries() -> None:
    """Silence the lines above and the CPU profiler's start/stop lines; called before a model loads."""
    for name, start in LOG_LINES.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _Drop) and f.start == start for f in logger.filters):
            logger.addFilter(_Drop(start))
    loads = logging.getLogger("transformers.modeling_utils")
    if not any(isinstance(f, _NewScoreHead) for f in loads.filters):
        loads.addFilter(_NewScoreHead())
    for category, start in WARNINGS:
        warnings.filterwarnings("ignore", message=start, category=category)
    # Kineto (torch.profiler) prints "USDT: ... profiler_start" to stderr below level 6; a user's own
    # KINETO_LOG_LEVEL wins. It is read when a profiler first starts, after this.
    os.environ.setdefault("KINETO_LOG_LEVEL", "6")
