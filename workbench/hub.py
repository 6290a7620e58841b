"""Going online: whether a hub answers, and fetching a model from Hugging Face or ModelScope.

Everything here is bounded: the reachability check gives up after `timeout` seconds, so a machine without
network gets a quick error naming the host and the way out, not a minute of retries. Models are fetched as
config, tokenizer and safetensors only; a repo's Python is fetched only when asked for, and never run here.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from pathlib import Path
from urllib.parse import urlparse

from workbench.models import CONVERT, HUB_ID, ModelError, check_model_dir, lookup


def download(
    name_or_id: str,
    hub: str = "huggingface",
    cache_dir: str | None = None,
    revision: str | None = None,
    timeout: float = 10.0,
    trust_remote_code: bool = False,
) -> str:
    """Fetch a catalogue model or hub ID (config, tokenizer, safetensors only) and return its folder."""
    if name_or_id.strip().lower() == "starter":  # built here, never fetched
        from workbench import starter

        return str(starter.ensure_starter())
    spec = lookup(name_or_id)
    repo_id = spec.repo_id(hub) if spec else name_or_id.strip()
    if not HUB_ID.match(repo_id):
        raise ModelError(f"'{name_or_id}' is neither a catalogue name nor a hub ID (owner/name)")
    if why := unreachable(hub, timeout):
        raise ModelError(f"{why}. {_way_out(hub)}")
    # Repo code is only fetched (not run) here; running it still needs model.trust_remote_code: true.
    patterns = ["*.json", "*.safetensors", "tokenizer*", "*.model", "*.tiktoken", "*.txt", "*.jinja"]
    patterns += ["*.py"] if trust_remote_code or (spec and spec.needs_remote_code) else []
    fetch = _fetch_modelscope if hub == "modelscope" else _fetch_huggingface
    folder = Path(fetch(repo_id, cache_dir, revision, timeout, patterns))
    if not any(folder.glob("*.safetensors")):  # the repo publishes pickled weights only (.bin)
        raise ModelError(
            f"{repo_id} publishes no safetensors weights, and the workbench loads safetensors only. Fetch "
            f"the repo yourself, convert it with: {CONVERT} and set model.name_or_path to DST."
        )
    return str(check_model_dir(folder))


def unreachable(hub: str = "huggingface", timeout: float = 10.0) -> str | None:
    """Why `hub` cannot be reached now (HF_HUB_OFFLINE, no network), or None when it answers."""
    if hub == "huggingface" and os.environ.get("HF_HUB_OFFLINE", "").upper() in {"1", "ON", "YES", "TRUE"}:
        return "HF_HUB_OFFLINE=1 is set, so nothing can be downloaded (unset it to go online)"
    host, port = _address(hub)
    if not reachable(host, port, timeout):
        return f"cannot reach {host} within {timeout:g} s (no network or a firewall)"
    return None


def reachable(host: str, port: int = 443, timeout: float = 10.0) -> bool:
    """Whether a TCP connection to host:port opens within `timeout` seconds, DNS lookup included."""
    opened = []

    def attempt() -> None:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
            opened.append(True)

    # The DNS lookup ignores socket timeouts and can stall on a dead resolver: wait in a thread instead.
    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(opened)


def _address(hub: str) -> tuple[str, int]:
    # Behind a proxy the hub itself is not reachable directly: the proxy is what must answer.
    proxy = next(
        (os.environ[k] for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY") if os.environ.get(k)), None
    )
    if hub == "modelscope":
        url = "https://" + os.environ.get("MODELSCOPE_DOMAIN", "www.modelscope.cn")
    else:
        url = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    parsed = urlparse(proxy or url)
    return parsed.hostname or "", parsed.port or (80 if parsed.scheme == "http" else 443)


def _way_out(hub: str) -> str:
    other = "hub: huggingface" if hub == "modelscope" else "a mirror (set HF_ENDPOINT) or hub: modelscope"
    return (
        f"Try {other}, or copy the model folder to this machine and set model.name_or_path to it "
        f"('starter' always works offline)."
    )


def _fetch_huggingface(repo_id, cache_dir, revision, timeout, patterns) -> str:
    from huggingface_hub import errors, snapshot_download

    try:
        return snapshot_download(
            repo_id,
            revision=revision,
            cache_dir=cache_dir,
            etag_timeout=timeout,
            allow_patterns=patterns,
            ignore_patterns=["consolidated*", "original/*"],
        )
    except errors.GatedRepoError:
        raise ModelError(
            f"{repo_id} is gated: accept its licence on https://huggingface.co/{repo_id}, then log in with "
            f"`hf auth login` (older: `huggingface-cli login`) or set HF_TOKEN; or use hub: modelscope"
        ) from None
    except errors.RepositoryNotFoundError:
        raise ModelError(
            f"no model {repo_id} on the hub (check the ID; a private repo needs a login)"
        ) from None
    except errors.RevisionNotFoundError:
        raise ModelError(f"{repo_id} has no revision {revision!r}; check model.revision") from None
    except Exception as error:  # network drops mid-way, disk full, ...: keep the cause, add the way out
        raise ModelError(f"downloading {repo_id} failed: {error}. " + _way_out("huggingface")) from error


def _fetch_modelscope(repo_id, cache_dir, revision, timeout, patterns) -> str:
    try:
        from modelscope import snapshot_download
    except ImportError:
        raise ModelError("hub: modelscope needs the modelscope package: pip install modelscope") from None
    extra = {"revision": revision} if revision else {}
    try:
        return snapshot_download(repo_id, cache_dir=cache_dir, allow_patterns=patterns, **extra)
    except Exception as error:
        raise ModelError(f"downloading {repo_id} from ModelScope failed: {error}") from error
