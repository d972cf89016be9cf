"""The punctuation cue: a sentence's final mark, and the sentence without it.

A sentence type is often given away by its last character (`?`, `!`). Notebook 03 tests how much a
model leans on that cue (sentences with the mark stripped) and trains it to cope without
(punctuation dropout: `TrainingConfig.punctuation_dropout`). Standard library and numpy only.
"""

from __future__ import annotations

import numpy as np

TERMINAL_MARKS = ".?!"  # the marks that end a sentence
CLOSING = "\"'\u201d\u2019 \t\n"  # closing quotes and white space that may follow the final mark


def final_mark(text: str, also: str = "") -> str:
    """The text's last character once trailing `CLOSING` characters (and those in `also`) are
    dropped: ``'"Is it true?"'`` -> ``"?"``; ``""`` for an empty text."""
    return text.rstrip(CLOSING + also)[-1:]


def has_terminal_punctuation(text: str) -> bool:
    """True if ``text`` ends in ``.``, ``?`` or ``!`` (ignoring trailing closing quotes/space)."""
    return final_mark(text) in set(TERMINAL_MARKS)


def strip_terminal_punctuation(text: str) -> str:
    """``text`` without its trailing ``.``, ``?``, ``!``, closing quotes and white space:
    ``"Where is the station?"`` -> ``"Where is the station"``."""
    return text.rstrip(TERMINAL_MARKS + CLOSING)


def punctuation_dropout(rng: np.random.Generator, n: int, rate: float) -> np.ndarray:
    """Which of a batch's `n` sentences lose their final punctuation this step: a bool mask (n,),
    each True with probability `rate` (drawn from `rng`; `TrainingConfig.punctuation_dropout`)."""
    return rng.random(n) < rate
