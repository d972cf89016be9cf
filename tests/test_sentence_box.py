"""The sentence box of notebooks 02 and 04 (helpers.analysis.sentence_box), without a browser.

tests/test_browser.py drives the same box in JupyterLab in a real browser.
"""

import asyncio
import json
import re
import threading
import time

import numpy as np
import pytest

from helpers.analysis.sentence_box import (
    EXAMPLE,
    PLAIN_TEXT,
    Debouncer,
    SentenceBox,
    describe,
    render_html,
    sentence_box,
    sentence_probabilities,
    sentence_tokens,
)


@pytest.fixture(scope="module")
def model(encoder):
    import copy

    from helpers.data import TASK_LABELS
    from helpers.model import MultiTaskModel

    return MultiTaskModel(
        TASK_LABELS, copy.deepcopy(encoder[0].auto_model), encoder[0].tokenizer, device="cpu"
    )


def shown_probabilities(box: SentenceBox) -> dict:
    found = re.search(r'data-probabilities="([^"]*)"', box.result.value)
    return json.loads(found.group(1).replace("&quot;", '"'))


def test_tokens_show_unknown_and_special_tokens(model):
    tokens = sentence_tokens(model, "Great party 🎉")
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
    assert "[UNK]" in tokens and "great" in tokens
    assert sentence_tokens(model, "") == ["[CLS]", "[SEP]"]
    assert len(sentence_tokens(model, "word " * 500)) == model.config["max_length"]  # truncated


def test_probabilities_are_the_models(model):
    probabilities = sentence_probabilities(model, "Where is the station?")
    expected = model.predict_proba(["Where is the station?"])
    assert list(probabilities) == list(model.task_labels)
    for task, labels in model.task_labels.items():
        assert list(probabilities[task]) == labels
        np.testing.assert_allclose(list(probabilities[task].values()), expected[task][0], rtol=0, atol=1e-7)
        assert sum(probabilities[task].values()) == pytest.approx(1, abs=1e-5)


def test_plain_text_and_html_show_the_same_numbers():
    probabilities = {"sentiment": {"negative": 0.1234, "neutral": 0.2, "positive": 0.6766}}
    text = describe('So <good> & "fine"', ["[CLS]", "so", "[UNK]", "[SEP]"], probabilities)
    assert text.splitlines() == [
        "sentence: 'So <good> & \"fine\"'",
        "tokens (4): [CLS] so [UNK] [SEP]",
        "sentiment:  negative 0.123, neutral 0.200, positive 0.677",
    ]
    page = render_html('So <good> & "fine"', ["[CLS]", "so", "[UNK]", "[SEP]"], probabilities)
    assert "<good>" not in page and "&lt;good&gt;" in page  # escaped
    assert 'data-sentence="So &lt;good&gt; &amp; &quot;fine&quot;"' in page
    assert 'data-label="positive" data-p="0.677"' in page and "width:67.7%" in page
    assert page.count("background:#d55e00") == 1  # the [UNK] chip stands out


def test_box_updates_when_the_text_changes(model):
    box = SentenceBox(model, debounce=0)
    assert box.sentence == EXAMPLE and "[UNK]" in box.tokens  # the example's emoji
    first = shown_probabilities(box)
    box.text.value = "Close the door now."
    assert box.sentence == "Close the door now." and box.tokens[1:3] == ["close", "the"]
    shown = shown_probabilities(box)
    assert shown != first
    expected = model.predict_proba(["Close the door now."])
    for task, labels in model.task_labels.items():
        assert [shown[task][label] for label in labels] == [round(float(p), 3) for p in expected[task][0]]
    assert box.describe() == describe(box.sentence, box.tokens, box.probabilities)


def test_box_display_is_the_widget_with_a_fixed_plain_text(model, capsys):
    box = sentence_box(model, example="Sit down.")
    printed = capsys.readouterr().out
    assert printed.startswith(box.describe() + "\n")  # the example's result as text, then the box
    bundle = box._repr_mimebundle_()
    assert bundle["text/plain"] == PLAIN_TEXT == repr(box)
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == box.widget.model_id
    sentence_box(model, show=False)
    assert capsys.readouterr().out == ""


def test_bad_arguments_are_refused(model):
    with pytest.raises(TypeError, match="example must be a string"):
        SentenceBox(model, example=None)
    with pytest.raises(ValueError, match="debounce"):
        SentenceBox(model, debounce=-1)


def test_debouncer_calls_once_with_the_last_value_without_an_event_loop():
    calls, done = [], threading.Event()
    debounced = Debouncer(lambda value: (calls.append(value), done.set()), 0.05)
    for value in ("W", "Wh", "Why"):
        debounced(value)
    assert done.wait(2)
    time.sleep(0.1)
    assert calls == ["Why"]


def test_debouncer_uses_the_running_event_loop():
    calls = []

    async def typing():
        debounced = Debouncer(lambda value: calls.append((value, threading.current_thread())), 0.05)
        for value in ("H", "Hi"):
            debounced(value)
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)

    asyncio.run(typing())
    assert calls == [("Hi", threading.main_thread())]  # on the loop's (the kernel's) thread
