"""Reusable code for the multi-task sentence-transformer tutorial.

Modules, in the order a reader meets them: `data` (the real data sets), `encoder` (the MiniLM
encoder and pooling), `embedding_cache`, `model` (`MultiTaskModel`: shared encoder, one head per
task), `modes`, `saving`, `freezing`; the training loop of notebook 04 in `training`, with its
pieces in `task_data`, `sampling`, `losses` and its extras in `training_config`, `optimization`,
`prefix_cache`, `evaluation`, `checkpointing`, `distributed`; then `metrics`, `baselines`, `plots`,
`notebook` (`setup_notebook`, called at the top of every notebook) and `train` (the command line).
"""

__version__ = "0.1.0"
