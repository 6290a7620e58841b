"""GRPO reward functions: the built-ins, the opt-in for the user's own code, and every way one can fail."""

from __future__ import annotations

import pytest

from workbench import rewards
from workbench.config import ConfigError


def test_exact_match_reads_the_answer_tag_when_there_is_one():
    got = rewards.exact_match(
        ["olleh", " <answer>dlrow</answer> ", "hello"], answer=["olleh", "dlrow", "olleh"]
    )
    assert got == [1.0, 1.0, 0.0]


def test_similarity_gives_partial_credit_and_full_credit_only_when_equal():
    full, near, far = rewards.similarity(["abcd", "abdc", "zzzz"], answer=["abcd"] * 3)
    assert full == 1.0 and 0.5 < near < 1.0 and far == 0.0


def test_numeric_match_compares_the_last_number_as_a_number():
    got = rewards.numeric_match(["so 3 + 4 = 7.0", "about 8", "none", "7", "1,200"],
                                answer=["7", "7", "7", "x", "so 1200 #### 1,200"])  # fmt: skip
    assert got == [1.0, 0.0, 0.0, 0.0, 1.0]


def test_answer_tag_and_length_penalty():
    assert rewards.answer_tag(["<answer>x</answer>", "x"]) == [1.0, 0.0]
    assert rewards.length_penalty(["abc", "abcdef", "abc" * 10], answer=["abc"] * 3) == [0.0, -1.0, -1.0]
    assert rewards.length_penalty(["abcd"], answer=["abc"]) == [pytest.approx(-1 / 3)]


def test_a_reference_reward_without_an_answer_column_says_so():
    with pytest.raises(rewards.RewardError, match="'answer' column"):
        rewards.exact_match(["a"])


def test_weights_combine_into_one_total():
    loaded = rewards.load({"exact_match": 1.0, "length_penalty": 0.5})
    assert rewards.total(loaded, ["cba", "cbaaaa"], {"answer": ["cba", "cba"]}) == [1.0, -0.5]


def test_no_reward_and_unknown_rewards_are_config_errors_naming_the_key():
    with pytest.raises(ConfigError, match="method.rewards is empty"):
        rewards.load({})
    with pytest.raises(ConfigError, match="unknown reward 'exact'.*exact_match"):
        rewards.load({"exact": 1.0})


def write(tmp_path, body: str):
    path = tmp_path / "my_rewards.py"
    path.write_text(body, encoding="utf-8")
    return path


def test_user_code_runs_only_with_the_opt_in(tmp_path):
    path = write(tmp_path, "def short(completions, **kw):\n    return [-len(c) for c in completions]\n")
    with pytest.raises(ConfigError, match="allow_reward_code: true"):
        rewards.load({f"{path}:short": 1.0})
    loaded = rewards.load({f"{path}:short": 1.0}, allow_code=True)
    assert rewards.total(loaded, ["ab", "abcd"], {}) == [-2.0, -4.0]


@pytest.mark.parametrize(
    ("body", "name", "message"),
    [
        (None, "missing.py:f", "reward file not found"),
        ("def g(completions, **kw):\n    return []\n", "f", "has no function 'f'; functions found: g"),
        ("def f(text):\n    return []\n", "f", "must look like"),
        ("raise ImportError('no numpy')\n", "f", "importing .* failed: ImportError: no numpy"),
    ],
)
def test_user_code_problems_name_the_file_and_the_fix(tmp_path, body, name, message):
    spec = name if body is None else f"{write(tmp_path, body)}:{name}"
    with pytest.raises(ConfigError, match=message):
        rewards.load({spec: 1.0}, allow_code=True)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("def f(completions, **kw):\n    raise KeyError('score')\n", "my_rewards.py:f' raised KeyError"),
        ("def f(completions, **kw):\n    return [1.0]\n", r"one number per completion \(2\), got 1 values"),
        ("def f(completions, **kw):\n    return 1.0\n", "got float"),
        ("def f(completions, **kw):\n    return ['good', 'bad']\n", "not a number"),
    ],
)
def test_a_reward_that_raises_or_returns_the_wrong_thing_fails_the_dry_run(tmp_path, body, message):
    loaded = rewards.load({f"{write(tmp_path, body)}:f": 1.0}, allow_code=True)
    rows = [{"prompt": [], "answer": "ab"}, {"prompt": [], "answer": "cd"}]
    with pytest.raises(rewards.RewardError, match=message):
        rewards.dry_run(loaded, rows)


def test_trl_facing_wrapper_turns_chat_completions_into_text():
    functions, weights = rewards.combine(rewards.load({"exact_match": 2.0}))
    completions = [[{"role": "assistant", "content": "cba"}], [{"role": "assistant", "content": "abc"}]]
    assert functions[0](prompts=[[], []], completions=completions, answer=["cba", "cba"]) == [1.0, 0.0]
    assert weights == [2.0] and functions[0].__name__ == "exact_match"
