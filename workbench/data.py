"""Datasets: tell a source's format, check every row, and turn it into what a method trains on.

Reading the source (bundled data, files, folders, hub IDs) is workbench.reading. Every problem is a
`DataError` naming the file, the line or row, the field and the fix. datasets and pandas are imported
inside the functions that need them, so importing this is instant.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from workbench.reading import DataError, names, read_records, where

ROLES = ("system", "user", "assistant")
SHAREGPT_ROLES = {"system": "system", "human": "user", "gpt": "assistant"}

# The fields of each format and the kind of value each holds; "a|b" accepts either name, "?" is optional.
# Detection tries the formats in this order.
FIELDS = {
    "preference": {"prompt": "text|turns", "chosen": "text|turns", "rejected": "text|turns"},
    "kto": {"prompt": "text|turns", "completion": "text|turns", "label": "bool"},
    "sharegpt": {"conversations": "sharegpt"},
    "messages": {"messages|conversations": "turns"},
    "alpaca": {
        "instruction": "text",
        "output": "text",
        "input": "text?",
        "system": "text?",
        "history": "pairs?",
    },
    "query_response": {"query|prompt": "text", "response": "text"},
    "prompt_answer": {"prompt": "text", "answer": "text"},
}
PAIRS = {"query_response": ("query|prompt", "response"), "prompt_answer": ("prompt", "answer")}
CHAT_FORMATS = ("messages", "sharegpt", "alpaca", "query_response", "prompt_answer")


# Formats


def detect_format(records: list[dict], source: str) -> str:
    """The format whose fields the first row has."""
    row = records[0]
    for fmt in FIELDS:
        sharegpt_ok = fmt != "sharegpt" or _first_turn_has(row.get("conversations"), "from")
        if sharegpt_ok and all(_field(row, name) in row for name in _required(fmt)):
            return fmt
    expected = "; ".join(f"{fmt} ({', '.join(_required(fmt))})" for fmt in FIELDS)
    raise DataError(
        f"{source}: cannot tell the format from the columns {names(row)}; expected one of: {expected}. "
        "Map yours with data.columns, e.g. {'question': 'instruction', 'answer': 'output'}, "
        "or set data.format"
    )


def validate(records: list[dict], fmt: str, source: str) -> None:
    """Raise a DataError for the first row that does not fit `fmt`."""
    problems = _problems(records, fmt, source)
    if problems:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise DataError(problems[0] + more)


def _problems(records: list[dict], fmt: str, source: str) -> list[str]:
    if fmt not in FIELDS:
        raise DataError(f"unknown data.format '{fmt}'; use auto or one of {', '.join(FIELDS)}")
    out = []
    for i, row in enumerate(records):
        out += [f"{where(records, i, source)}: {problem}" for problem in _row_problems(row, fmt)]
    return out


def _row_problems(row: dict, fmt: str) -> list[str]:
    problems = []
    for spec, kind in FIELDS[fmt].items():
        name = _field(row, spec)
        if row.get(name) is None:  # Parquet and hub datasets fill absent fields with null
            if not kind.endswith("?"):
                problems.append(
                    f"missing field '{name}'; add it or map your column to it with data.columns "
                    f"(columns found: {names(row)})"
                )
        elif problem := _value_problem(row[name], name, kind):
            problems.append(problem)
    if fmt in ("messages", "sharegpt") and not problems:
        name = _field(row, next(iter(FIELDS[fmt])))
        roles = {turn["role"] for turn in to_messages(row, fmt)}
        if not {"user", "assistant"} <= roles:
            who = "human' and 'gpt" if fmt == "sharegpt" else "user' and 'assistant"
            problems.append(
                f"field '{name}' needs a '{who}' turn; the last assistant turn is what is learned"
            )
    return problems


def _value_problem(value: Any, name: str, kind: str) -> str | None:
    shown = f"{type(value).__name__} {value!r:.60}"
    if kind == "bool":
        return None if isinstance(value, bool) else f"field '{name}' must be true or false, got {shown}"
    if kind == "pairs?":
        pairs_ok = isinstance(value, list) and all(
            isinstance(p, list | tuple) and len(p) == 2 and all(isinstance(t, str) for t in p) for p in value
        )
        return None if pairs_ok else f"field '{name}' must be a list of [question, answer] pairs, got {shown}"
    if kind in ("turns", "sharegpt") or (kind == "text|turns" and isinstance(value, list)):
        return _turns_problem(value, name, kind)
    if not isinstance(value, str):
        return f"field '{name}' must be text, got {shown}; write it as a JSON string (\"...\")"
    if not value.strip() and kind != "text?":
        return f"field '{name}' is empty; fill it in or drop the row"
    return None


def _turns_problem(turns: Any, name: str, kind: str) -> str | None:
    role_key, text_key, roles = (
        ("from", "value", SHAREGPT_ROLES) if kind == "sharegpt" else ("role", "content", ROLES)
    )
    if not isinstance(turns, list) or not turns:
        return f"field '{name}' must be a non-empty list of {{'{role_key}': ..., '{text_key}': ...}} turns"
    for j, turn in enumerate(turns):
        if not isinstance(turn, dict) or role_key not in turn or text_key not in turn:
            return (
                f"field '{name}[{j}]' must be an object with '{role_key}' and '{text_key}', got {turn!r:.60}"
            )
        if turn[role_key] not in roles:
            return f"field '{name}[{j}].{role_key}' is {turn[role_key]!r}; use one of {', '.join(roles)}"
        if not isinstance(turn[text_key], str) or not turn[text_key].strip():
            return f"field '{name}[{j}].{text_key}' must be non-empty text, got {turn[text_key]!r:.60}"
    return None


def _required(fmt: str) -> list[str]:
    return [spec for spec, kind in FIELDS[fmt].items() if not kind.endswith("?")]


def _field(row: dict, spec: str) -> str:
    """The name of an 'a|b' field that `row` uses (the first when it has neither)."""
    names = spec.split("|")
    return next((name for name in names if name in row), names[0])


def _first_turn_has(turns: Any, key: str) -> bool:
    return isinstance(turns, list) and bool(turns) and isinstance(turns[0], dict) and key in turns[0]


# Conversions


def to_messages(record: dict, fmt: str) -> list[dict]:
    """The record as a chat: a list of {'role', 'content'} turns."""
    if fmt == "messages":
        return [
            {"role": t["role"], "content": t["content"]}
            for t in record[_field(record, "messages|conversations")]
        ]
    if fmt == "sharegpt":
        return [{"role": SHAREGPT_ROLES[t["from"]], "content": t["value"]} for t in record["conversations"]]
    if fmt == "alpaca":
        chat = [{"role": "system", "content": record["system"]}] if record.get("system") else []
        for question, answer in record.get("history") or []:
            chat += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        user = record["instruction"] + (f"\n\n{record['input']}" if record.get("input") else "")
        return chat + [{"role": "user", "content": user}, {"role": "assistant", "content": record["output"]}]
    if fmt in PAIRS:
        question, answer = (record[_field(record, spec)] for spec in PAIRS[fmt])
        return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    raise DataError(f"a {fmt} row has no single conversation; use one of {', '.join(CHAT_FORMATS)}")


def for_sft(records: list[dict], fmt: str, completion_only: bool = True) -> list[dict]:
    """TRL's conversational prompt-completion rows (loss on the answer only), or plain messages rows."""
    if not completion_only:
        return [{"messages": to_messages(record, fmt)} for record in records]
    rows = []
    for record in records:
        chat = to_messages(record, fmt)
        last = max(i for i, turn in enumerate(chat) if turn["role"] == "assistant")
        rows.append({"prompt": chat[:last], "completion": [chat[last]]})
    return rows


def for_preference(records: list[dict], fmt: str, cfg: Any = None) -> list[dict]:
    """TRL's conversational preference rows: prompt turns, chosen and rejected assistant turns."""
    return [
        {
            "prompt": _turns(r["prompt"], "user"),
            "chosen": _turns(r["chosen"], "assistant"),
            "rejected": _turns(r["rejected"], "assistant"),
        }
        for r in records
    ]


def for_kto(records: list[dict], fmt: str, cfg: Any = None) -> list[dict]:
    """KTO's unpaired rows; a preference pair becomes two rows, chosen (true) and rejected (false)."""
    if fmt == "kto":
        return [
            {"prompt": _turns(r["prompt"], "user"), "completion": _turns(r["completion"], "assistant"),
             "label": r["label"]}
            for r in records
        ]  # fmt: skip
    rows = []
    for pair in for_preference(records, fmt):
        rows.append({"prompt": pair["prompt"], "completion": pair["chosen"], "label": True})
        rows.append({"prompt": pair["prompt"], "completion": pair["rejected"], "label": False})
    return rows


def for_prompts(records: list[dict], fmt: str, cfg: Any = None) -> list[dict]:
    """Prompt-only rows for GRPO and PPO; the reference answer goes to 'answer' for reward functions.

    Other plain columns of a row are kept, since TRL hands every column to the reward functions.
    """
    rows = []
    for record in records:
        if fmt == "preference":
            prompt, answer = _turns(record["prompt"], "user"), _text(record["chosen"])
        else:
            chat = to_messages(record, fmt)
            last = max(i for i, turn in enumerate(chat) if turn["role"] == "assistant")
            prompt, answer = chat[:last], chat[last]["content"]
        extra = {k: v for k, v in record.items() if isinstance(v, str | int | float | bool) and k != "prompt"}
        rows.append({**extra, "prompt": prompt, "answer": answer})
    return rows


def _turns(value: Any, role: str) -> list[dict]:
    if isinstance(value, str):
        return [{"role": role, "content": value}]
    return [{"role": t["role"], "content": t["content"]} for t in value]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else value[-1]["content"]


# The kinds of training rows (a method's MethodSpec.data names one): the formats each can be made from
# (the first is its own) and how.
KINDS = {
    "sft": (CHAT_FORMATS, lambda records, fmt, cfg: for_sft(records, fmt, cfg.completion_only_loss)),
    "preference": (("preference",), for_preference),
    "kto": (("kto", "preference"), for_kto),
    "prompts": ((*CHAT_FORMATS, "preference"), for_prompts),
}


def load_dataset_for(
    cfg_data: Any, kind: str = "sft", split: str = "train", method: str | None = None
) -> tuple[Any, str]:
    """Read, check and convert `cfg_data`'s train or eval source into `kind` rows; return (Dataset, format)."""
    import datasets

    rows, fmt = rows_for(cfg_data, kind, split, method or kind)
    return datasets.Dataset.from_list(rows), fmt


def rows_for(cfg_data: Any, kind: str, split: str = "train", method: str | None = None) -> tuple[list, str]:
    """The rows of `kind` (a KINDS key) made from a split, and the format they were read as.

    `method` names who needs them in errors: a method name, else the held-out evaluation.
    """
    if kind not in KINDS:
        raise DataError(f"no dataset conversion for '{kind}'; known: {', '.join(KINDS)}")
    formats, convert = KINDS[kind]
    source = _source(cfg_data, split)
    who = f"method '{method}'" if method else f"the held-out evaluation (data.{split})"
    records, _ = read_records(source, cfg_data.columns, cfg_data.max_samples, key=f"data.{split}")
    fmt = cfg_data.format
    if fmt == "auto":
        try:
            fmt = detect_format(records, source)
        except DataError:
            fmt = formats[0]  # validating against the method's own format names the missing field
    if fmt not in formats:
        raise DataError(
            f"{source}: {who} needs one of the formats {', '.join(formats)}, but this is {fmt} "
            f"(columns found: {names(records[0])}); use a dataset of that kind or remap data.columns"
        )
    try:
        validate(records, fmt, source)
    except DataError as error:
        needs = ", ".join(_required(fmt))
        raise DataError(f"{who} needs {fmt} data ({needs}): {error}") from None
    return convert(records, fmt, cfg_data), fmt


def eval_pairs(
    source: Any, columns: dict | None = None, fmt: str = "auto", max_samples: int | None = None
) -> list[tuple[list[dict], str]]:
    """(prompt messages, reference answer) pairs for exact-match evaluation, from a source or a DataConfig."""
    if not isinstance(source, str):
        source, columns, fmt = _source(source, "eval"), source.columns, source.format
    records, fmt = _load_checked(source, columns, fmt, max_samples, key="data.eval")
    if fmt not in KINDS["prompts"][0]:
        raise DataError(
            f"{source}: a {fmt} dataset has no reference answers; use one of {', '.join(KINDS['prompts'][0])}"
        )
    return [(row["prompt"], row["answer"]) for row in for_prompts(records, fmt)]


def eval_triples(cfg_data: Any, max_samples: int | None = None) -> list[tuple[list[dict], str, str]]:
    """(prompt messages, chosen, rejected) from data.eval, for held-out preference accuracy."""
    limited = dataclasses.replace(cfg_data, max_samples=max_samples)
    rows, _ = rows_for(limited, "preference", "eval")
    return [(r["prompt"], _text(r["chosen"]), _text(r["rejected"])) for r in rows]


def _source(cfg_data: Any, split: str) -> str:
    source = cfg_data.train if split == "train" else cfg_data.eval
    if not source:
        raise DataError(f"data.{split} is not set; give a bundled:, file, folder or hub source")
    return source


def _load_checked(
    source: str, columns: dict | None, fmt: str, max_samples: int | None, key: str
) -> tuple[list, str]:
    records, _ = read_records(source, columns, max_samples, key)
    fmt = detect_format(records, source) if fmt == "auto" else fmt
    validate(records, fmt, source)
    return records, fmt


# Looking at data (the dataset panel)


def preview(source: str, n: int = 10, columns: dict | None = None) -> Any:
    """The first `n` rows as a pandas DataFrame, chats shown as 'role: content' lines; format in .attrs."""
    import pandas

    rows, fmt = preview_rows(source, n, columns)
    frame = pandas.DataFrame(rows)
    frame.attrs["format"] = fmt
    return frame


def preview_rows(source: str, n: int = 10, columns: dict | None = None) -> tuple[list[dict], str]:
    """The first `n` rows with chats flattened to 'role: content' lines, and their format (or 'unknown')."""
    records, name = read_records(source, columns, n)
    try:
        fmt = detect_format(records, name)
    except DataError:
        fmt = "unknown"  # still show the rows: check() explains what is wrong
    return [{key: _flat(value) for key, value in row.items()} for row in records], fmt


def _flat(value: Any) -> Any:
    if isinstance(value, list) and value and all(isinstance(t, dict) for t in value):
        return "\n".join(f"{t.get('role', t.get('from'))}: {t.get('content', t.get('value'))}" for t in value)
    return json.dumps(value, ensure_ascii=False) if isinstance(value, list | dict) else value


def check(source: str, columns: dict | None = None, fmt: str = "auto", limit: int = 20) -> list[str]:
    """Every problem with `source` (the first `limit`); an empty list means it is ready to train on."""
    try:
        records, name = read_records(source, columns)
        problems = _problems(records, detect_format(records, name) if fmt == "auto" else fmt, name)
    except DataError as error:
        return [str(error)]
    return problems[:limit] + ([f"... and {len(problems) - limit} more"] if len(problems) > limit else [])


def survey(source: str, columns: dict | None = None, fmt: str = "auto", accepted: tuple = ()) -> dict:
    """What the dataset panel shows: rows, raw columns, format and every problem (`accepted`: the formats)."""
    out: dict = {"rows": 0, "columns": [], "format": None, "problems": []}
    try:
        records, name = read_records(source, columns)
        theirs = {ours: their for their, ours in (columns or {}).items()}
        out["rows"], out["columns"] = len(records), [theirs.get(key, key) for key in records[0]]
        out["format"] = detect_format(records, name) if fmt == "auto" else fmt
    except DataError as error:
        out["problems"] = [str(error)]
        return out
    if accepted and out["format"] not in accepted:
        out["problems"] = [
            f"this method needs {' or '.join(accepted)} data, but this is {out['format']} data"
        ]
    else:
        out["problems"] = _problems(records, out["format"], name)
    return out


def required_fields(fmt: str) -> list[str]:
    """The fields a format must have, by their first name ('query|prompt' -> 'query')."""
    return [spec.split("|")[0] for spec in _required(fmt)]
