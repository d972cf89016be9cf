"""The code behind the four notebooks: a sentence encoder, a multi-task model, and its training loop.

Start here. Read the top level in this order, after the notebook that uses it:

1. `encoder` (notebook 01): all-MiniLM-L6-v2 loaded offline; tokenise, pool, normalise by hand.
2. `model` (notebook 02): `MultiTaskModel`, one shared encoder and one head per task.
3. `freezing` (notebook 03): which parameters train.
4. `training` (notebook 04): `training_step`, `train_epoch` and `train_multitask`, the loop of notebook 04's
   sketch with its extras fenced off; its pieces are `task_data` (the examples, and which batch
   comes next), `losses` (masked per-task losses, combined), `optimization` (AdamW, the
   schedule), `training_config` (what defines a run, its state and its result), `evaluation`
   (metrics and predictions) and `distributed` (the same step under torchrun).
5. Underneath all of them: `checks` (argument checks), `punctuation` (final marks, stripped or
   kept) and `memory` (freed memory handed back to the operating system).

The data: `data` loads the committed data sets (no torch needed); `data.tasks` turns them into
the loop's `{task: TaskData}` and cuts seeded subsets.

Optional reading: `tool/` turns the loop into a command-line tool (`python -m helpers.tool.cli`,
safe model saving, checkpoints and resuming, the embedding and frozen-prefix caches, process setup
under torchrun); `analysis/` is what the notebooks use to judge results (baselines, label noise,
probes, reports, plots, timing, seeds). The notebooks call both, for speed, safety and their
figures; the ideas they teach are in the top level, and notebook 03 already trains with
`training.train_multitask` before notebook 04 opens it up.
The top level imports nothing from `tool/` or `analysis/` (tests/test_layout.py checks it).
"""

__version__ = "0.1.0"
