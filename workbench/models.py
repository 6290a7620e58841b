"""Which model, where it lives, and loading it: the catalogue, hub caches, tokenizer and model.

`resolve` never touches the network: it returns a local folder or says how to get one (workbench.hub
downloads). Weights are loaded from safetensors only, and a repo's own Python runs only when the recipe
opts in.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from workbench import quiet
from workbench.config import ModelConfig
from workbench.errors import ModelError

HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# For models outside the catalogue, by config.json's model_type; anything else gets PEFT's "all-linear".
TARGETS_BY_MODEL_TYPE = {
    **dict.fromkeys(
        ["llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text", "yi"], PROJECTIONS
    ),
    "qwen": ("c_attn", "c_proj", "w1", "w2"),
    "chatglm": ("query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"),
    "baichuan": ("W_pack", "o_proj", "gate_proj", "up_proj", "down_proj"),
    "internlm2": ("wqkv", "wo", "w1", "w2", "w3"),
}
TEMPLATES = {"llama2", "llama3", "chatml", "qwen3", "chatglm3", "glm4", "baichuan2", "internlm2", "mistral"}
TEMPLATES |= {"gemma", "deepseek", "deepseek_r1"}
# The one template the workbench ships: tokenizers of ChatML models sometimes lack it (base checkpoints).
CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CONVERT = (
    'python -c "from transformers import AutoModelForCausalLM as M, AutoTokenizer as T; '
    "M.from_pretrained('SRC', use_safetensors=False).save_pretrained('DST'); "
    "T.from_pretrained('SRC').save_pretrained('DST')\""
)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str
    hf_id: str
    ms_id: str
    params_b: float
    chat_template: str
    lora_targets: tuple[str, ...]
    architecture: str
    needs_remote_code: bool = False
    gated: bool = False

    def repo_id(self, hub: str = "huggingface") -> str:
        return self.ms_id if hub == "modelscope" else self.hf_id


STARTER = ModelSpec("starter", "starter", "", "", 0.001, "chatml", PROJECTIONS, "LlamaForCausalLM")


def _load_catalogue() -> dict[str, ModelSpec]:
    data = yaml.safe_load(Path(__file__).with_name("catalogue.yaml").read_text(encoding="utf-8"))
    specs = {"starter": STARTER}
    for family, block in data["families"].items():
        for name, fields in block["models"].items():
            merged = {**block.get("defaults", {}), **fields}
            merged["lora_targets"] = tuple(merged["lora_targets"])
            specs[name] = ModelSpec(name=name, family=family, **merged)
    return specs


CATALOGUE: dict[str, ModelSpec] = _load_catalogue()


def lookup(name: str) -> ModelSpec | None:
    """The catalogue entry for `name` (any case), or None."""
    return CATALOGUE.get(str(name).strip().lower())


def families() -> dict[str, list[str]]:
    """Catalogue names grouped by family, in catalogue order."""
    out: dict[str, list[str]] = {}
    for spec in CATALOGUE.values():
        out.setdefault(spec.family, []).append(spec.name)
    return out


# ---------------------------------------------------------------------------------------------- finding


def resolve(cfg: ModelConfig) -> str:
    """A local folder to load `cfg.name_or_path` from; never goes online."""
    name = cfg.name_or_path.strip()
    if name.lower() == "starter":
        return _starter()
    path = Path(name).expanduser()
    if path.is_dir():
        return str(check_model_dir(path))
    spec = lookup(name)
    if spec is None and (name.startswith((".", "/", "~", "\\")) or not HUB_ID.match(name)):
        raise ModelError(
            f"model path not found: {path.absolute()}; check model.name_or_path (a folder, a hub ID "
            f"owner/name, or a catalogue name such as qwen2.5-0.5b-instruct; 'starter' works offline)"
        )
    repo_id = spec.repo_id(cfg.hub) if spec else name
    cached = cached_path(repo_id, cfg.hub, cfg.cache_dir, cfg.revision)
    if cached is None:
        folder_hint = "" if spec else f" If you meant a folder: {path.absolute()} does not exist."
        raise ModelError(
            f"{name} ({repo_id} on {cfg.hub}) is not in the local cache: run `workbench download {name}` "
            f"once (needs the network), or copy the model folder here and set model.name_or_path to it."
            + folder_hint
        )
    return str(check_model_dir(Path(cached)))


def _starter() -> str:
    from workbench import starter

    return str(starter.ensure_starter())


def cached_path(
    repo_id: str, hub: str = "huggingface", cache_dir: str | None = None, revision=None
) -> str | None:
    """The folder of `repo_id` in the local hub cache, or None."""
    if hub == "modelscope":
        return _modelscope_cached(repo_id, cache_dir)
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(repo_id, cache_dir=cache_dir, revision=revision, local_files_only=True)
    except (OSError, ValueError):  # not cached (OSError) or not a valid repo ID (ValueError)
        return None


def _modelscope_cached(repo_id: str, cache_dir: str | None) -> str | None:
    # ModelScope versions differ: <root>/<id> or <root>/models/<id>, and newer ones write '.' as '___'.
    env = os.environ.get("MODELSCOPE_CACHE")
    roots = [cache_dir] if cache_dir else [env, env and f"{env}/hub", "~/.cache/modelscope/hub"]
    for root in filter(None, roots):
        for sub in ("models", ""):
            for rid in (repo_id, repo_id.replace(".", "___")):
                folder = Path(root).expanduser() / sub / rid
                if (folder / "config.json").is_file():
                    return str(folder)
    return None


def check_model_dir(path: str | Path) -> Path:
    """Return `path` if it is a loadable model folder (config.json + safetensors), else raise ModelError."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise ModelError(
            f"{path} is not a model folder: it has no config.json. A model folder (as written by "
            f"save_pretrained) holds config.json, the weights as *.safetensors, and the tokenizer files "
            f"(tokenizer.json or tokenizer.model, tokenizer_config.json)."
        )
    if not any(path.glob("*.safetensors")):
        pickles = sorted(p.name for p in path.iterdir() if p.suffix in {".bin", ".pt", ".pth"})
        found = f"it holds only {', '.join(pickles[:3])}" if pickles else "it holds no weights"
        raise ModelError(
            f"safetensors only: {path} has no *.safetensors weights ({found}); pickled weights can run "
            f"code when loaded. Convert once with: {CONVERT.replace('SRC', str(path))} "
            f"(DST = a new folder), then set model.name_or_path to DST."
        )
    return path


# ---------------------------------------------------------------------------------------------- loading


def load_tokenizer(path: str, trust_remote_code: bool = False, chat_template: str | None = None):
    """AutoTokenizer from a local folder; adds the ChatML template when the catalogue says ChatML."""
    folder = _local_folder(path)
    if not any(folder.glob("tokenizer*")) and not any(folder.glob("*.tiktoken")):
        raise ModelError(
            f"{folder} has no tokenizer files (tokenizer.json, tokenizer.model, tokenizer_config.json)"
        )
    from transformers import AutoTokenizer

    with _translated(folder, "tokenizer"):
        tokenizer = AutoTokenizer.from_pretrained(
            str(folder), trust_remote_code=trust_remote_code, local_files_only=True
        )
    if tokenizer.chat_template is None and chat_template == "chatml":
        tokenizer.chat_template = CHATML
    if tokenizer.pad_token is None:  # batching needs a pad token; eos is the usual stand-in
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def ensure_chat_template(tokenizer, where: str = "this tokenizer") -> None:
    """Raise a ModelError when chat formatting is needed but the tokenizer has no template."""
    if getattr(tokenizer, "chat_template", None) is None:
        raise ModelError(
            f"{where} has no chat template, so chat data (messages) cannot be formatted. Use a chat/instruct "
            f"model, a plain-text data format, or set tokenizer.chat_template (the workbench ships only ChatML)."
        )


def load_model(
    path: str,
    *,
    dtype=None,
    trust_remote_code: bool = False,
    quantization_config=None,
    device_map=None,
    head: str = "causal",
):
    """A model from a local folder, safetensors only, repo code only when trusted.

    head "causal" is a language model; "reward" a one-score sequence classifier (reward and value models).
    """
    folder = check_model_dir(_local_folder(path))
    quiet.libraries()
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    # local_files_only: a folder is all we load from, so never let transformers go online.
    kwargs = {"trust_remote_code": trust_remote_code, "use_safetensors": True, "local_files_only": True}
    dtype = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}.get(dtype, dtype)
    given = {"dtype": dtype, "quantization_config": quantization_config, "device_map": device_map}
    kwargs |= {key: value for key, value in given.items() if value is not None}  # else transformers' defaults
    with _translated(folder, "model"):
        if head == "reward":
            return AutoModelForSequenceClassification.from_pretrained(str(folder), num_labels=1, **kwargs)
        return AutoModelForCausalLM.from_pretrained(str(folder), **kwargs)


def _local_folder(path: str | Path) -> Path:
    # Loading by hub ID would make transformers retry the network for a minute: resolve() comes first.
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise ModelError(
            f"model folder not found: {folder}; pass the folder from workbench.models.resolve(cfg)"
        )
    return folder


@contextlib.contextmanager
def _translated(folder: Path, what: str):
    try:
        yield
    except ValueError as error:
        if "trust_remote_code" not in str(error):
            raise
        raise ModelError(
            f"this model ships its own Python code; set model.trust_remote_code: true in the recipe if you "
            f"trust {_source_name(folder)} (read its *.py files in {folder} first)"
        ) from None
    except OSError as error:
        raise ModelError(f"cannot load the {what} from {folder}: {error}") from error


def _source_name(folder: Path) -> str:
    # A folder in the Hugging Face cache looks like .../models--owner--name/snapshots/<hash>.
    match = re.search(r"models--([^/\\]+?)--([^/\\]+)", str(folder))
    return f"{match[1]}/{match[2]}" if match else str(folder)


# ---------------------------------------------------------------------------------------------- facts


def lora_targets(path_or_name: str, model=None) -> list[str] | str:
    """LoRA target modules: from the catalogue, else by model_type, else PEFT's "all-linear"."""
    spec = lookup(str(path_or_name))
    if spec:
        return list(spec.lora_targets)
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type is None:
        model_type = _read_json(Path(path_or_name).expanduser() / "config.json").get("model_type")
    targets = TARGETS_BY_MODEL_TYPE.get(model_type)
    return list(targets) if targets else "all-linear"


def describe(model: ModelConfig | str) -> dict:
    """Plain facts about a model for a panel: family, size, architecture, template, cached or not."""
    cfg = model if isinstance(model, ModelConfig) else ModelConfig(name_or_path=str(model))
    spec = lookup(cfg.name_or_path)
    path = None
    if cfg.name_or_path.strip().lower() != "starter":  # building the starter needs torch: not for a panel
        with contextlib.suppress(ModelError):
            path = Path(resolve(cfg))
    config = _read_json(path / "config.json") if path else {}
    tokenizer_config = _read_json(path / "tokenizer_config.json") if path else {}
    has_template = "chat_template" in tokenizer_config or bool(
        path and (path / "chat_template.jinja").exists()
    )
    return {
        "name": spec.name if spec else cfg.name_or_path,
        "family": spec.family if spec else config.get("model_type", "unknown"),
        "repo_id": (spec.repo_id(cfg.hub) or None) if spec else (None if path else cfg.name_or_path),
        "params_b": spec.params_b if spec else (path and _count_params_b(path)),
        "architecture": (config.get("architectures") or [spec.architecture if spec else "unknown"])[0],
        "chat_template": spec.chat_template if spec else ("from tokenizer" if has_template else None),
        "cached": spec is STARTER or path is not None,
        "path": str(path) if path else None,
        "needs_remote_code": spec.needs_remote_code if spec else "auto_map" in config,
        "gated": bool(spec and spec.gated),
    }


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _count_params_b(folder: Path) -> float | None:
    # A safetensors file starts with an 8-byte header length and a JSON header of tensor shapes.
    total = 0
    for file in folder.glob("*.safetensors"):
        with open(file, "rb") as handle:
            header = json.loads(handle.read(int.from_bytes(handle.read(8), "little")) or b"{}")
        total += sum(math.prod(t["shape"]) for key, t in header.items() if key != "__metadata__")
    return round(total / 1e9, 4) if total else None


# Bytes per parameter of the frozen weights, and the share of parameters that train.
WEIGHT_BYTES = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "auto": 2.0}
TRAINABLE = {"full": 1.0, "galore": 1.0, "freeze": 0.1, "lora": 0.01, "dora": 0.01, "qlora": 0.01}


def estimate_memory_gb(params_b: float, adapter_type: str = "lora", precision: str = "bf16") -> float:
    """Rough training memory in GB (1e9 bytes), not counting activations (they grow with batch x length).

    weights:  params * bytes (4 fp32, 2 bf16/fp16; qlora stores 4-bit: 0.55 bytes with its scales)
    full/freeze/galore: trainable * (grad + 2 Adam moments), each in the weight precision
                 (GaLore keeps its Adam moments in a low-rank projection: about a quarter)
    lora/dora/qlora: ~1% of params train as fp32 adapters: 4 weight + 4 grad + 8 Adam = 16 bytes each
    then +20% for buffers, workspace and the runtime's own context.
    """
    if adapter_type not in TRAINABLE or precision not in WEIGHT_BYTES:
        raise ValueError(
            f"adapter_type must be one of {sorted(TRAINABLE)}, precision one of {sorted(WEIGHT_BYTES)}"
        )
    width = WEIGHT_BYTES[precision]
    weights = params_b * (0.55 if adapter_type == "qlora" else width)
    trainable = params_b * TRAINABLE[adapter_type]
    if adapter_type in {"lora", "dora", "qlora"}:
        state = trainable * 16
    else:
        state = trainable * width * (1 + (0.5 if adapter_type == "galore" else 2))
    return round((weights + state) * 1.2, 2)
