"""What turns the training loop into a command-line tool: the CLI (`python -m helpers.tool.cli`),
safe model saving (`saving`), the disk cache of pre-trained embeddings (`embedding_cache`) and
process setup, seeds and `torchrun` (`processes`). Optional reading: the notebooks' loop is in
`helpers.training`."""
