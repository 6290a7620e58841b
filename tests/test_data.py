"""workbench.data: reading sources, detecting formats, strict row checks, conversions for TRL."""

import json
import subprocess
import sys
import time

import pytest

from workbench import data, hub, reading
from workbench.config import DataConfig
from workbench.data import DataError

ROLES = "use one of system, user, assistant"
CHAT = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "2+2?"},
    {"role": "assistant", "content": "4"},
]
ROWS = {
    "messages": {"messages": CHAT},
    "sharegpt": {"conversations": [{"from": "human", "value": "2+2?"}, {"from": "gpt", "value": "4"}]},
    "alpaca": {"instruction": "Add.", "input": "2+2", "output": "4"},
    "query_response": {"query": "2+2?", "response": "4"},
    "preference": {"prompt": "2+2?", "chosen": "4", "rejected": "5"},
    "kto": {"prompt": "2+2?", "completion": "4", "label": True},
    "prompt_answer": {"prompt": "2+2?", "answer": "4"},
}


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return str(path)


def raises(match, func, *args, **kwargs):
    """Assert `func` raises a DataError containing every string in `match`; return its message."""
    with pytest.raises(DataError) as info:
        func(*args, **kwargs)
    for part in match:
        assert part in str(info.value), f"{part!r} not in {info.value}"
    return str(info.value)


def test_import_does_not_load_heavy_libraries():
    heavy = "('datasets', 'pandas', 'pyarrow', 'torch')"
    code = f"import sys, workbench.data; print([m for m in {heavy} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("fmt", ROWS)
def test_detects_each_format(tmp_path, fmt):
    records, name = data.read_records(write_jsonl(tmp_path / "d.jsonl", [ROWS[fmt]]))
    assert data.detect_format(records, name) == fmt
    data.validate(records, fmt, name)


def test_detects_role_content_conversations_as_messages():
    assert data.detect_format([{"conversations": CHAT}], "x") == "messages"
    assert data.detect_format([{"prompt": "q", "response": "a"}], "x") == "query_response"


def test_unknown_columns_name_the_columns_and_the_formats():
    message = raises(["x.jsonl", "question, reply", "alpaca (instruction, output)", "data.columns"],
                     data.detect_format, [{"question": "q", "reply": "a"}], "x.jsonl")  # fmt: skip
    assert "prompt_answer (prompt, answer)" in message


def test_alpaca_to_messages_with_system_history_and_input():
    row = {"system": "S", "history": [["q0", "a0"]], "instruction": "Add.", "input": "2+2", "output": "4"}
    assert data.to_messages(row, "alpaca") == [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "q0"},
        {"role": "assistant", "content": "a0"},
        {"role": "user", "content": "Add.\n\n2+2"},
        {"role": "assistant", "content": "4"},
    ]
    no_input = {"instruction": "Say hi.", "input": "", "output": "hi"}
    assert data.to_messages(no_input, "alpaca")[0] == {"role": "user", "content": "Say hi."}


@pytest.mark.parametrize("fmt", ["sharegpt", "query_response", "prompt_answer"])
def test_simple_formats_to_messages(fmt):
    assert data.to_messages(ROWS[fmt], fmt) == CHAT[1:]


def test_messages_keep_only_role_and_content():
    row = {
        "messages": [{"role": "user", "content": "q", "name": None}, {"role": "assistant", "content": "a"}]
    }
    assert data.to_messages(row, "messages") == [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "a"},
    ]


def test_for_sft_splits_at_the_last_assistant_turn():
    chat = [*CHAT, {"role": "user", "content": "3+3?"}, {"role": "assistant", "content": "6"}]
    assert data.for_sft([{"messages": chat}], "messages") == [{"prompt": chat[:4], "completion": chat[4:]}]
    assert data.for_sft([{"messages": chat}], "messages", completion_only=False) == [{"messages": chat}]


def test_preference_cannot_become_a_conversation():
    raises(["preference", "messages"], data.to_messages, ROWS["preference"], "preference")


# Row checks: each names the file, the line, the field and the fix.


@pytest.mark.parametrize(
    ("row", "fmt", "expected"),
    [
        ({"instruction": "q", "output": 4}, "alpaca", ["field 'output'", "must be text", "int"]),
        ({"instruction": "q"}, "alpaca", ["missing field 'output'", "columns found: instruction"]),
        ({"instruction": "  ", "output": "a"}, "alpaca", ["field 'instruction' is empty"]),
        ({"prompt": "q", "completion": "a", "label": "yes"}, "kto", ["field 'label'", "true or false"]),
        ({"messages": [{"role": "bot", "content": "a"}]}, "messages", ["[0].role", "'bot'", ROLES]),
        ({"messages": [{"role": "user", "content": ""}]}, "messages", ["messages[0].content", "non-empty"]),
        ({"messages": CHAT[:2]}, "messages", ["field 'messages'", "'assistant'"]),
        ({"messages": "hi"}, "messages", ["field 'messages'", "list"]),
        ({"conversations": [{"from": "user", "value": "q"}]}, "sharegpt", ["[0].from", "human, gpt"]),
        ({"prompt": "q", "chosen": [{"role": "assistant"}], "rejected": "b"}, "preference", ["chosen[0]"]),
        ({"instruction": "q", "output": "a", "history": ["x"]}, "alpaca", ["field 'history'", "pairs"]),
    ],
)  # fmt: skip
def test_bad_rows_name_file_line_and_field(tmp_path, row, fmt, expected):
    records, name = data.read_records(write_jsonl(tmp_path / "d.jsonl", [ROWS[fmt], row]))
    raises([f"{tmp_path / 'd.jsonl'} line 2:", *expected], data.validate, records, fmt, name)


def test_row_numbers_follow_the_file_lines_past_blank_lines(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(
        json.dumps(ROWS["alpaca"]) + "\n\n" + json.dumps({"instruction": "q", "output": 1}) + "\n"
    )
    records, name = data.read_records(str(path))
    raises(["line 3:", "'output'"], data.validate, records, "alpaca", name)


def test_null_optional_fields_are_absent():
    data.validate([{"instruction": "q", "input": None, "output": "a", "system": None}], "alpaca", "x")


# Reading: JSON Lines problems


def test_malformed_json_line_names_the_line(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(ROWS["alpaca"]) + '\n{"instruction": "q", output: 1}\n')
    raises([f"{path} line 2", "not valid JSON"], data.read_records, str(path))


def test_json_array_given_as_jsonl(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps([ROWS["alpaca"]], indent=2))
    raises([str(path), "JSON array, not JSON Lines", "rename to .json"], data.read_records, str(path))


def test_line_that_is_not_an_object(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(ROWS["alpaca"]) + '\n"just text"\n')
    raises([f"{path} line 2", "str, not an object"], data.read_records, str(path))


@pytest.mark.parametrize("text", ["", "\n  \n"])
def test_empty_file(tmp_path, text):
    path = tmp_path / "d.jsonl"
    path.write_text(text)
    raises([str(path), "is empty"], data.read_records, str(path))


def test_json_lines_given_as_json(tmp_path):
    path = tmp_path / "d.json"
    write_jsonl(path, [ROWS["alpaca"]] * 2)
    raises([str(path), "rename it to .jsonl"], data.read_records, str(path))


@pytest.mark.parametrize(
    "name, text, line",
    [
        ("d.jsonl", '{"instruction": "q", "output": "a"}\n{"instruction": "café", "output": "a"}\n', 2),
        ("d.csv", "instruction,output\nq,a\nq,a\ncafé,a\n", 4),
        ("d.json", '[\n  {"instruction": "q",\n   "output": "café"}\n]', 3),
    ],
)
def test_latin1_file_names_the_line_and_the_fix(tmp_path, name, text, line):
    path = tmp_path / name
    path.write_bytes(text.encode("latin-1"))
    message = raises(
        [f"{path} line {line}: not UTF-8", "caf", "Latin-1", "save the file as UTF-8"],
        data.read_records,
        str(path),
    )
    assert "position" not in message and "codec" not in message  # no byte offsets, no decoder jargon


def test_utf8_file_with_a_bom_and_a_bad_byte_counts_lines_from_the_start(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + '{"instruction": "q", "output": "café"}\n'.encode("latin-1"))
    raises([f"{path} line 1: not UTF-8"], data.read_records, str(path))


# Reading: sources


def test_columns_rename_the_users_columns(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"question": "q", "answer": "a"}])
    records, _ = data.read_records(path, columns={"question": "instruction", "answer": "output"})
    assert records == [{"instruction": "q", "output": "a"}]


def test_missing_mapped_column_names_the_columns_found(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"question": "q", "reply": "a"}])
    raises([f"{path} line 1", "'answer'", "columns found: question, reply"],
           data.read_records, path, columns={"question": "instruction", "answer": "output"})  # fmt: skip


def test_max_samples(tmp_path):
    records, _ = data.read_records(write_jsonl(tmp_path / "d.jsonl", [ROWS["alpaca"]] * 5), max_samples=2)
    assert len(records) == 2


def test_csv_round_trip_keeps_text_and_reads_boolean_columns(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('prompt,completion,label\n"1+1?","2",True\n"a, b?","007",false\n')
    records, _ = data.read_records(str(path))
    assert records == [
        {"prompt": "1+1?", "completion": "2", "label": True},
        {"prompt": "a, b?", "completion": "007", "label": False},
    ]
    data.validate(records, data.detect_format(records, str(path)), str(path))


def test_csv_errors_name_the_row(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("instruction,output\nq,a\nq2,\n")
    records, name = data.read_records(str(path))
    raises([f"{path} row 2:", "'output' is empty"], data.validate, records, "alpaca", name)


def test_json_parquet_and_save_to_disk_round_trips(tmp_path):
    import datasets

    rows = [ROWS["messages"], {"messages": CHAT[1:]}]
    (tmp_path / "d.json").write_text(json.dumps(rows))
    datasets.Dataset.from_list(rows).to_parquet(str(tmp_path / "d.parquet"))
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "saved"))
    datasets.DatasetDict(train=datasets.Dataset.from_list(rows)).save_to_disk(str(tmp_path / "dict"))
    for source in ["d.json", "d.parquet", "saved", "dict"]:
        assert data.read_records(str(tmp_path / source))[0] == rows, source


def test_unreadable_parquet(tmp_path):
    path = tmp_path / "d.parquet"
    path.write_text("not parquet")
    raises([str(path), "not a readable Parquet file"], data.read_records, str(path))


def test_dataset_dict_without_train_names_its_splits(tmp_path):
    import datasets

    datasets.DatasetDict(test=datasets.Dataset.from_list([ROWS["alpaca"]])).save_to_disk(str(tmp_path / "dd"))
    raises(["test", "no 'train'"], data.read_records, str(tmp_path / "dd"))


def test_bundled_source_and_unknown_bundled_name(tmp_path, monkeypatch):
    monkeypatch.setattr(reading, "BUNDLED_DIR", tmp_path)
    (tmp_path / "arith").mkdir()
    write_jsonl(tmp_path / "arith" / "sft_train.jsonl", [ROWS["prompt_answer"]])
    assert data.read_records("bundled:arith/sft_train") == (
        [ROWS["prompt_answer"]],
        "bundled:arith/sft_train",
    )
    raises(["bundled:nope/x", "available: bundled:arith/sft_train"], data.read_records, "bundled:nope/x")


@pytest.mark.parametrize("source", ["missing.jsonl", "data/missing.csv", "no such thing"])
def test_missing_file(tmp_path, monkeypatch, source):
    monkeypatch.chdir(tmp_path)
    raises([f"file not found: {source}", "data.train"], data.read_records, source)


@pytest.mark.parametrize("kind", ["exact_match", "preference", "ranking", "rewards"])
def test_missing_eval_file_names_data_eval(tmp_path, monkeypatch, kind):
    from workbench import evaluate

    monkeypatch.chdir(tmp_path)
    train = write_jsonl(tmp_path / "t.jsonl", [ROWS["preference"]])
    message = raises(
        ["file not found: missing_eval.jsonl", "check data.eval"],
        evaluate.load_eval,
        kind,
        DataConfig(train=train, eval="missing_eval.jsonl"),
        None,
    )
    assert "data.train" not in message


def test_hub_id_offline_fails_fast(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    raises(["cannot reach the Hugging Face hub", "owner/name", "local file"], data.read_records, "owner/name")
    assert time.monotonic() - start < 1


def test_hub_id_without_network_fails_fast(monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(hub.socket, "create_connection", no_network)
    raises(["cannot reach the Hugging Face hub", "owner/name"], data.read_records, "owner/name")


# What the trainer, the evaluator and the panels call


def test_load_dataset_for_sft_gives_prompt_completion_rows(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [ROWS["alpaca"]])
    dataset, fmt = data.load_dataset_for(DataConfig(train=path))
    assert fmt == "alpaca"
    assert dataset[0] == {
        "prompt": [{"role": "user", "content": "Add.\n\n2+2"}],
        "completion": [{"role": "assistant", "content": "4"}],
    }
    dataset, _ = data.load_dataset_for(DataConfig(train=path, completion_only_loss=False))
    assert dataset.column_names == ["messages"]


def test_load_dataset_for_reads_the_eval_split_with_the_mapping(tmp_path):
    path = write_jsonl(tmp_path / "e.jsonl", [{"q": "2+2?", "a": "4"}] * 3)
    cfg = DataConfig(train="unused.jsonl", eval=path, columns={"q": "prompt", "a": "answer"}, max_samples=2)
    dataset, fmt = data.load_dataset_for(cfg, split="eval")
    assert (fmt, len(dataset)) == ("prompt_answer", 2)


def test_load_dataset_for_rejects_a_format_the_method_cannot_use(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [ROWS["preference"]])
    raises(["method 'sft'", "this is preference", "columns found: prompt, chosen, rejected"],
           data.load_dataset_for, DataConfig(train=path))  # fmt: skip


def test_load_dataset_for_validates_with_the_configured_format(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [ROWS["query_response"]])
    raises(
        [f"{path} line 1", "missing field 'instruction'"],
        data.load_dataset_for,
        DataConfig(train=path, format="alpaca"),
    )


def test_sft_rows_are_what_trl_expects(tmp_path):
    data_utils = pytest.importorskip("trl.data_utils")
    rows = data.for_sft([ROWS["alpaca"]], "alpaca")
    assert data_utils.is_conversational(rows[0])


def test_eval_pairs_from_a_source_and_a_config(tmp_path):
    path = write_jsonl(tmp_path / "e.jsonl", [ROWS["prompt_answer"], ROWS["messages"]])
    assert data.eval_pairs(path, max_samples=1) == [([CHAT[1]], "4")]
    cfg = DataConfig(eval=write_jsonl(tmp_path / "m.jsonl", [ROWS["messages"]]))
    assert data.eval_pairs(cfg) == [(CHAT[:2], "4")]
    raises(["data.eval is not set"], data.eval_pairs, DataConfig(eval=None))


def test_preview_flattens_chats_and_survives_bad_rows(tmp_path):
    bad = {"messages": [{"role": "bot", "content": 5}]}
    frame = data.preview(write_jsonl(tmp_path / "d.jsonl", [ROWS["messages"], bad, ROWS["messages"]]), n=2)
    assert frame.attrs["format"] == "messages"
    assert list(frame["messages"]) == ["system: Be brief.\nuser: 2+2?\nassistant: 4", "bot: 5"]


def test_preview_of_unknown_columns_still_shows_them(tmp_path):
    frame = data.preview(write_jsonl(tmp_path / "d.jsonl", [{"a": 1, "b": [1, 2]}]))
    assert frame.attrs["format"] == "unknown"
    assert frame.to_dict("records") == [{"a": 1, "b": "[1, 2]"}]


def test_check_lists_every_problem_or_none(tmp_path):
    good = write_jsonl(tmp_path / "good.jsonl", [ROWS["alpaca"]])
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"instruction": "q", "output": 1}] * 3)
    assert data.check(good) == []
    problems = data.check(bad, fmt="alpaca", limit=2)
    assert problems[0].startswith(f"{bad} line 1:") and problems[1].startswith(f"{bad} line 2:")
    assert problems[2] == "... and 1 more"
    assert data.check(str(tmp_path / "none.jsonl"))[0].startswith("file not found")


# Conversions for the alignment methods


USER, GOOD, BAD = (
    {"role": "user", "content": "2+2?"},
    {"role": "assistant", "content": "4"},
    {"role": "assistant", "content": "5"},
)


def test_preference_pairs_become_conversational_prompt_chosen_rejected():
    rows = data.for_preference([ROWS["preference"]], "preference")
    assert rows == [{"prompt": [USER], "chosen": [GOOD], "rejected": [BAD]}]


def test_preference_pairs_are_unpaired_for_kto_and_kto_rows_pass_through():
    rows = data.for_kto([ROWS["preference"]], "preference")
    assert rows == [
        {"prompt": [USER], "completion": [GOOD], "label": True},
        {"prompt": [USER], "completion": [BAD], "label": False},
    ]
    assert data.for_kto([ROWS["kto"]], "kto") == [{"prompt": [USER], "completion": [GOOD], "label": True}]


@pytest.mark.parametrize("fmt", ["messages", "alpaca", "prompt_answer", "preference"])
def test_chat_and_preference_rows_become_prompt_only_rows_with_the_reference_answer(fmt):
    (row,) = data.for_prompts([ROWS[fmt]], fmt)
    assert row["answer"] == "4"
    assert row["prompt"][-1]["role"] == "user" and "2+2" in row["prompt"][-1]["content"]


def test_a_preference_dataset_missing_rejected_names_the_method_and_the_field(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "2+2?", "chosen": "4"}])
    raises(["method 'dpo' needs preference data (prompt, chosen, rejected)", "line 1", "missing field 'rejected'",
            "columns found: prompt, chosen"], data.rows_for, DataConfig(train=path), "preference", "train", "dpo")  # fmt: skip


def test_a_kto_label_that_is_not_boolean_names_the_field_and_the_value(tmp_path):
    path = write_jsonl(tmp_path / "k.jsonl", [{"prompt": "2+2?", "completion": "4", "label": "yes"}])
    raises(["method 'kto' needs kto data", "field 'label' must be true or false, got str 'yes'"],
           data.rows_for, DataConfig(train=path), "kto", "train", "kto")  # fmt: skip


def test_a_chat_dataset_for_a_preference_method_names_the_formats_it_needs(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", [ROWS["messages"]])
    raises(["method 'orpo' needs one of the formats preference, but this is messages", "columns found: messages"],
           data.rows_for, DataConfig(train=path), "preference", "train", "orpo")  # fmt: skip


def test_eval_triples_come_from_a_preference_eval_split(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [ROWS["preference"]] * 3)
    assert data.eval_triples(DataConfig(eval=path), max_samples=2) == [([USER], "4", "5")] * 2
