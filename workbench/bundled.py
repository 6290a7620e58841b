"""The bundled datasets: a word-reversal task a tiny model learns in minutes, in every format.

"Reverse the letters" has a single checkable answer, so exact match, preference pairs and reward
functions all follow from it. Words are random letter strings, so nothing can be memorised: the
held-out words never appear in training and accuracy there measures a learned skill.
Run `python -m workbench.bundled` to regenerate the files under workbench/bundled_data/reverse/.
"""

from __future__ import annotations

import json
import random
import string
from pathlib import Path

FOLDER = Path(__file__).parent / "bundled_data" / "reverse"
SIZES = {"train": 4000, "eval": 200}
PROMPTS = ("Reverse: {w}",)


def words(rng: random.Random, n: int, lengths: tuple[int, int], taken: set[str]) -> list[str]:
    """`n` distinct random lowercase words not in `taken` (which is updated)."""
    out = []
    while len(out) < n:
        word = "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(*lengths)))
        if word not in taken and word != word[::-1]:
            taken.add(word)
            out.append(word)
    return out


def near_miss(rng: random.Random, word: str) -> str:
    """A plausible wrong answer: the word unreversed, or the reversal with two letters swapped."""
    if rng.random() < 0.5:
        return word
    wrong = list(word[::-1])
    i = rng.randrange(len(wrong) - 1)
    wrong[i], wrong[i + 1] = wrong[i + 1], wrong[i]
    return "".join(wrong) if "".join(wrong) != word[::-1] else word


def one_letter_wrong(rng: random.Random, answer: str) -> str:
    """The right answer with one letter replaced: the typical mistake of a half-trained policy."""
    wrong = list(answer)
    i = rng.randrange(len(wrong))
    wrong[i] = rng.choice([c for c in string.ascii_lowercase if c != wrong[i]])
    return "".join(wrong)


def rows(split: str, items: list[str], rng: random.Random) -> dict[str, list[dict]]:
    """Every format of one split, built from the same words.

    "rm" (reward modelling) pairs the right answer with a one-letter mistake. Its own random stream
    keeps the other files as they were. The order-only near misses of "pref" (the word unreversed,
    two letters swapped) change no letter, and a reward model that reads one score at the last token
    gets no signal from them to start learning: measured flat at 50% over 300 steps.
    """
    rm_rng = random.Random(f"rm-{split}")
    out: dict[str, list[dict]] = {
        k: [] for k in ("sft", "alpaca", "sharegpt", "pref", "kto", "prompts", "rm")
    }
    for word in items:
        prompt, answer, wrong = rng.choice(PROMPTS).format(w=word), word[::-1], near_miss(rng, word)
        out["sft"].append(
            {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]}
        )
        out["alpaca"].append({"instruction": prompt, "input": "", "output": answer})
        out["sharegpt"].append(
            {"conversations": [{"from": "human", "value": prompt}, {"from": "gpt", "value": answer}]}
        )
        out["pref"].append({"prompt": prompt, "chosen": answer, "rejected": wrong})
        good = rng.random() < 0.5
        out["kto"].append({"prompt": prompt, "completion": answer if good else wrong, "label": good})
        out["prompts"].append({"prompt": prompt, "answer": answer})
        out["rm"].append({"prompt": prompt, "chosen": answer, "rejected": one_letter_wrong(rm_rng, answer)})
    return {f"{kind}_{split}": data for kind, data in out.items()}


def generate(folder: Path = FOLDER) -> list[Path]:
    """Write all files deterministically; return their paths."""
    rng, taken = random.Random(1234), set()
    held_out = words(rng, SIZES["eval"], (3, 5), taken)
    train = words(rng, SIZES["train"], (3, 5), taken)
    folder.mkdir(parents=True, exist_ok=True)
    files = {**rows("train", train, rng), **rows("eval", held_out, rng)}
    paths = []
    for name, data in files.items():
        path = folder / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in data), encoding="utf-8")
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in generate():
        print(p)
