"""Reusable code for the multi-task sentence-transformer tutorial.

Modules: `encoder` (the MiniLM encoder and pooling), `embedding_cache`, `data` (the real data sets),
`notebook` (`setup_notebook`, called at the top of every notebook).
"""

__version__ = "0.1.0"
