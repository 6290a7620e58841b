"""Talk to the result of a run: load it (adapter over its base, or full weights) and answer turns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench import config as config_mod
from workbench import devices, models, stages
from workbench.errors import ChatError


def load_result(run_dir: str | Path) -> tuple[Any, Any]:
    """(model, tokenizer) saved by a finished run, on the run's device."""
    cfg = _chat_config(run_dir)
    try:
        start = stages.result_of(run_dir, "the run")
    except config_mod.ConfigError as error:
        raise ChatError(str(error)) from None
    return _load(cfg, start)


def load_start(run_dir: str | Path) -> tuple[Any, Any]:
    """(model, tokenizer) a run started from (its base, or the stage before it), to compare side by side."""
    cfg = _chat_config(run_dir)
    try:
        start = stages.start(cfg)
    except (config_mod.ConfigError, models.ModelError) as error:
        raise ChatError(f"the starting model of {run_dir} cannot be loaded: {error}") from None
    return _load(cfg, start)


def _chat_config(run_dir: str | Path) -> config_mod.RunConfig:
    run_dir = Path(run_dir)
    if not (run_dir / "resolved.yaml").is_file():
        raise ChatError(f"{run_dir} is not a run directory (no resolved.yaml); pass runs/<name>-<time>")
    cfg = config_mod.load(run_dir / "resolved.yaml")
    if cfg.method.name == "reward":
        raise ChatError(f"{run_dir} trained a reward model, which scores answers but cannot chat")
    return cfg


def _load(cfg: config_mod.RunConfig, start: stages.Start) -> tuple[Any, Any]:
    from transformers.utils.logging import disable_progress_bar

    disable_progress_bar()  # loading bars would interleave with the conversation
    device = devices.resolve(cfg.device)
    trust = cfg.model.trust_remote_code
    model = stages.load(start, dtype=devices.torch_dtype(device), trust_remote_code=trust)
    tokenizer = models.load_tokenizer(start.tokenizer or start.base, trust_remote_code=trust)
    return model.to(device.torch_device).eval(), tokenizer


def reply(
    model: Any, tokenizer: Any, history: list[dict], max_new_tokens: int = 64, streamer: Any = None
) -> str:
    """The assistant's next turn after `history` (greedy), optionally streamed token by token."""
    import torch

    text = tokenizer.apply_chat_template(history, tokenize=False, add_generation_prompt=True)
    batch = tokenizer(text, return_tensors="pt", add_special_tokens=False).to(model.device)
    with torch.no_grad():
        out = model.generate(
            **batch,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            streamer=streamer,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
    return tokenizer.decode(out[0, batch["input_ids"].shape[1] :], skip_special_tokens=True).strip()
