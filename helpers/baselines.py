"""Baselines the trained model has to beat: the VADER lexicon and a rule-based sentence-type tagger."""

from __future__ import annotations

import re
from collections.abc import Iterable

from helpers.encoder import check_texts

VADER_POSITIVE = 0.05  # the thresholds VADER's authors recommend for the compound score
VADER_NEGATIVE = -0.05

QUESTION_OPENERS = {
    "who", "whom", "whose", "what", "which", "when", "where", "why", "how",
    "is", "are", "am", "was", "were", "do", "does", "did", "have", "has", "had",
    "can", "could", "will", "would", "shall", "should", "may", "might", "must",
    "isn't", "aren't", "wasn't", "weren't", "don't", "doesn't", "didn't", "haven't", "hasn't",
    "can't", "couldn't", "won't", "wouldn't", "shouldn't", "where's", "what's", "who's", "how's",
}  # fmt: skip
EXCLAMATION_OPENERS = {"what", "how", "wow", "oh", "ah", "hooray", "yay", "ouch", "oops", "alas"}
COMMAND_OPENERS = {
    "please", "let", "let's", "don't", "do", "be", "go", "come", "take", "give", "make", "put", "get", "keep",
    "stop", "try", "look", "listen", "tell", "ask", "call", "send", "bring", "turn", "open", "close", "shut",
    "wait", "sit", "stand", "add", "use", "remember", "forget", "check", "read", "write", "find", "help",
    "leave", "move", "pick", "set", "show", "start", "stay", "think", "watch", "see", "follow", "hold",
    "mix", "cut", "place", "pour", "stir", "heat", "bake", "remove", "press", "click", "enter", "select",
    "consider", "note", "imagine", "suppose", "buy", "pay", "run", "walk", "drive", "eat", "drink", "sleep",
    "never", "always", "just", "kindly",
}  # fmt: skip


def vader_sentiment(texts: str | Iterable[str]) -> list[str]:
    """Label sentences negative / neutral / positive with the VADER lexicon's compound score."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    labels = []
    for text in check_texts(texts):
        compound = analyzer.polarity_scores(text)["compound"]
        labels.append(
            "positive"
            if compound >= VADER_POSITIVE
            else "negative"
            if compound <= VADER_NEGATIVE
            else "neutral"
        )
    return labels


def _first_word(text: str) -> str:
    words = re.findall(r"[a-z']+", text.lower())
    return words[0] if words else ""


def rule_based_sentence_type(text: str) -> str:
    """Guess the sentence type from the final punctuation and the first word, the way a regex would.

    `?` makes a question; otherwise a first word from a list of common imperative verbs (or
    "please") makes a command; `!` makes an exclamation; without final punctuation, a question word
    or auxiliary at the start makes a question; everything else is a statement.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__} ({text!r})")
    stripped = text.strip().rstrip("\"')\u201d\u2019 ")
    last = stripped[-1:] if stripped else ""
    first = _first_word(stripped)
    if last == "?":
        return "question"
    if first in COMMAND_OPENERS:
        return "command"
    if last == "!":
        return "exclamation"
    if last != "." and first in QUESTION_OPENERS:
        return "question"
    if last != "." and first in EXCLAMATION_OPENERS:
        return "exclamation"
    return "statement"


def rule_based_sentence_types(texts: str | Iterable[str]) -> list[str]:
    """`rule_based_sentence_type` for many sentences."""
    return [rule_based_sentence_type(text) for text in check_texts(texts)]
