"""Measuring a method's effect on held-out data, before and after training.

A method's spec names its kind of measurement (`MethodSpec.eval`):
  exact_match   greedy answers equal to the reference answers
  preference    the policy gives the chosen answer a higher mean token log-likelihood than the rejected
                one; length-normalised so answers of different lengths compare fairly
  ranking       a reward model scores the chosen answer above the rejected one
  rewards       mean reward of greedy answers under the recipe's reward functions, plus exact match
  reward_model  mean reward-model score of greedy answers, plus exact match and well-formedness
The last two score answers with the method module's `scorer(cfg, model, tokenizer)`.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable
from typing import Any

from workbench import data


def load_eval(kind: str, cfg_data: Any, max_samples: int | None) -> list:
    """The held-out rows a measurement of `kind` needs, from data.eval."""
    if not cfg_data.eval:
        return []
    if kind == "exact_match":
        return data.eval_pairs(cfg_data, max_samples=max_samples)
    if kind in ("preference", "ranking"):
        return data.eval_triples(cfg_data, max_samples)
    limited = dataclasses.replace(cfg_data, max_samples=max_samples)
    return data.rows_for(limited, "prompts", "eval")[0]


def measure(
    kind: str, model: Any, tokenizer: Any, rows: list, cfg: Any, score: Callable | None = None
) -> dict:
    """The effect metrics of `kind` on `rows` (see the module docstring); {} when there are no rows."""
    if not rows:
        return {}
    import torch

    was_training, side = model.training, tokenizer.padding_side
    model.eval()
    try:
        with torch.no_grad():
            if kind == "exact_match":
                return exact_match(model, tokenizer, rows, cfg.eval.max_new_tokens, cfg.eval.batch_size)
            if kind in ("preference", "ranking"):
                return _compare(kind, model, tokenizer, rows, cfg.eval.batch_size)
            return _generated(model, tokenizer, rows, cfg, score)
    finally:
        tokenizer.padding_side = side
        model.train(was_training)


def exact_match(
    model: Any,
    tokenizer: Any,
    pairs: list[tuple[list[dict], str]],
    max_new_tokens: int = 16,
    batch_size: int = 32,
) -> dict:
    """Share of prompts whose greedy answer equals the reference (stripped), with a few examples."""
    import torch

    if not pairs:
        return {"accuracy": None, "n": 0, "examples": []}
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            answers = _in_batches(lambda b: generate(model, tokenizer, [p for p, _ in b], max_new_tokens), pairs,
                                  batch_size)  # fmt: skip
    finally:
        model.train(was_training)
    hits = [a.strip() == ref.strip() for a, (_, ref) in zip(answers, pairs, strict=True)]
    examples = [
        {"prompt": p[-1]["content"], "reference": ref, "answer": a, "correct": h}
        for (p, ref), a, h in list(zip(pairs, answers, hits, strict=True))[:5]
    ]
    return {"accuracy": sum(hits) / len(hits), "n": len(hits), "examples": examples}


def _compare(kind: str, model: Any, tokenizer: Any, triples: list, batch_size: int) -> dict:
    value = mean_logprobs if kind == "preference" else reward_scores
    prompts = [p for p, _, _ in triples]
    chosen = _in_batches(lambda b: value(model, tokenizer, [p for p, _, _ in b], [c for _, c, _ in b]), triples,
                         batch_size)  # fmt: skip
    rejected = _in_batches(lambda b: value(model, tokenizer, [p for p, _, _ in b], [r for _, _, r in b]), triples,
                           batch_size)  # fmt: skip
    margins = [c - r for c, r in zip(chosen, rejected, strict=True)]
    examples = [
        {"prompt": p[-1]["content"], "chosen": c, "rejected": r, "margin": round(m, 4)}
        for p, (_, c, r), m in list(zip(prompts, triples, margins, strict=True))[:5]
    ]
    return {
        "preference_accuracy": sum(m > 0 for m in margins) / len(margins),
        "margin": statistics.fmean(margins),
        "n": len(margins),
        "examples": examples,
    }


def _generated(model: Any, tokenizer: Any, rows: list[dict], cfg: Any, score: Callable) -> dict:
    def run(batch: list[dict]) -> list[tuple[str, bool, float]]:
        got = sample(model, tokenizer, [r["prompt"] for r in batch], cfg.method.max_completion_length)
        texts = [text for text, _ in got]
        return list(zip(texts, [f for _, f in got], score(batch, texts), strict=True))

    out = _in_batches(run, rows, cfg.eval.batch_size)
    texts, rewards = [t for t, _, _ in out], [v for _, _, v in out]
    hits = [t.strip() == str(r.get("answer", "")).strip() for t, r in zip(texts, rows, strict=True)]
    examples = [
        {
            "prompt": r["prompt"][-1]["content"],
            "reference": r.get("answer"),
            "answer": t,
            "reward": round(v, 4),
        }
        for r, t, v in list(zip(rows, texts, rewards, strict=True))[:5]
    ]
    return {
        "reward_mean": statistics.fmean(rewards),
        "reward_std": statistics.pstdev(rewards),
        "accuracy": sum(hits) / len(hits),
        "well_formed": sum(f and bool(t.strip()) for t, f, _ in out) / len(out),
        "n": len(out),
        "examples": examples,
    }


def _in_batches(function: Callable, items: list, batch_size: int) -> list:
    out = []
    for start in range(0, len(items), batch_size):
        out += function(items[start : start + batch_size])
    return out


def _prompt_ids(tokenizer: Any, prompt: list[dict]) -> list[int]:
    text = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def _answer_ids(tokenizer: Any, prompt: list[dict], answer: str) -> list[int]:
    """The tokens the chat template puts after the prompt for this answer (end-of-turn marker included)."""
    head = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template([*prompt, {"role": "assistant", "content": answer}], tokenize=False)
    tail = full[len(head) :] if full.startswith(head) else answer
    return tokenizer(tail, add_special_tokens=False)["input_ids"]


def _padded(tokenizer: Any, sequences: list[list[int]], device: Any) -> tuple[Any, Any]:
    import torch

    width = max(map(len, sequences))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = torch.tensor([s + [pad] * (width - len(s)) for s in sequences], device=device)
    mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in sequences], device=device)
    return ids, mask


def mean_logprobs(model: Any, tokenizer: Any, prompts: list[list[dict]], answers: list[str]) -> list[float]:
    """Mean log-probability per answer token of each answer after its prompt."""
    import torch

    heads = [_prompt_ids(tokenizer, p) for p in prompts]
    tails = [_answer_ids(tokenizer, p, a) for p, a in zip(prompts, answers, strict=True)]
    ids, mask = _padded(tokenizer, [h + t for h, t in zip(heads, tails, strict=True)], model.device)
    logprobs = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits[:, :-1].float(), dim=-1)
    picked = logprobs.gather(-1, ids[:, 1:, None])[..., 0]
    out = []
    for row, (head, tail) in enumerate(zip(heads, tails, strict=True)):
        out.append(picked[row, len(head) - 1 : len(head) - 1 + len(tail)].mean().item())
    return out


def reward_scores(model: Any, tokenizer: Any, prompts: list[list[dict]], answers: list[str]) -> list[float]:
    """A reward model's score of each answer after its prompt."""
    sequences = [
        _prompt_ids(tokenizer, p) + _answer_ids(tokenizer, p, a)
        for p, a in zip(prompts, answers, strict=True)
    ]
    ids, mask = _padded(tokenizer, sequences, model.device)
    return model(input_ids=ids, attention_mask=mask).logits[:, 0].float().tolist()


def sample(
    model: Any, tokenizer: Any, prompts: list[list[dict]], max_new_tokens: int
) -> list[tuple[str, bool]]:
    """Greedy completions, each with whether it ended by itself (an end token before the length limit)."""
    tokenizer.padding_side = "left"  # decoder-only models generate after the last prompt token
    texts = [tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in prompts]
    batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
    out = model.generate(
        **batch,
        max_new_tokens=max_new_tokens,
        do_sample=False,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    new = out[:, batch["input_ids"].shape[1] :]
    finished = (new == tokenizer.eos_token_id).any(dim=1).tolist()
    return list(zip(tokenizer.batch_decode(new, skip_special_tokens=True), finished, strict=True))


def generate(model: Any, tokenizer: Any, prompts: list[list[dict]], max_new_tokens: int) -> list[str]:
    """Greedy completions for a batch of chat prompts."""
    side = tokenizer.padding_side
    try:
        return [text for text, _ in sample(model, tokenizer, prompts, max_new_tokens)]
    finally:
        tokenizer.padding_side = side
