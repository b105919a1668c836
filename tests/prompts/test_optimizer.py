"""PromptOptimizer: tidying, redundancy, head-and-tail cuts that never split code or JSON, real token counts."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_manager import OptimizedPrompt, PromptOptimizer
from llm_manager.prompts.blocks import compact_json, split_blocks
from llm_manager.prompts.counter import ESTIMATE, token_counter

CODE = "```python\ndef add(a,   b):\n    return a + b    \n\n\n\nprint(add(1, 2))\n```\n"
DATA = json.dumps({"user": {"name": "Ada  Lovelace", "langs": ["en", "fr"]}, "n": 3}, indent=2) + "\n"


def _doc(paragraphs: int) -> str:
    return "".join(f"Paragraph {i} says something specific about item number {i}.\n" for i in range(paragraphs))


@pytest.fixture(scope="module")
def opt() -> PromptOptimizer:
    return PromptOptimizer()


def test_counts_come_from_the_offline_o200k_tokenizer(opt: PromptOptimizer) -> None:
    assert opt.counter.name == "o200k_base" and opt.counter.exact
    # The ids tiktoken gives for these strings (o200k_base): a real tokenizer, not 4 characters a token.
    assert opt.count("hello world") == 2
    assert opt.count("Smoke tests keep releases honest.") == 6
    assert token_counter("cl100k_base").count("hello world") == 2
    assert token_counter("estimate").name == ESTIMATE and token_counter("estimate").count("hello world") == 3


def test_a_long_run_without_spaces_is_counted_quickly(opt: PromptOptimizer) -> None:
    import time

    t0 = time.perf_counter()
    n = opt.count("A" * 20_000)
    assert time.perf_counter() - t0 < 5 and 2_000 <= n <= 3_000  # 23 s unsliced in pure Python


def test_whitespace_collapses_outside_code_and_json_shrinks(opt: PromptOptimizer) -> None:
    text = "Please   review\tthis code:   \n\n\n\n" + CODE + "\nand this data:\n" + DATA
    r = opt.optimize(text)
    assert "Please review this code:\n\n```python" in r.text
    assert CODE.rstrip("\n") in r.text  # the code block, byte for byte (its spaces and blank lines too)
    assert '{"user":{"name":"Ada  Lovelace","langs":["en","fr"]},"n":3}' in r.text  # strings untouched
    assert r.tokens_after < r.tokens_before and r.fits and r.max_tokens is None
    assert str(r) == r.text and isinstance(r, OptimizedPrompt)


def test_repeated_lines_and_sentences_are_dropped_but_not_code(opt: PromptOptimizer) -> None:
    text = (
        "Answer in French. Keep it short and polite please.\n"
        "The report covers the third quarter results.\n"
        "The report covers the third quarter results.\n"
        "Note this. Keep it short and polite please. Also cite sources.\n"
        "```\nx = 1\nx = 1\n```\n"
        "Keep it short and polite please.\n"
        "Ok.\nOk.\n"
    )
    r = opt.optimize(text)
    assert r.text.count("The report covers the third quarter results.") == 1
    assert r.text.count("short and polite") == 1  # the sentence, wherever it recurs
    assert "Note this. Also cite sources.\n" in r.text
    assert "x = 1\nx = 1" in r.text  # code is never deduplicated
    assert r.text.count("Ok.") == 2  # too short to be sure it is redundant
    assert r.duplicates_removed == 3
    kept = opt.optimize(text, remove_redundancy=False)
    assert kept.duplicates_removed == 0 and kept.text.count("third quarter") == 2


def test_head_and_tail_kept_with_a_marker_when_over_budget(opt: PromptOptimizer) -> None:
    text = "Title: quarterly review\n" + _doc(400) + "Question: what changed in item 399?\n"
    r = opt.optimize(text, max_tokens=300)
    assert r.fits and r.tokens_after <= 300 and r.tokens_before > 4000
    assert r.text.startswith("Title: quarterly review\nParagraph 0")
    assert r.text.endswith("Question: what changed in item 399?")
    marker = next(line for line in r.text.splitlines() if line.startswith("[…"))
    assert "lines (~" in marker and "tokens) cut …]" in marker and r.tokens_cut > 3000
    assert opt.count(r.text) == r.tokens_after


def test_never_cuts_inside_code_or_json(opt: PromptOptimizer) -> None:
    big_code = "```js\n" + "".join(f"const v{i} = {i};\n" for i in range(120)) + "```\n"
    big_json = json.dumps([{"id": i, "tag": f"t{i}"} for i in range(80)]) + "\n"
    text = _doc(30) + big_code + _doc(30) + big_json + _doc(30)
    for budget in (150, 400, 900, 1500):
        r = opt.optimize(text, max_tokens=budget)
        assert r.fits and r.tokens_after <= budget
        assert r.text.count("```") in (0, 2)  # the fenced block is whole or gone
        if "const v0" in r.text:
            assert "const v119 = 119;\n```" in r.text
        for block in split_blocks(r.text):
            if block.kind == "json":
                json.loads(block.text)
        assert ('"id":0' in r.text) == ('"id":79' in r.text)


def test_a_budget_that_code_alone_exceeds_does_not_fit(opt: PromptOptimizer) -> None:
    code = "```\n" + "".join(f"line_{i} = compute({i})\n" for i in range(200)) + "```"
    r = opt.optimize(code, max_tokens=50)
    assert not r.fits and r.tokens_after > 50
    with pytest.raises(ValueError, match="max_tokens"):
        opt.optimize("x", max_tokens=0)


def test_a_single_long_paragraph_is_cut_between_sentences(opt: PromptOptimizer) -> None:
    text = " ".join(f"Sentence {i} is about topic {i}." for i in range(300))
    r = opt.optimize(text, max_tokens=120)
    assert r.fits and r.text.startswith("Sentence 0 is about topic 0.") and r.text.endswith("topic 299.")
    assert " [… ~" in r.text and "tokens cut …] " in r.text


def test_blocks_split_and_compact_json() -> None:
    text = 'intro [1] not json\n{\n  "a": [1, 2]\n}\n[x] a checkbox\n    indented code\n    more\n\nafter\n'
    kinds = [(b.kind, b.text) for b in split_blocks(text)]
    assert kinds == [
        ("text", "intro [1] not json\n"),
        ("json", '{\n  "a": [1, 2]\n}\n'),
        ("text", "[x] a checkbox\n"),
        ("code", "    indented code\n    more\n"),
        ("text", "\nafter\n"),
    ]
    assert compact_json('{ "a b": "c\\" d" , "e" : [ 1 ] }\n') == '{"a b":"c\\" d","e":[1]}\n'


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(alphabet='abc .!?\n\t{}[]"`~', max_size=80),
            st.sampled_from([CODE, DATA, "```\nunclosed\n", '{"k": "v"} trailing\n']),
        ),
        max_size=8,
    ),
    st.integers(min_value=20, max_value=400),
)
def test_any_text_comes_back_within_budget_or_says_it_does_not_fit(parts: list[str], budget: int) -> None:
    text = "".join(parts)
    assert "".join(b.text for b in split_blocks(text)) == text
    r = PromptOptimizer().optimize(text, max_tokens=budget)
    assert r.tokens_after == PromptOptimizer().count(r.text)
    assert r.fits == (r.tokens_after <= budget)
