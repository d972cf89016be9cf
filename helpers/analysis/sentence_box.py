"""A sentence box: type a sentence, see its WordPiece tokens and what every head of the model says.

    from helpers.analysis.sentence_box import sentence_box

    box = sentence_box(model)  # prints the example sentence's result, then shows the live box

The box is an `ipywidgets` text field over an HTML panel: the sentence's tokens (`[UNK]`, e.g. for
an emoji, in red) and each task's class probabilities as bars, updated as you type (debounced, so
the model runs once you pause). It works wherever ipywidgets 8 does: JupyterLab, Binder, Colab (where
`sentence_box` switches Colab's widget manager on by itself). The printed text for the fixed example
sentence is what a static copy of the notebook (GitHub, the site, nbval) shows and compares; the
box's own display output has a fixed plain-text form, and nbval skips its widget view.

The model is anything with `tokenize`, `tokenizer`, `task_labels` and `predict_proba`, like
`helpers.model.MultiTaskModel` (imported for type hints only).
"""

from __future__ import annotations

import asyncio
import html
import json
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from helpers.model import MultiTaskModel

EXAMPLE = "Wow, this tutorial is great! 🎉"
DEBOUNCE_SECONDS = 0.3
PLAIN_TEXT = "[sentence box: run this notebook (JupyterLab, Binder or Colab) and type a sentence]"
UNKNOWN = "[UNK]"
BAR_COLOURS = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00")  # colour-blind safe


def sentence_tokens(model: MultiTaskModel, sentence: str) -> list[str]:
    """The WordPiece tokens the model reads for `sentence` (special tokens and `[UNK]` included)."""
    batch = model.tokenize([sentence])
    ids = batch["input_ids"][0][batch["attention_mask"][0].bool()].tolist()
    return model.tokenizer.convert_ids_to_tokens(ids)


def sentence_probabilities(model: MultiTaskModel, sentence: str) -> dict[str, dict[str, float]]:
    """`{task: {label: probability}}` for one sentence, labels in the model's order."""
    probabilities = model.predict_proba([sentence])
    return {
        task: {label: float(p) for label, p in zip(labels, probabilities[task][0], strict=True)}
        for task, labels in model.task_labels.items()
    }


def describe(sentence: str, tokens: list[str], probabilities: dict[str, dict[str, float]]) -> str:
    """The result as plain text: the sentence, its tokens, and each task's probabilities to 3 decimals.

    Labels stay in the model's order and no winner is named, so two near-equal probabilities that
    swap places on another machine change a number slightly, never a word (nbval compares words).
    """
    width = max(len(task) for task in probabilities)
    lines = [f"sentence: {sentence!r}", f"tokens ({len(tokens)}): {' '.join(tokens)}"]
    for task, by_label in probabilities.items():
        lines.append(
            f"{task + ':':<{width + 1}}  " + ", ".join(f"{label} {p:.3f}" for label, p in by_label.items())
        )
    return "\n".join(lines)


def render_html(sentence: str, tokens: list[str], probabilities: dict[str, dict[str, float]]) -> str:
    """The result as HTML: token chips and one bar per class; the numbers also as data attributes."""
    chips = " ".join(
        '<span style="display:inline-block;margin:1px;padding:0 4px;border-radius:3px;'
        + ("background:#d55e00;color:white;font-weight:bold" if token == UNKNOWN else "background:#e8e8e8")
        + f'">{html.escape(token)}</span>'
        for token in tokens
    )
    rounded = {
        task: {label: round(p, 3) for label, p in by_label.items()}
        for task, by_label in probabilities.items()
    }
    parts = [
        f'<div class="mtl-sentence-box-result" data-sentence="{html.escape(sentence)}" '
        f'data-probabilities="{html.escape(json.dumps(rounded))}" style="font-family:sans-serif">',
        f'<div style="margin:4px 0"><b>{len(tokens)} tokens:</b> <span style="font-family:monospace">'
        f"{chips}</span></div>",
        '<div style="display:flex;flex-wrap:wrap;gap:24px">',
    ]
    for task, by_label in probabilities.items():
        predicted = max(by_label, key=by_label.get)
        rows = []
        for index, (label, p) in enumerate(by_label.items()):
            colour = BAR_COLOURS[index % len(BAR_COLOURS)]
            weight = "bold" if label == predicted else "normal"
            rows.append(
                f'<tr data-task="{html.escape(task)}" data-label="{html.escape(label)}" data-p="{p:.3f}">'
                f'<td style="padding:1px 6px;font-weight:{weight}">{html.escape(label)}</td>'
                '<td style="padding:1px 0;width:200px">'
                '<div style="background:#f0f0f0;width:200px;height:14px">'
                f'<div style="background:{colour};width:{100 * p:.1f}%;height:14px"></div></div></td>'
                f'<td style="padding:1px 6px;font-family:monospace">{p:.3f}</td></tr>'
            )
        parts.append(
            f'<div><div style="font-weight:bold">{html.escape(task.replace("_", " "))}</div>'
            f'<table style="border-collapse:collapse">{"".join(rows)}</table></div>'
        )
    parts.append("</div></div>")
    return "".join(parts)


class Debouncer:
    """Call `function(value)` once `seconds` have passed without a newer value.

    In a running kernel the call is scheduled on the kernel's event loop, so the model runs on the
    kernel's main thread; without one (a plain script) a timer thread makes the call.
    """

    def __init__(self, function: Callable[[str], None], seconds: float):
        self.function, self.seconds = function, seconds
        self._pending = None
        self._lock = threading.Lock()

    def __call__(self, value: str) -> None:
        with self._lock:
            if self._pending is not None:
                self._pending.cancel()
            if self.seconds <= 0:
                self._pending = None
            else:
                try:
                    loop = asyncio.get_running_loop()
                except RuntimeError:
                    self._pending = threading.Timer(self.seconds, self.function, (value,))
                    self._pending.daemon = True
                    self._pending.start()
                else:
                    self._pending = loop.call_later(self.seconds, self.function, value)
                return
        self.function(value)


class SentenceBox:
    """The live box: `text` (an ipywidgets Text), `result` (an HTML panel), `widget` (both).

    After each update, `sentence`, `tokens` and `probabilities` hold what the panel shows;
    `update(sentence)` recomputes immediately (typing calls it after the debounce).
    """

    def __init__(self, model: MultiTaskModel, example: str = EXAMPLE, debounce: float = DEBOUNCE_SECONDS):
        import ipywidgets as widgets

        if not isinstance(example, str):
            raise TypeError(f"example must be a string, got {type(example).__name__}")
        if not debounce >= 0:
            raise ValueError(f"debounce must be a number of seconds >= 0, got {debounce!r}")
        self.model = model
        self.text = widgets.Text(
            value=example,
            placeholder="Type a sentence",
            description="Sentence:",
            continuous_update=True,
            layout=widgets.Layout(width="min(100%, 720px)"),
        )
        self.result = widgets.HTML()
        self.widget = widgets.VBox([self.text, self.result])
        self.widget.add_class("mtl-sentence-box")
        self.sentence: str = example
        self.tokens: list[str] = []
        self.probabilities: dict[str, dict[str, float]] = {}
        self._debounced = Debouncer(self.update, debounce)
        self.text.observe(lambda change: self._debounced(change["new"]), names="value")
        self.update(example)

    def update(self, sentence: str | None = None) -> None:
        """Show the tokens and probabilities of `sentence` (default: the text in the box)."""
        sentence = self.text.value if sentence is None else sentence
        tokens = sentence_tokens(self.model, sentence)
        probabilities = sentence_probabilities(self.model, sentence)
        self.sentence, self.tokens, self.probabilities = sentence, tokens, probabilities
        self.result.value = render_html(sentence, tokens, probabilities)

    def describe(self) -> str:
        """The current result as plain text (see `describe`)."""
        return describe(self.sentence, self.tokens, self.probabilities)

    def __repr__(self) -> str:
        return PLAIN_TEXT

    def _repr_mimebundle_(self, **kwargs) -> dict:
        # The live widget where a widget manager runs; a fixed line in plain text (static copies, nbval).
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = PLAIN_TEXT
        return bundle


def enable_colab_widgets() -> bool:
    """In Colab, switch on the widget manager that renders ipywidgets 8; elsewhere do nothing."""
    if "google.colab" not in sys.modules:
        return False
    from google.colab import output  # type: ignore[import-not-found]

    output.enable_custom_widget_manager()
    return True


def sentence_box(
    model: MultiTaskModel, example: str = EXAMPLE, debounce: float = DEBOUNCE_SECONDS, show: bool = True
) -> SentenceBox:
    """Print the result for `example` as plain text, then display a live sentence box on `model`.

    `debounce` is the pause in typing (seconds) after which the model runs; `show=False` builds the
    box without printing or displaying anything.
    """
    box = SentenceBox(model, example, debounce)
    if show:
        from IPython.display import display

        enable_colab_widgets()
        print(box.describe())
        display(box)
    return box
