"""What turns the training loop into a command-line tool: the CLI (`python -m helpers.tool.cli`),
safe model saving (`saving`), checkpoints and resuming (`checkpoint`), the frozen lower layers
computed once (`prefix_cache`), the disk cache of pre-trained embeddings (`embedding_cache`),
process setup, seeds and `torchrun` (`processes`) and safe file writes (`files`). The notebooks
call some of it (saving, the caches) for speed and safety; the loop itself is in `helpers.training`."""
