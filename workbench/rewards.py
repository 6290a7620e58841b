"""Reward functions for GRPO: built-in verifiable rewards, and the user's own behind an explicit opt-in.

A recipe names rewards with weights, e.g. `method.rewards: {exact_match: 1.0, length_penalty: 0.1}`.
Every reward function takes the completions as plain text plus the dataset's columns (the reference
answer is `answer`) and returns one number per completion:

    def my_reward(completions: list[str], answer: list[str], **columns) -> list[float]

A key of the form `path/to/file.py:function` loads the user's function; that runs code named by a
recipe, so it needs `method.allow_reward_code: true`.
"""

from __future__ import annotations

import difflib
import importlib.util
import inspect
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.config import ConfigError
from workbench.errors import RewardError

ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def _answers(answer: list | None, n: int) -> list:
    if answer is None:
        raise RewardError(
            "this reward compares with a reference answer: the dataset needs an 'answer' column"
        )
    return answer


def _final(text: str) -> str:
    """The answer part of a completion: inside <answer> tags when present, else the whole text."""
    match = ANSWER_TAG.search(text)
    return (match[1] if match else text).strip()


def exact_match(completions: list[str], answer: list | None = None, **_: Any) -> list[float]:
    """1 when the completion (or its <answer> part) equals the reference answer, else 0."""
    return [
        float(_final(c) == str(a).strip())
        for c, a in zip(completions, _answers(answer, len(completions)), strict=True)
    ]


def similarity(completions: list[str], answer: list | None = None, **_: Any) -> list[float]:
    """Partial credit in [0, 1]: how closely the answer matches the reference, character by character."""
    refs = _answers(answer, len(completions))
    return [
        difflib.SequenceMatcher(None, _final(c), str(a).strip()).ratio()
        for c, a in zip(completions, refs, strict=True)
    ]


def numeric_match(completions: list[str], answer: list | None = None, **_: Any) -> list[float]:
    """1 when the last number in the completion equals the last number in the reference, else 0.

    "The last number" lets worked references such as GSM8K's "... #### 42" count as 42.
    """
    out = []
    for text, ref in zip(completions, _answers(answer, len(completions)), strict=True):
        got, want = NUMBER.findall(_final(text).replace(",", "")), NUMBER.findall(str(ref).replace(",", ""))
        out.append(float(bool(got and want) and math.isclose(float(got[-1]), float(want[-1]), abs_tol=1e-6)))
    return out


def answer_tag(completions: list[str], **_: Any) -> list[float]:
    """1 when the completion puts its answer in <answer>...</answer> tags, else 0 (a format check)."""
    return [float(bool(ANSWER_TAG.search(c))) for c in completions]


def length_penalty(completions: list[str], answer: list | None = None, **_: Any) -> list[float]:
    """0 down to -1: characters beyond the reference answer's length (or beyond 200 without one)."""
    refs = answer if answer is not None else [None] * len(completions)
    out = []
    for text, ref in zip(completions, refs, strict=True):
        allowed = len(str(ref).strip()) if ref is not None else 200
        extra = max(0, len(text.strip()) - allowed)
        out.append(-min(1.0, extra / max(allowed, 1)))
    return out


BUILT_IN = {f.__name__: f for f in (exact_match, similarity, numeric_match, answer_tag, length_penalty)}


def load(rewards: dict[str, float], allow_code: bool = False) -> list[tuple[str, Callable, float]]:
    """(name, function, weight) for each reward a recipe names; errors name the key and the fix."""
    if not rewards:
        raise ConfigError(
            "method.rewards is empty: GRPO needs at least one reward function, e.g. "
            f"method.rewards: {{exact_match: 1.0}}; built in: {', '.join(BUILT_IN)}"
        )
    return [(name, _function(name, allow_code), weight) for name, weight in rewards.items()]


def _function(name: str, allow_code: bool) -> Callable:
    if name in BUILT_IN:
        return BUILT_IN[name]
    if ":" not in name:
        raise ConfigError(
            f"method.rewards: unknown reward '{name}'; built in: {', '.join(BUILT_IN)}, "
            "or your own as 'path/to/file.py:function' (with method.allow_reward_code: true)"
        )
    if not allow_code:
        raise ConfigError(
            f"method.rewards names code to run ({name}); running a recipe's Python is a trust decision: "
            "read the file, then set method.allow_reward_code: true"
        )
    path, _, attr = name.rpartition(":")
    return _checked_signature(_import(Path(path), attr, name), name)


def _import(path: Path, attr: str, name: str) -> Callable:
    if not path.is_file():
        raise ConfigError(
            f"method.rewards: reward file not found: {path} (in '{name}'; relative to {Path.cwd()})"
        )
    spec = importlib.util.spec_from_file_location(f"workbench_reward_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # the user's file: any error is theirs to see, with where it came from
        raise ConfigError(
            f"method.rewards: importing {path} failed: {type(error).__name__}: {error}"
        ) from error
    function = getattr(module, attr, None)
    if not callable(function):
        found = [n for n, v in vars(module).items() if inspect.isfunction(v) and not n.startswith("_")]
        raise ConfigError(
            f"method.rewards: {path} has no function '{attr}'; functions found: {', '.join(found) or 'none'}"
        )
    return function


def _checked_signature(function: Callable, name: str) -> Callable:
    params = inspect.signature(function).parameters
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in params.values())
    if "completions" not in params or not takes_kwargs:
        raise ConfigError(
            f"method.rewards: {name} must look like "
            "`def f(completions: list[str], answer: list[str], **columns) -> list[float]` "
            f"(it has ({', '.join(params)}))"
        )
    return function


def combine(loaded: list[tuple[str, Callable, float]]) -> tuple[list[Callable], list[float]]:
    """TRL-ready reward functions (checked, text in, floats out) and their weights."""
    return [_for_trl(name, function) for name, function, _ in loaded], [w for _, _, w in loaded]


def _for_trl(name: str, function: Callable) -> Callable:
    def reward(prompts: list, completions: list, **columns: Any) -> list[float]:
        texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
        return score(name, function, texts, columns)

    reward.__name__ = name.rpartition(":")[2] or name  # TRL logs rewards/<name>/mean
    return reward


def score(name: str, function: Callable, texts: list[str], columns: dict) -> list[float]:
    """Call one reward function and insist on one finite number per completion."""
    try:
        values = function(completions=texts, **columns)
    except RewardError:
        raise
    except Exception as error:
        raise RewardError(f"reward '{name}' raised {type(error).__name__}: {error}") from error
    if not isinstance(values, list | tuple) or len(values) != len(texts):
        got = f"{len(values)} values" if isinstance(values, list | tuple) else type(values).__name__
        raise RewardError(f"reward '{name}' must return one number per completion ({len(texts)}), got {got}")
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError):
        raise RewardError(
            f"reward '{name}' returned something that is not a number: {values!r:.80}"
        ) from None


def total(loaded: list[tuple[str, Callable, float]], texts: list[str], columns: dict) -> list[float]:
    """The weighted sum of every reward for each completion (what GRPO maximises)."""
    sums = [0.0] * len(texts)
    for name, function, weight in loaded:
        for i, value in enumerate(score(name, function, texts, columns)):
            sums[i] += weight * value
    return sums


def dry_run(loaded: list[tuple[str, Callable, float]], rows: list[dict]) -> None:
    """Call every reward on a few dataset rows (their reference answers as completions) before training."""
    sample = rows[:2]
    total(loaded, [str(row.get("answer", "")) for row in sample], columns(sample))


def columns(rows: list[dict]) -> dict[str, list]:
    """Dataset rows as the column lists reward functions receive (as TRL passes them)."""
    return {key: [row.get(key) for row in rows] for key in rows[0] if key != "prompt"}
