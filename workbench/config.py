"""The one typed input of a run: `RunConfig`, read from YAML, CLI overrides or widget panels.

All three producers go through `from_dict`, which is strict: an unknown key, a value of the wrong
type or outside `RANGES` is a `ConfigError` naming the key, the value and where it came from, before
any run directory exists.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from workbench import devices
from workbench.errors import ConfigError

DeviceType = Literal[("auto", *devices.ORDER)]  # the device layer owns the names
AdapterType = Literal["full", "freeze", "lora", "qlora", "dora", "galore"]
MethodName = Literal["sft", "dpo", "kto", "simpo", "orpo", "reward", "ppo", "grpo"]
DataFormat = Literal[
    "auto", "messages", "alpaca", "sharegpt", "query_response", "preference", "kto", "prompt_answer"
]


@dataclass(frozen=True)
class ModelConfig:
    name_or_path: str = "starter"  # "starter", a catalogue name, a local path or a hub ID
    hub: Literal["huggingface", "modelscope"] = "huggingface"
    revision: str | None = None
    trust_remote_code: bool = False  # running a model repo's Python is an explicit opt-in
    cache_dir: str | None = None
    from_run: str | None = None  # start from a finished run's result (runs/<sft-run>); its adapter is merged


@dataclass(frozen=True)
class DataConfig:
    train: str = "bundled:reverse/sft_train"  # bundled:<name>/<file>, a local file or folder, or a hub ID
    eval: str | None = "bundled:reverse/sft_eval"  # held-out split for the exact-match check
    format: DataFormat = "auto"
    columns: dict[str, str] = field(default_factory=dict)  # map the user's column names to ours
    max_samples: int | None = None
    max_length: int = 256
    completion_only_loss: bool = True  # learn the answers, not the prompts
    sample_cost_ms: float = 0.0  # simulate an expensive per-sample transform in the data loader (teaching)


@dataclass(frozen=True)
class AdapterConfig:
    type: AdapterType = "lora"
    r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    target_modules: tuple[str, ...] | Literal["auto", "all-linear"] = "auto"
    freeze_trainable_layers: int = 1  # freeze: train only the last N blocks (and the norm)
    bnb_4bit_quant_type: Literal["nf4", "fp4"] = "nf4"
    bnb_4bit_use_double_quant: bool = True
    galore_rank: int = 32
    galore_update_proj_gap: int = 50
    galore_scale: float = 0.25


@dataclass(frozen=True)
class MethodConfig:
    """What the alignment methods take; each method reads the fields it names (DESIGN 3.4)."""

    name: MethodName = "sft"
    beta: float | None = None  # None: the method's own default (DPO/KTO/ORPO 0.1, SimPO 2.0, PPO KL 0.05)
    loss_type: str | None = None  # DPO: sigmoid, ipo, hinge, ...; KTO: kto, apo_zero_unpaired
    desirable_weight: float = 1.0  # KTO: weight of good (label true) examples
    undesirable_weight: float = 1.0  # KTO: weight of bad examples
    simpo_gamma: float = 0.5  # SimPO: target reward margin
    cpo_alpha: float = 0.0  # SimPO: weight of the SFT (NLL) term; 0 is pure SimPO
    rewards: dict[str, float] = field(default_factory=dict)  # GRPO: reward name -> weight
    allow_reward_code: bool = False  # GRPO: run reward functions from a Python file named in `rewards`
    reward_model: str | None = None  # PPO: a reward run directory or a saved sequence-classification model
    num_generations: int = 8  # GRPO: completions sampled per prompt
    max_completion_length: int = 16  # GRPO and PPO: tokens generated per completion
    temperature: float = 1.0  # GRPO and PPO: sampling temperature


@dataclass(frozen=True)
class TrainConfig:
    learning_rate: float = 2e-4
    num_train_epochs: float = 1.0
    max_steps: int = -1
    per_device_train_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    lr_scheduler_type: str = "linear"
    warmup_steps: float = 0.0  # a fraction of the run when below 1, as in transformers
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    optim: str = "adamw_torch"
    logging_steps: int = 10
    save_steps: int = 200
    save_total_limit: int = 2
    seed: int = 42
    gradient_checkpointing: bool = False
    dataloader_num_workers: int = 0
    resume: bool = False


@dataclass(frozen=True)
class EvalConfig:
    before: bool = True  # measure the starting model too, so the learning effect is visible
    after: bool = True
    max_samples: int = 100
    max_new_tokens: int = 16
    batch_size: int = 32


@dataclass(frozen=True)
class DeviceConfig:
    type: DeviceType = "auto"
    index: int = 0
    fallback: Literal["cpu", "error"] = "cpu"  # when the asked-for device is missing
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    allow_tf32: bool = True  # TF32 on CUDA, HF32 on NPU


@dataclass(frozen=True)
class DistributedConfig:
    num_processes: int = 1
    backend: Literal["auto", "hccl", "nccl", "gloo"] = "auto"
    visible_devices: str | None = None  # e.g. "0,1,2,3"
    timeout_s: int = 600  # HCCL's 120 s default is too short for large models


@dataclass(frozen=True)
class ProfileConfig:
    enabled: bool = False
    wait: int = 1
    warmup: int = 1
    active: int = 3
    record_shapes: bool = False
    profile_memory: bool = False
    with_stack: bool = False
    peak_tflops: float | None = None  # the device's peak for MFU; unset: a matmul measures it once, cached


@dataclass(frozen=True)
class OutputConfig:
    root: str = "runs"
    name: str | None = None  # defaults to <method>-<adapter>
    save_result: bool = True


@dataclass(frozen=True)
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    device: DeviceConfig = field(default_factory=DeviceConfig)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)
    profile: ProfileConfig = field(default_factory=ProfileConfig)
    output: OutputConfig = field(default_factory=OutputConfig)


# Bounds checked after typing, so a bad number stops here and not as a torch/PEFT traceback mid-run.
# A rule is "<op> <number>" clauses joined by "and" / "or"; a "(...)" tail is shown to the user as a hint.
RANGES = {
    "train.learning_rate": "> 0",
    "train.num_train_epochs": "> 0",
    "train.max_steps": "== -1 or >= 1 (-1 means use num_train_epochs)",  # 0 "trained" one step at lr 0
    "train.per_device_train_batch_size": ">= 1",
    "train.gradient_accumulation_steps": ">= 1",
    "train.warmup_steps": ">= 0 (below 1 it is a fraction of the run)",
    "train.weight_decay": ">= 0",
    "train.max_grad_norm": ">= 0 (0 turns clipping off)",
    "train.logging_steps": ">= 1",
    "train.save_steps": ">= 1",
    "train.save_total_limit": ">= 1",
    "train.seed": ">= 0",  # numpy's seed refuses negatives
    "train.dataloader_num_workers": ">= 0",
    "adapter.r": ">= 1",
    "adapter.lora_alpha": ">= 1",  # the update is scaled by lora_alpha / r; 0 learns nothing
    "adapter.lora_dropout": ">= 0 and < 1",
    "adapter.freeze_trainable_layers": ">= 1",
    "adapter.galore_rank": ">= 1",
    "adapter.galore_update_proj_gap": ">= 1",
    "adapter.galore_scale": "> 0",
    "data.max_length": ">= 1",  # a negative length silently cut every example
    "data.max_samples": ">= 1 (or null for all)",
    "data.sample_cost_ms": ">= 0",
    "eval.max_samples": ">= 0",
    "eval.max_new_tokens": ">= 1",
    "eval.batch_size": ">= 1",
    "method.beta": ">= 0 (or null for the method's default)",
    "method.desirable_weight": "> 0",
    "method.undesirable_weight": "> 0",
    "method.simpo_gamma": ">= 0",
    "method.cpo_alpha": ">= 0",
    "method.num_generations": ">= 1",
    "method.max_completion_length": ">= 1",
    "method.temperature": "> 0",
    "device.index": ">= 0",
    "distributed.num_processes": ">= 1",
    "distributed.timeout_s": ">= 1",
    "profile.wait": ">= 0",
    "profile.warmup": ">= 0",
    "profile.active": ">= 1",
    "profile.peak_tflops": "> 0 (or null to measure it)",
}
_OPS = {"==": float.__eq__, ">": float.__gt__, ">=": float.__ge__, "<": float.__lt__}
# One folder directly under output.root: no separators, no '..', nothing a file system refuses.
_FOLDER_NAME = re.compile(r"(?!.*\.\.)[\w.-]+")


def _check(value: Any, key: str, source: str) -> None:
    """Refuse a well-typed value that cannot work: outside RANGES, or an output.name that is not a folder."""
    rule = RANGES.get(key)
    if rule and value is not None:
        test = rule.split(" (")[0]
        if not any(
            all(_OPS[op](float(value), float(n)) for op, n in map(str.split, alt.split(" and ")))
            for alt in test.split(" or ")
        ):
            raise ConfigError(f"'{key}' in {source} is {value!r}; expected a value {rule}")
    if key == "output.name" and value is not None and not _FOLDER_NAME.fullmatch(value):
        raise ConfigError(
            f"'{key}' in {source} is {value!r}; expected one folder name under output.root: "
            "letters, digits, '-', '_' and '.' (no '/', '\\' or '..')"
        )


def from_dict(data: Any, source: str = "<dict>", cls: type = RunConfig, prefix: str = "") -> Any:
    """Build a (nested) config dataclass from plain data, strictly."""
    where = f"{prefix.rstrip('.') or 'the top level'} in {source}"
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of keys, got {type(data).__name__} {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"unknown key '{prefix}{unknown[0]}' in {source}; valid keys here: {', '.join(sorted(names))}"
        )
    values = {}
    for name, raw in data.items():
        key = f"{prefix}{name}"
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            values[name] = from_dict(raw, source, hint, f"{key}.")
        else:
            values[name] = _coerce(raw, hint, key, source)
            _check(values[name], key, source)
    return cls(**values)


def _coerce(value: Any, hint: Any, key: str, source: str) -> Any:
    """Return `value` as type `hint`, or raise a ConfigError naming key, value and file."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        errors = []
        # Literals first (exact words), str last (it accepts anything).
        for option in sorted(args, key=lambda a: (a is str, typing.get_origin(a) is not Literal)):
            if option is type(None):
                if value is None:
                    return None
                continue
            try:
                return _coerce(value, option, key, source)
            except ConfigError as error:
                errors.append(error)
        raise errors[-1] if len(errors) == 1 else _bad(value, key, source, _describe(hint))
    if origin is Literal:
        if value in args:
            return value
        raise _bad(value, key, source, "one of " + ", ".join(map(repr, args)))
    if origin is tuple:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple):
            raise _bad(value, key, source, "a list")
        return tuple(_coerce(v, args[0], key, source) for v in value)
    if origin is dict:
        if not isinstance(value, dict):
            raise _bad(value, key, source, "a mapping")
        return {str(k): _coerce(v, args[1], f"{key}.{k}", source) for k, v in value.items()}
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _bad(value, key, source, "true or false")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _bad(value, key, source, "a whole number")
    if hint is float:
        # PyYAML reads 3e-4 (no dot) as a string; accept it as the number the user meant.
        number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                pass
        if number is not None and math.isfinite(number):  # YAML's .nan and .inf are floats too
            return float(number)
        raise _bad(value, key, source, "a finite number")
    if hint is str:
        if isinstance(value, str):
            return value
        raise _bad(value, key, source, "a string (quote it in YAML)")
    raise ConfigError(f"{key}: unsupported type {hint}")  # a bug in this file, not user input


def _describe(hint: Any) -> str:
    return " or ".join(
        "null" if a is type(None) else getattr(a, "__name__", str(a)) for a in typing.get_args(hint)
    )


def _bad(value: Any, key: str, source: str, expected: str) -> ConfigError:
    return ConfigError(f"'{key}' in {source} is {value!r} ({type(value).__name__}); expected {expected}")


def to_dict(cfg: Any) -> dict:
    """Plain data for YAML: tuples become lists."""
    out = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            value = to_dict(value)
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, dict):
            value = dict(value)
        out[f.name] = value
    return out


def load(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Read a YAML recipe, apply `key.sub=value` overrides, and validate."""
    path = Path(path)
    if not path.is_file():
        what = f"{path} is a folder, not a recipe" if path.is_dir() else f"recipe not found: {path}"
        raise ConfigError(f"{what} (give the path to a .yaml file, e.g. recipes/quickstart.yaml)")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise ConfigError(
            f"{path} is not a UTF-8 text file (byte 0x{raw[error.start]:02x} at line {line}): save it as UTF-8"
        ) from None
    try:
        _refuse_duplicates(yaml.compose(text, Loader=yaml.SafeLoader), str(path))
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from None
    cfg = from_dict(data, str(path))
    return override(cfg, overrides) if overrides else cfg


def _refuse_duplicates(node: Any, source: str, prefix: str = "") -> None:
    """Raise on a key given twice in one mapping (PyYAML silently keeps the last)."""
    if isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _refuse_duplicates(item, source, prefix)
    if not isinstance(node, yaml.MappingNode):
        return
    lines: dict[str, int] = {}
    for key_node, value_node in node.value:
        key, line = f"{prefix}{key_node.value}", key_node.start_mark.line + 1
        if key in lines:
            raise ConfigError(f"'{key}' is given twice in {source} (lines {lines[key]} and {line}); keep one")
        lines[key] = line
        _refuse_duplicates(value_node, source, f"{key}.")


def override(cfg: RunConfig, overrides: list[str] | tuple[str, ...] | dict[str, Any]) -> RunConfig:
    """Return a new RunConfig with dotted overrides applied (`train.learning_rate=1e-4`).

    Strings are parsed as YAML values; a dict maps dotted keys to values already typed (panels).
    """
    if not isinstance(overrides, dict):
        overrides = dict(_split(item) for item in overrides)
    data = to_dict(cfg)
    for dotted, value in overrides.items():
        *parents, last = dotted.split(".")
        node = data
        for part in parents:
            if not isinstance(node.get(part), dict):
                raise ConfigError(f"unknown key '{dotted}' in the overrides: '{part}' is not a section")
            node = node[part]
        node[last] = value
    return from_dict(data, "the overrides")


def _split(item: str) -> tuple[str, Any]:
    key, sep, text = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {item!r} must look like section.key=value, e.g. train.max_steps=50")
    return key.strip(), yaml.safe_load(text) if text.strip() else ""


def dump(cfg: RunConfig) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def save(cfg: RunConfig, path: str | Path) -> None:
    Path(path).write_text(dump(cfg), encoding="utf-8")
