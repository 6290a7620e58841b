"""The model catalogue, resolving, downloading (workbench.hub, offline), and loading a tiny local model."""

from __future__ import annotations

import json
import socket
import sys
import time
import types

import pytest

from workbench import hub, models
from workbench.config import ModelConfig
from workbench.models import ModelError


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A 1-layer Qwen2 model with a 128-token word-level tokenizer, saved as safetensors."""
    from tokenizers import Tokenizer, pre_tokenizers
    from tokenizers.models import WordLevel
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast, Qwen2Config

    folder = tmp_path_factory.mktemp("tiny")
    config = Qwen2Config(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        intermediate_size=64,
        vocab_size=128,
    )
    AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    vocab = {"<unk>": 0, "<eos>": 1, **{f"w{i}": i for i in range(2, 128)}}
    core = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<eos>").save_pretrained(folder)
    return folder


@pytest.fixture
def offline_download(monkeypatch):
    """Make any real hub call fail loudly: the tests must never reach the network."""
    monkeypatch.setattr(hub, "_fetch_huggingface", lambda *a: pytest.fail("tried to download"))


# ------------------------------------------------------------------------------------------- catalogue


def test_catalogue_entries_are_complete():
    for name, spec in models.CATALOGUE.items():
        assert name == spec.name == name.lower()
        assert spec.chat_template in models.TEMPLATES, name
        assert spec.lora_targets and all(spec.lora_targets), name
        assert spec.params_b > 0, name
        if spec is not models.STARTER:
            assert spec.hf_id.count("/") == 1 and models.HUB_ID.match(spec.hf_id), name
            assert spec.ms_id.count("/") == 1 and models.HUB_ID.match(spec.ms_id), name


def test_catalogue_covers_the_families_users_ask_for():
    fams = models.families()
    for family in ["llama", "qwen", "chatglm", "baichuan", "internlm", "mistral", "starter"]:
        assert fams[family], family
    assert "qwen2.5-7b-instruct" in fams["qwen"]
    assert models.lookup("chatglm3-6b").ms_id == "ZhipuAI/chatglm3-6b"
    assert models.lookup("llama-2-7b").hf_id == "meta-llama/Llama-2-7b-hf"


def test_remote_code_and_gating_flags():
    assert models.lookup("baichuan2-7b-chat").needs_remote_code
    assert models.lookup("internlm2-chat-7b").lora_targets == ("wqkv", "wo", "w1", "w2", "w3")
    assert not models.lookup("qwen2.5-0.5b-instruct").needs_remote_code
    assert models.lookup("llama-3-8b-instruct").gated


def test_lookup_ignores_case():
    assert models.lookup("Qwen2.5-7B-Instruct") is models.lookup("qwen2.5-7b-instruct") is not None
    assert models.lookup("no-such-model") is None


def test_import_is_light():
    import subprocess

    code = "import sys, workbench.models; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


# ------------------------------------------------------------------------------------------- resolve


def test_missing_path_names_the_path_and_the_key(tmp_path):
    missing = tmp_path / "nowhere" / "model"
    with pytest.raises(ModelError, match="model.name_or_path") as info:
        models.resolve(ModelConfig(name_or_path=str(missing)))
    assert "model path not found" in str(info.value) and str(missing) in str(info.value)


def test_folder_without_config_says_what_a_model_folder_holds(tmp_path):
    with pytest.raises(ModelError, match="config.json.*safetensors"):
        models.resolve(ModelConfig(name_or_path=str(tmp_path)))


def test_pickle_only_folder_is_refused(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "qwen2"}')
    (tmp_path / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(ModelError, match="safetensors only") as info:
        models.resolve(ModelConfig(name_or_path=str(tmp_path)))
    assert "pytorch_model.bin" in str(info.value) and "save_pretrained" in str(info.value)


def test_local_model_folder_resolves_to_itself(tiny_model):
    assert models.resolve(ModelConfig(name_or_path=str(tiny_model))) == str(tiny_model)


@pytest.mark.parametrize("hub", ["huggingface", "modelscope"])
def test_uncached_catalogue_name_says_run_download(tmp_path, hub):
    cfg = ModelConfig(name_or_path="Qwen2.5-0.5B-Instruct", hub=hub, cache_dir=str(tmp_path))
    with pytest.raises(ModelError, match="workbench download Qwen2.5-0.5B-Instruct"):
        models.resolve(cfg)


def test_cached_hub_model_is_found_without_network(tmp_path, tiny_model):
    repo = tmp_path / "models--Qwen--Qwen2.5-0.5B-Instruct"
    snapshot = repo / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    for file in ["config.json", "model.safetensors"]:
        (snapshot / file).write_bytes((tiny_model / file).read_bytes())
    cfg = ModelConfig(name_or_path="qwen2.5-0.5b-instruct", cache_dir=str(tmp_path))
    assert models.resolve(cfg) == str(snapshot)
    assert models.describe(cfg)["cached"] is True


def test_modelscope_cache_layout_is_found(tmp_path, tiny_model):
    folder = tmp_path / "models" / "Qwen" / "Qwen2___5-0___5B-Instruct"  # ModelScope writes '.' as '___'
    folder.mkdir(parents=True)
    for file in ["config.json", "model.safetensors"]:
        (folder / file).write_bytes((tiny_model / file).read_bytes())
    cfg = ModelConfig(name_or_path="qwen2.5-0.5b-instruct", hub="modelscope", cache_dir=str(tmp_path))
    assert models.resolve(cfg) == str(folder)


def test_starter_is_built_lazily(monkeypatch, tmp_path):
    import workbench

    fake = types.SimpleNamespace(ensure_starter=lambda: str(tmp_path))
    monkeypatch.setitem(sys.modules, "workbench.starter", fake)
    monkeypatch.setattr(workbench, "starter", fake, raising=False)
    assert models.resolve(ModelConfig()) == str(tmp_path)
    assert models.describe("starter")["cached"] is True  # always available offline


# ------------------------------------------------------------------------------------------- download


def test_download_offline_env_fails_fast(monkeypatch, offline_download):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.monotonic()
    with pytest.raises(ModelError, match="HF_HUB_OFFLINE"):
        hub.download("qwen2.5-0.5b-instruct")
    assert time.monotonic() - started < 2


def test_download_without_network_names_host_and_fixes(monkeypatch, offline_download):
    for name in ["HF_HUB_OFFLINE", "HF_ENDPOINT", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(hub, "reachable", lambda host, port, timeout: False)
    with pytest.raises(ModelError, match=r"cannot reach huggingface\.co within 3 s") as info:
        hub.download("qwen2.5-0.5b-instruct", timeout=3)
    assert "HF_ENDPOINT" in str(info.value) and "modelscope" in str(info.value)


def test_reachable_is_false_quickly_for_a_closed_port():
    with socket.socket() as probe:  # bind and release a port so nothing listens on it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    assert hub.reachable("127.0.0.1", port, timeout=0.2) is False
    assert time.monotonic() - started < 2


def test_reachable_gives_up_on_a_stalled_lookup(monkeypatch):
    # A dead DNS resolver ignores socket timeouts; the check must still return on time.
    def stalled_lookup(*args, **kwargs):
        time.sleep(3)
        raise OSError("name resolution timed out")  # as a real lookup ends, so the thread ends quietly

    monkeypatch.setattr(hub.socket, "create_connection", stalled_lookup)
    started = time.monotonic()
    assert hub.reachable("hub.example", 443, timeout=0.2) is False
    assert time.monotonic() - started < 1


@pytest.mark.parametrize(("name", "with_code"), [("qwen2.5-0.5b-instruct", False), ("chatglm3-6b", True)])
def test_download_fetches_safetensors_only(monkeypatch, tiny_model, name, with_code):
    import huggingface_hub

    seen = {}
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(hub, "reachable", lambda host, port, timeout: True)
    monkeypatch.setattr(
        huggingface_hub, "snapshot_download", lambda repo, **kw: seen.update(kw, repo=repo) or tiny_model
    )
    assert hub.download(name) == str(tiny_model)
    assert seen["repo"] == models.lookup(name).hf_id
    assert "*.safetensors" in seen["allow_patterns"]
    assert not any(p.endswith((".bin", ".pt", ".pth")) for p in seen["allow_patterns"])
    assert ("*.py" in seen["allow_patterns"]) is with_code  # fetched, not run: loading still needs the opt-in


def test_download_of_a_pickle_only_repo_is_refused(monkeypatch, tmp_path):
    import huggingface_hub

    (tmp_path / "config.json").write_text("{}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(hub, "reachable", lambda host, port, timeout: True)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda repo, **kw: str(tmp_path))
    with pytest.raises(ModelError, match="publishes no safetensors"):
        hub.download("baichuan-inc/Baichuan2-7B-Chat")


def test_download_rejects_names_that_are_neither():
    with pytest.raises(ModelError, match="neither a catalogue name nor a hub ID"):
        hub.download("not a model")


# ------------------------------------------------------------------------------------------- loading


def test_load_model_passes_trust_remote_code_false_and_safetensors(monkeypatch, tiny_model):
    import transformers

    seen = {}
    monkeypatch.setattr(
        transformers.AutoModelForCausalLM, "from_pretrained", lambda path, **kw: seen.update(kw) or "model"
    )
    assert models.load_model(str(tiny_model), dtype="fp32") == "model"
    assert seen["trust_remote_code"] is False
    assert seen["use_safetensors"] is True and seen["local_files_only"] is True
    assert seen["dtype"] == "float32"


def test_remote_code_error_is_translated(tmp_path):
    auto_map = {"AutoModelForCausalLM": "modeling_chatglm.ChatGLMForConditionalGeneration"}
    config = {"model_type": "chatglm", "auto_map": {"AutoConfig": "configuration_chatglm.C", **auto_map}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelError, match="model.trust_remote_code: true"):
        models.load_model(str(tmp_path))


def test_load_by_hub_id_is_refused_not_fetched():
    with pytest.raises(ModelError, match="resolve"):
        models.load_model("Qwen/Qwen2.5-0.5B-Instruct")


def test_tiny_model_loads_and_is_described(tiny_model):
    model = models.load_model(str(tiny_model))
    tokenizer = models.load_tokenizer(str(tiny_model), chat_template="chatml")
    assert model.config.model_type == "qwen2"
    assert tokenizer.pad_token is not None  # batching needs one
    assert "<|im_start|>assistant" in tokenizer.apply_chat_template(
        [{"role": "user", "content": "w2"}], tokenize=False, add_generation_prompt=True
    )
    facts = models.describe(str(tiny_model))
    assert facts["architecture"] == "Qwen2ForCausalLM" and facts["cached"] is True
    assert facts["params_b"] == pytest.approx(sum(p.numel() for p in model.parameters()) / 1e9, abs=1e-4)


def test_missing_chat_template_is_a_clear_error(tiny_model):
    tokenizer = models.load_tokenizer(str(tiny_model))
    with pytest.raises(ModelError, match="no chat template"):
        models.ensure_chat_template(tokenizer)


# ------------------------------------------------------------------------------------------- facts


def test_lora_targets_from_catalogue_config_or_fallback(tmp_path, tiny_model):
    assert models.lora_targets("chatglm3-6b")[0] == "query_key_value"
    assert models.lora_targets(str(tiny_model)) == list(models.PROJECTIONS)
    (tmp_path / "config.json").write_text('{"model_type": "something_new"}')
    assert models.lora_targets(str(tmp_path)) == "all-linear"


def test_memory_estimate_orders_full_over_lora_over_qlora():
    for precision in ["fp32", "bf16"]:
        full, lora, qlora = (models.estimate_memory_gb(7, t, precision) for t in ["full", "lora", "qlora"])
        assert full > lora > qlora > 7 * 0.5
    assert models.estimate_memory_gb(7, "full", "bf16") == pytest.approx(7 * 8 * 1.2)
    with pytest.raises(ValueError, match="adapter_type"):
        models.estimate_memory_gb(7, "magic")
