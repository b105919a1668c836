"""The lexical guard of the semantic cache: two prompts close in embedding space may still ask different questions.

An averaged embedding barely moves when one word changes: "cancel my order" and "do not cancel my order" score
0.95 with the built-in model, "capital of France" and "capital of Germany" 0.63 only because the sentence is
short. So a hit needs both: the vectors above the threshold, and this guard finding no difference that changes the
question. It blocks a hit when the two prompts differ in

* negation (``not``, ``never``, ``without``, ``n't`` … counted),
* numbers (digits, number words, ``15%``, ``7pm``),
* question words (``when`` vs ``where``), when both prompts have one,
* direction and order words (``before`` / ``after``, ``from`` / ``into`` / ``than``), or what follows one of them
  (``from Paris to London`` vs ``from London to Paris``),
* capitalised names (``Python`` vs ``Java``): each must be in the other prompt too (``France`` = ``france``),
* any other content word that has no counterpart in the other prompt. A counterpart is the same word stem or, with
  word vectors available, a word whose vector is at least ``word_threshold`` similar (``buy`` / ``purchase`` 0.79,
  ``fix`` / ``repair`` 0.81 pass; ``France`` / ``Germany`` 0.26, ``increase`` / ``decrease`` 0.08 do not).

Filler words (``please``, ``can you``, ``tell me``, articles, pronouns) are ignored. The guard errs on the side of a
miss: a miss costs one provider call, a wrong hit gives a wrong answer.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["Words", "blocks", "words"]

WordSimilarity = Callable[[Sequence[str], Sequence[str]], list[list[float]] | None]
"""Pairwise similarity of two lists of words (rows: the first list); ``None`` when no word vectors are at hand."""

_CONTRACTIONS = (
    (re.compile(r"\bcan't\b"), "can not"),
    (re.compile(r"\bwon't\b"), "will not"),
    (re.compile(r"\bshan't\b"), "shall not"),
    (re.compile(r"n't\b"), " not"),
    (re.compile(r"'re\b"), " are"),
    (re.compile(r"'m\b"), " am"),
    (re.compile(r"'ll\b"), " will"),
    (re.compile(r"'ve\b"), " have"),
    (re.compile(r"'d\b"), " would"),
    (re.compile(r"'s\b"), ""),  # "what's" = "what is", "library's" = "library": either way nothing to compare
)
_HYPHEN = re.compile(r"(?<=[A-Za-z])-(?=[A-Za-z])")  # "e-mail" = "email"
_TOKEN = re.compile(r"[A-Za-z]+|[0-9]+(?:[.,][0-9]+)*(?:%|[A-Za-z]+)?")
_SENTENCE_END = frozenset(".!?:;\n")

NEGATIONS = frozenset({"not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "without", "cannot"})
NUMBER_WORDS = frozenset(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand million "
    "billion trillion half quarter dozen once twice first second third fourth fifth sixth seventh eighth ninth "
    "tenth".split()
)
QUESTION_WORDS = frozenset({"who", "whom", "whose", "what", "when", "where", "why", "which", "how"})
DIRECTIONS = frozenset(
    {"from", "to", "into", "onto", "than", "before", "after", "over", "under", "above", "below", "since", "until"}
)
"""Words whose object matters: what follows each, in both prompts, must be the same."""
_INFINITIVE = "to"
"""``to`` is also the infinitive marker ("safe to eat" = "eating is safe"), so only its object is compared, not its
presence."""
FILLERS = (
    frozenset(
        "a an the this that these those i me my mine myself you your yours we us our it its he she him her his they "
        "them their is are am was were be been being do does did doing done have has had can could would will shall "
        "may might please kindly tell show give let know want like need help just some any of in on at for by with "
        "about as and or so if then there here also really very quite bit little into out up down get got go "
        "explain describe using via".split()
    )
    - NEGATIONS
    - DIRECTIONS
)
"""Words that do not change the question asked (``please``, ``can you``, ``tell me``)."""


@dataclass(frozen=True, slots=True)
class Words:
    """What the guard compares of one prompt."""

    negations: int
    numbers: Counter[str]
    questions: frozenset[str]
    directions: frozenset[str]
    objects: frozenset[tuple[str, str]]
    """(direction word, the content word after it)."""
    names: frozenset[str]
    """Capitalised words not at the start of a sentence (stemmed, lower case; also in :attr:`content`)."""
    content: frozenset[str]
    """Stems of the other words that carry meaning."""


def words(text: str) -> Words:
    """The parts of ``text`` the guard compares."""
    text = _HYPHEN.sub("", text.replace("\u2019", "'"))
    lowered = text.lower()
    for pattern, repl in _CONTRACTIONS:
        lowered = pattern.sub(repl, lowered)
    # Capitalisation is read from the original text (the contractions only shorten words, never move a capital).
    names: set[str] = set()
    for m in _TOKEN.finditer(text):
        token = m.group()
        j = m.start() - 1
        while j >= 0 and text[j] in " \t\"'(":
            j -= 1
        starts = j < 0 or text[j] in _SENTENCE_END
        lower = token.lower()
        if lower in FILLERS or lower in QUESTION_WORDS or lower in NEGATIONS or lower in DIRECTIONS:
            continue
        if (token[0].isupper() and not starts) or any(c.isupper() for c in token[1:]):
            names.add(stem(lower))  # "Paris" mid-sentence, "iPhone", "GitHub"
    tokens = _TOKEN.findall(lowered)
    negations = sum(1 for t in tokens if t in NEGATIONS)
    numbers: Counter[str] = Counter(t for t in tokens if t[0].isdigit() or t in NUMBER_WORDS)
    questions = frozenset(t for t in tokens if t in QUESTION_WORDS)
    directions = frozenset(t for t in tokens if t in DIRECTIONS)
    content = frozenset(
        stem(t)
        for t in tokens
        if t not in FILLERS and t not in NEGATIONS and t not in QUESTION_WORDS and t not in DIRECTIONS
        if not t[0].isdigit() and t not in NUMBER_WORDS
    )
    objects: set[tuple[str, str]] = set()
    for i, t in enumerate(tokens):
        if t in DIRECTIONS:
            for nxt in tokens[i + 1 :]:
                s = stem(nxt)
                if s in content or nxt[0].isdigit() or nxt in NUMBER_WORDS:
                    objects.add((t, s))
                    break
                if nxt in DIRECTIONS or nxt in QUESTION_WORDS:
                    break
    return Words(negations, numbers, questions, directions, frozenset(objects), frozenset(names), content)


def stem(word: str) -> str:
    """A light English stem: plurals and common verb endings (``eggs`` = ``egg``, ``boiling`` = ``boil``)."""
    if len(word) <= 3:
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    if word.endswith("ing") and len(word) > 5:
        return word[:-3]
    if word.endswith("ed") and len(word) > 4:
        return word[:-2]
    return word


def blocks(a: Words, b: Words, word_similarity: WordSimilarity | None, word_threshold: float) -> str | None:
    """Why ``a`` and ``b`` ask different questions (a short reason), or ``None`` when nothing tells them apart."""
    if a.negations != b.negations:
        return "negation"
    if a.numbers != b.numbers:
        return "number"
    if a.questions and b.questions and a.questions != b.questions:
        return "question word"
    if (a.directions - {_INFINITIVE}) != (b.directions - {_INFINITIVE}):
        return "direction"
    if _objects_differ(a, b):
        return "order"
    if (a.names - b.content) or (b.names - a.content):
        return "name"  # a name must be in the other prompt too (in any case), no synonym will do
    only_a = sorted(a.content - b.content)
    only_b = sorted(b.content - a.content)
    if not only_a and not only_b:
        return None
    if word_similarity is None:
        return "word"
    # Every word of one prompt that the other lacks needs a near-synonym there.
    for mine, theirs in ((only_a, sorted(b.content)), (only_b, sorted(a.content))):
        if not mine:
            continue
        if not theirs:
            return "word"
        sims = word_similarity(mine, theirs)
        if sims is None or any(max(row) < word_threshold for row in sims):
            return "word"
    return None


def _objects_differ(a: Words, b: Words) -> bool:
    """A direction word both prompts use, followed by a different shared word in each."""
    shared = a.content & b.content
    for d in a.directions & b.directions:
        mine = {w for (x, w) in a.objects if x == d and (w in shared or w[0].isdigit())}
        theirs = {w for (x, w) in b.objects if x == d and (w in shared or w[0].isdigit())}
        if mine and theirs and mine != theirs:
            return True
    return False
