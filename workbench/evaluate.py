"""Quick evaluation: exact-match accuracy of greedy answers on a held-out split."""

from __future__ import annotations

from typing import Any


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
    was_training, side = model.training, tokenizer.padding_side
    model.eval()
    tokenizer.padding_side = "left"  # decoder-only models generate after the last prompt token
    answers = []
    try:
        with torch.no_grad():
            for start in range(0, len(pairs), batch_size):
                answers += generate(
                    model, tokenizer, [p for p, _ in pairs[start : start + batch_size]], max_new_tokens
                )
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    hits = [a.strip() == ref.strip() for a, (_, ref) in zip(answers, pairs, strict=False)]
    examples = [
        {"prompt": p[-1]["content"], "reference": ref, "answer": a, "correct": h}
        for (p, ref), a, h in list(zip(pairs, answers, hits, strict=False))[:5]
    ]
    return {"accuracy": sum(hits) / len(hits), "n": len(hits), "examples": examples}


def generate(model: Any, tokenizer: Any, prompts: list[list[dict]], max_new_tokens: int) -> list[str]:
    """Greedy completions for a batch of chat prompts."""
    texts = [tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in prompts]
    batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
    out = model.generate(
        **batch,
        max_new_tokens=max_new_tokens,
        do_sample=False,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return tokenizer.batch_decode(out[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)
