"""One run, top to bottom: check everything, make the run directory, train, save, measure, record.

Everything that can be checked without training (device, model, data, adapter) is checked before
the run directory exists, so bad input never leaves a half-made run behind.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench import (
    adapters,
    checkpoints,
    data,
    devices,
    diagnosis,
    doctor,
    evaluate,
    lines,
    methods,
    mfu,
    models,
    profiling,
    runs,
    stages,
)
from workbench import config as config_mod
from workbench.config import RunConfig
from workbench.errors import describe


@dataclass
class RunResult:
    run_dir: Path
    status: str  # finished | stopped
    summary: dict = field(default_factory=dict)
    model: Any = field(default=None, repr=False)  # in-process runs keep the model for the next cell
    tokenizer: Any = field(default=None, repr=False)


@dataclass
class Checked:
    """Everything verified before a run directory exists."""

    device: devices.Device
    start: stages.Start
    tokenizer: Any
    method: Any
    train_set: Any
    data_format: str
    eval_rows: list
    plan: adapters.Plan


def train(
    cfg: RunConfig | str | Path,
    on_log: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    resume: bool | None = None,
    echo: bool | Callable = True,
    recipe: str | Path | None = None,
    run_dir: str | Path | None = None,
) -> RunResult:
    """Run `cfg` (a RunConfig or a recipe path) and return where it went and what it made.

    `recipe` says where a RunConfig came from: resuming `runs/x/resolved.yaml` continues run x.
    `run_dir` is a directory a run handle (workbench.launch) made already: the run goes there, and a
    failed check is recorded in it.
    `echo` prints progress (True), drops it (False), or hands each line to a function.
    """
    if not isinstance(cfg, RunConfig):
        recipe, cfg = cfg, config_mod.load(cfg)
    say = print if echo is True else (echo or (lambda *a, **k: None))
    resume = cfg.train.resume if resume is None else resume
    if resume and not methods.spec(cfg.method.name).resumable:
        raise config_mod.ConfigError(
            f"train.resume / --resume: TRL's {cfg.method.name.upper()} loop cannot resume from a checkpoint; "
            "start a new run"
        )
    if run_dir is not None:  # made by a run handle: take it over, and record a failed check in it
        run = runs.Run(Path(run_dir))
        runs.lock(run)
        try:
            checked = check(cfg, say)
        except BaseException as error:
            run.event("error", phase="check", reason=describe(error))
            runs.unlock(run)
            raise
    else:  # checked before a run directory exists: bad input leaves nothing behind
        checked = check(cfg, say)
        run = runs.find_resumable(cfg, recipe) if resume else None
        if resume and run is None:
            say(
                "note: nothing to resume (no unfinished run of this name with a checkpoint); starting a new run"
            )
        run = run or runs.create(cfg)
        runs.lock(run)
    try:
        return _segment(cfg, run, checked, resume, on_log, should_stop, say, rewind=run_dir is None)
    finally:
        runs.unlock(run)


def _segment(cfg, run: runs.Run, checked: Checked, resume: bool, on_log, should_stop, say, rewind=True):
    """One training segment in `run` (a resume starts another), ending in a finish or error event."""
    try:
        checkpoint = runs.latest_checkpoint(run.path) if resume else None
        if checkpoint is not None:
            checkpoints.verify(checkpoint)
        if resume and rewind:  # a run handle rewound it before anyone followed it (and a Stop may wait)
            runs.rewind(run, checkpoint)
        say(f"run directory: {run.path}")
        run.event("start", device=str(checked.device), model=checked.start.base, adapters=checked.start.adapters,
                  data=cfg.data.train, format=checked.data_format, resume=str(checkpoint), pid=os.getpid())  # fmt: skip
        stop = (lambda: should_stop() or run.stop_requested()) if should_stop else run.stop_requested
        return _run(cfg, run, checked, checkpoint, on_log, stop, say)
    except BaseException as error:  # KeyboardInterrupt too: the run must say how it ended
        error = checkpoints.explain_failed_write(error, run)
        run.event("error", reason=describe(error))
        raise error from None


def check(cfg: RunConfig, say: Callable = print) -> Checked:
    """Resolve and validate device, model, tokenizer, data and adapter; raise a clear error on bad input."""
    if cfg.distributed.num_processes != 1:
        raise config_mod.ConfigError(
            f"distributed.num_processes is {cfg.distributed.num_processes}: runs use one device for now; "
            "set distributed.num_processes: 1 (several devices per run are planned, not yet available)"
        )
    device = devices.resolve(cfg.device, cfg.distributed)
    if device.note:
        say(f"note: {device.note}")
    method = methods.get(cfg.method.name)
    start = stages.start(cfg)
    if start.run_dir:
        merged = f" ({len(start.adapters)} adapter(s) merged into the weights)" if start.adapters else ""
        say(f"starting from {start.run_dir}{merged}")
    tokenizer = models.load_tokenizer(
        start.tokenizer or start.base, trust_remote_code=cfg.model.trust_remote_code
    )
    models.ensure_chat_template(
        tokenizer, where=f"the tokenizer of {cfg.model.from_run or cfg.model.name_or_path}"
    )
    rows, fmt = data.rows_for(cfg.data, method.SPEC.data, "train", cfg.method.name)
    if hasattr(method, "check"):
        method.check(cfg, rows)
    eval_rows = evaluate.load_eval(method.SPEC.eval, cfg.data, cfg.eval.max_samples)
    plan = adapters.plan(cfg.adapter, device, models.lora_targets(start.base), method.SPEC.head)
    import datasets

    return Checked(device, start, tokenizer, method, datasets.Dataset.from_list(rows), fmt, eval_rows, plan)


def _run(cfg: RunConfig, run: runs.Run, c: Checked, checkpoint: Path | None, on_log, should_stop, say):
    from datasets.utils.logging import disable_progress_bar
    from transformers import PrinterCallback, set_seed
    from transformers.utils.logging import disable_progress_bar as quiet_loading

    from workbench.monitor import Recorder, StopTraining
    from workbench.profile_window import ProfileWindow
    from workbench.steptimes import StepClock

    disable_progress_bar()  # the workbench prints its own progress; library bars garble logs and notebooks
    quiet_loading()
    devices.apply_matmul_precision(c.device, cfg.device.allow_tf32)
    # TRL makes the adapter weights before Trainer seeds: seed here so a run does not depend on what ran before it.
    set_seed(cfg.train.seed)
    model = _load_model(cfg, c.device, c.start, c.plan, c.method.SPEC.head, c.tokenizer)
    score = c.method.scorer(cfg, model, c.tokenizer) if hasattr(c.method, "scorer") else None
    before = _evaluate(cfg, c, model, score, "before", say) if cfg.eval.before else {}
    clock = StepClock(c.device)
    recorder = Recorder(run, c.device, on_log, should_stop, say=say, spec=c.method.SPEC, clock=clock)
    args = methods.common_args(cfg, c.device, run.checkpoints)
    window = ProfileWindow(cfg.profile, c.device, run.path, say) if cfg.profile.enabled else None
    callbacks = [recorder, clock, *([window] if window else [])]
    with adapters.bitsandbytes_only_if(c.plan.quantization_config is not None):
        trainer = c.method.build(cfg, model, c.tokenizer, c.train_set, c.plan, args, callbacks)
    clock.attach(trainer)
    if cfg.data.sample_cost_ms:
        trainer.data_collator = CostlyCollator(trainer.data_collator, cfg.data.sample_cost_ms / 1e3)
    trainer.remove_callback(PrinterCallback)  # it would print raw log dicts next to our progress lines
    adapters.match_adapter_dtype(trainer.model, c.plan)  # TRL 1.12 casts QLoRA adapters to bf16, slow on CPU
    trainable, total = adapters.trainable_parameters(trainer.model)
    say(
        f"training {trainable:,} of {total:,} parameters ({cfg.method.name}, {cfg.adapter.type}) on {c.device}"
    )
    devices.reset_peak_memory(c.device)
    started = time.perf_counter()
    try:
        output = trainer.train(**({"resume_from_checkpoint": str(checkpoint)} if checkpoint else {}))
    except StopTraining:  # trainers whose loop ignores a stop request (PPO) end here, checkpoint saved
        output = None
    # A resumed run's figures cover the whole run: earlier segments' training time is in their summary.
    wall = (
        time.perf_counter() - started + (runs.summary(run.path).get("wall_time_s") or 0 if checkpoint else 0)
    )
    status = "stopped" if recorder.stopped else "finished"
    policy = getattr(trainer.model, "policy", trainer.model)  # PPO trains policy and value model together
    saved = _save(cfg, run, policy, c.tokenizer) if status == "finished" and cfg.output.save_result else None
    # A stopped run skips the after-measure: whoever pressed Stop wants control back now.
    measure = cfg.eval.after and status == "finished"
    after = _evaluate(cfg, c, policy, score, "after", say) if measure else {}
    summary = _summary(cfg, c.device, output, wall, trainable, total, before, after, saved, status, trainer)
    summary["train_loss"] = _mean_loss(run) or summary["train_loss"]
    summary["start"] = c.start.record()  # what a later stage or chat merges before this run's adapter
    summary |= _bottlenecks(run, cfg, c.device, policy, say)
    if window is not None:
        summary["profile_notes"] = window.notes
    run.finish(summary)
    say(f"{status}: {run.path}")
    return RunResult(run.path, status, summary, policy, c.tokenizer)


def _load_model(
    cfg: RunConfig, device: devices.Device, start: stages.Start, plan, head: str, tokenizer
) -> Any:
    quantized = plan.quantization_config is not None
    model = stages.load(
        start,
        head=head,
        dtype=devices.torch_dtype(device),
        trust_remote_code=cfg.model.trust_remote_code,
        quantization_config=plan.quantization_config,
        device_map={"": device.torch_device} if quantized else None,
    )
    if head == "reward":
        model.config.pad_token_id = tokenizer.pad_token_id  # a score is read at the last non-pad token
    if plan.freeze_layers is not None:
        adapters.freeze(model, plan.freeze_layers)
    return model if quantized else model.to(device.torch_device)


def _evaluate(cfg: RunConfig, c: Checked, model: Any, score: Any, when: str, say: Callable) -> dict:
    result = evaluate.measure(c.method.SPEC.eval, model, c.tokenizer, c.eval_rows, cfg, score)
    if figures := lines.figures(result):
        say(f"held-out {when} training ({result['n']} examples): {figures}")
    return result


def _save(cfg: RunConfig, run: runs.Run, model: Any, tokenizer: Any) -> str:
    # PEFT models save only the adapter; everything else saves full weights (safetensors either way).
    name = "adapter" if cfg.adapter.type in ("lora", "qlora", "dora") else "model"
    target = run.path / name
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    run.event("saved", path=name)
    return name


def _summary(cfg, device, output, wall, trainable, total, before, after, result_dir, status, trainer) -> dict:
    tokens = trainer.state.num_input_tokens_seen or _logged_tokens(trainer)
    return {
        "status": status,
        "method": cfg.method.name,
        "adapter": cfg.adapter.type,
        "steps": trainer.state.global_step,
        "train_loss": getattr(output, "training_loss", None),
        "final_loss": _last_loss(trainer),
        "wall_time_s": round(wall, 2),
        "tokens": tokens,
        "tokens_per_second": round(tokens / wall, 1) if tokens else None,
        "peak_memory_mb": round(devices.peak_memory(device) / 2**20, 1),
        "trainable_parameters": trainable,
        "total_parameters": total,
        **{f"{k}_before": v for k, v in before.items() if k not in ("n", "examples")},
        **{f"{k}_after": v for k, v in after.items() if k not in ("n", "examples")},
        "eval_n": (after or before).get("n"),
        "eval_examples": (after or before).get("examples"),
        "result": result_dir,
        "device": str(device),
        "precision": device.precision,
        "versions": doctor.versions(),
    }


def _bottlenecks(run: runs.Run, cfg: RunConfig, device: devices.Device, model: Any, say: Callable) -> dict:
    """The average step split, throughput, MFU and what slows the run, from the step timing in
    metrics.jsonl and the profile, if one was recorded."""
    records = runs.read_jsonl(run.path / "metrics.jsonl")
    split = diagnosis.step_split(records)
    speed = _speed(cfg, device, model, records, split)
    facts = diagnosis.Facts(
        workers=cfg.train.dataloader_num_workers,
        batch_size=cfg.train.per_device_train_batch_size,
        tokens_per_batch=speed.get("tokens_per_batch"),
        mfu=speed.get("mfu"),
        profile=profiling.read(run.path),
    )
    findings = diagnosis.diagnose(records, facts)
    for finding in findings:
        say(f"diagnosis: {finding.detail}")
    return {
        "step_split_s": {k: round(v, 5) for k, v in split.items()},
        **speed,
        "diagnosis": diagnosis.as_records(findings),
    }


def _speed(cfg: RunConfig, device: devices.Device, model: Any, records: list[dict], split: dict) -> dict:
    """Steady-state samples/s and, where the trainer counts tokens, tokens per forward pass and MFU."""
    if not split.get("step"):
        return {}
    batch = cfg.train.per_device_train_batch_size
    samples = batch * cfg.train.gradient_accumulation_steps / split["step"]
    speed = {"samples_per_second": round(samples, 2)}
    rates = [r["tokens_per_second"] for r in diagnosis.steady(records) if r.get("tokens_per_second")]
    if not rates:
        return speed
    tokens = sum(rates) / len(rates)
    flops = mfu.flops_per_token(model, tokens / samples) * tokens
    peak, source = mfu.peak(device, cfg.profile.peak_tflops)
    return speed | {
        "tokens_per_batch": round(tokens / samples * batch, 1),
        "model_tflops": round(flops / 1e12, 4),
        "mfu": round(flops / peak, 4),
        "peak_tflops": round(peak / 1e12, 4),
        "peak_source": source,
    }


@dataclass
class CostlyCollator:
    """A data collator that first spends `seconds` per sample, as an expensive transform would (decoding,
    augmentation). It runs where the collator runs: in the training loop, or in the loader's workers."""

    collate: Any
    seconds: float

    def __call__(self, samples: list) -> Any:
        time.sleep(self.seconds * len(samples))  # waiting, not computing: workers overlap it with training
        return self.collate(samples)


def _logged_tokens(trainer: Any) -> int:
    counts = [h["num_tokens"] for h in trainer.state.log_history if "num_tokens" in h]
    return int(counts[-1]) if counts else 0


def _mean_loss(run: runs.Run) -> float | None:
    """The mean logged loss over the whole run (the trainer's own figure covers only its last segment)."""
    losses = [
        r["loss"] for r in runs.read_jsonl(run.path / "metrics.jsonl") if isinstance(r.get("loss"), float)
    ]
    return sum(losses) / len(losses) if losses else None


def _last_loss(trainer: Any) -> float | None:
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return losses[-1] if losses else None
