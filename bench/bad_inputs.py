"""The bad-input sweep: each case through `workbench train` as a user would type it; a case is clear when
it exits 2 with one `error:` line naming what to fix (no traceback) and leaves no folder under output.root.
    python bench/bad_inputs.py
"""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUICK = str(ROOT / "recipes" / "quickstart.yaml")

# name -> (recipe text or None for the quickstart, overrides, a word the message must contain)
OVERRIDES = {
    "learning rate 0": (["train.learning_rate=0"], "train.learning_rate"),
    "learning rate negative": (["train.learning_rate=-1e-4"], "train.learning_rate"),
    "learning rate NaN": (["train.learning_rate=.nan"], "train.learning_rate"),
    "learning rate text": (["train.learning_rate=abc"], "train.learning_rate"),
    "batch size 0": (["train.per_device_train_batch_size=0"], "per_device_train_batch_size"),
    "gradient accumulation 0": (["train.gradient_accumulation_steps=0"], "gradient_accumulation_steps"),
    "max_steps 0": (["train.max_steps=0"], "train.max_steps"),
    "epochs 0": (["train.max_steps=-1", "train.num_train_epochs=0"], "num_train_epochs"),
    "logging every 0 steps": (["train.logging_steps=0"], "train.logging_steps"),
    "saving every 0 steps": (["train.save_steps=0"], "train.save_steps"),
    "warmup negative": (["train.warmup_steps=-1"], "train.warmup_steps"),
    "LoRA r 0": (["adapter.r=0"], "adapter.r"),
    "LoRA dropout 1": (["adapter.lora_dropout=1.0"], "adapter.lora_dropout"),
    "LoRA dropout negative": (["adapter.lora_dropout=-0.1"], "adapter.lora_dropout"),
    "LoRA r text": (["adapter.r=abc"], "adapter.r"),
    "max_length negative": (["data.max_length=-5"], "data.max_length"),
    "max_samples 0": (["data.max_samples=0"], "data.max_samples"),
    "eval new tokens 0": (["eval.max_new_tokens=0"], "eval.max_new_tokens"),
    "temperature 0": (["method.temperature=0"], "method.temperature"),
    "beta negative": (["method.name=dpo", "method.beta=-1"], "method.beta"),
    "unknown key": (["train.learnin_rate=1e-4"], "train.learnin_rate"),
    "unknown method": (["method.name=foo"], "method.name"),
    "unknown device": (["device.type=tpu"], "device.type"),
    "unknown adapter": (["adapter.type=lora2"], "adapter.type"),
    "output.name escapes the root": (["output.name=../../x"], "output.name"),
    "output.name absolute": (["output.name=/tmp/x"], "output.name"),
    "override without =": (["train.max_steps"], "train.max_steps"),
    "processes 0": (["distributed.num_processes=0"], "distributed.num_processes"),
    "missing train file": (["data.train=nope.jsonl"], "nope.jsonl"),
    "missing eval file": (["data.eval=nope-eval.jsonl"], "data.eval"),
    "missing model folder": (["model.name_or_path=./no/such/model"], "model.name_or_path"),
    "preference data for SFT": (["data.train=bundled:reverse/pref_train"], "chosen"),
    "SFT data for DPO": (["method.name=dpo"], "preference"),
    "unknown DPO loss": (["method.name=dpo", "data.train=bundled:reverse/pref_train",
                          "data.eval=bundled:reverse/pref_eval", "method.loss_type=foo"], "method.loss_type"),
    "GRPO with one generation": (["method.name=grpo", "method.rewards={exact_match: 1}",
                                  "method.num_generations=1"], "num_generations"),
    "GRPO unknown reward": (["method.name=grpo", "method.rewards={nope: 1}"], "nope"),
    "GRPO reward code without opt-in": (["method.name=grpo", "method.rewards={my.py:f: 1}"], "allow_reward_code"),
    "PPO without a reward model": (["method.name=ppo"], "reward_model"),
}  # fmt: skip

FILES = {  # recipe files: name -> (bytes, a word the message must contain)
    "duplicate key": (b"train:\n  max_steps: 5\n  max_steps: 6\n", "lines 2 and 3"),
    "binary recipe": (b"\x89PNG\r\n\x1a\n\x00\x00", "UTF-8"),
    "Latin-1 recipe": ("output:\n  name: caf\u00e9\n".encode("latin-1"), "UTF-8"),
    "invalid YAML": (b"train: [1, 2\n", "not valid YAML"),
    "a list, not a mapping": (b"- 1\n- 2\n", "mapping"),
}
DATA = {  # data files: name -> (bytes, a word the message must contain)
    "Latin-1 data": (b'{"messages": [{"role": "user", "content": "caf\xe9"}]}\n', "line 1"),
    "torn JSON line": (b'{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ih"}]}\n{no',
                       "line 2"),
    "empty data file": (b"", "empty"),
}  # fmt: skip


def attempt(recipe: str, overrides: list[str], out: Path) -> tuple[int, str]:
    """`workbench train RECIPE` with a short run and the case's overrides last (they win)."""
    from workbench import cli

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = cli.main(["train", recipe, f"output.root={out}", "train.max_steps=2", *overrides])
        except SystemExit as exit_:  # argparse
            code = exit_.code
        except BaseException as error:  # noqa: BLE001  (the point: an unexplained traceback is a failed case)
            code, err = 1, io.StringIO(f"Traceback: {type(error).__name__}: {error}")
    return code, err.getvalue()


def judge(name: str, code: int, text: str, word: str, out: Path) -> dict:
    left = [p.name for p in out.iterdir()] if out.exists() else []
    lines = [line for line in text.strip().splitlines() if line.strip()]
    clear = code == 2 and "Traceback" not in text and word in text and not left
    return {"case": name, "clear": clear, "exit": code, "lines": len(lines), "names": word in text,
            "left": left, "message": (lines[-1] if lines else "")[:160]}  # fmt: skip


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for i, (name, (overrides, word)) in enumerate(OVERRIDES.items()):
            rows.append(judge(name, *attempt(QUICK, overrides, tmp / f"o{i}"), word, tmp / f"o{i}"))
        for i, (name, (content, word)) in enumerate(FILES.items()):
            recipe, out = tmp / f"r{i}.yaml", tmp / f"f{i}"
            recipe.write_bytes(content)
            rows.append(judge(name, *attempt(str(recipe), [], out), word, out))
        for i, (name, (content, word)) in enumerate(DATA.items()):
            data, out = tmp / f"d{i}.jsonl", tmp / f"g{i}"
            data.write_bytes(content)
            rows.append(judge(name, *attempt(QUICK, [f"data.train={data}"], out), word, out))
        blocked = tmp / "a-file"
        blocked.write_text("not a folder")
        out = blocked / "runs"
        code, text = attempt(QUICK, ["eval.before=false"], out)
        rows.append(judge("output.root under a file", code, text, "output.root", blocked / "runs"))
    for row in rows:
        print(("clear  " if row["clear"] else "UNCLEAR") + f"  {row['case']:<34} {row['message']}")
    clear = sum(row["clear"] for row in rows)
    print(f"\n{clear} of {len(rows)} bad inputs get one clear message and leave no run directory")
    sys.exit(0 if clear == len(rows) else 1)


if __name__ == "__main__":
    main()
