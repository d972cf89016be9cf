"""One call at the top of every notebook: seeds, plot style, and quiet, reproducible output."""

from __future__ import annotations

import logging
import os
import warnings

from helpers.memory import return_large_blocks_to_os
from helpers.tool.processes import seed_everything

FIGURE_SIZE = (7.0, 4.0)


def setup_notebook(seed: int = 42) -> None:
    """Seed everything, set a colour-blind-safe plot style, and silence progress bars and warnings.

    Notebooks are compared cell by cell under `pytest --nbval`, so anything that changes from run
    to run (progress bars, timing lines, library warnings) must stay out of the outputs.
    """
    warnings.filterwarnings("ignore")  # first: some warnings fire while libraries are imported
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    os.environ["TQDM_DISABLE"] = "1"  # tqdm bars of libraries that do not take a flag

    import matplotlib.pyplot as plt
    import seaborn as sns
    import transformers

    seed_everything(seed)
    return_large_blocks_to_os()  # keep long notebooks inside Binder's memory
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    logging.getLogger("sentence_transformers").setLevel(logging.ERROR)

    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
    plt.rcParams.update({"figure.figsize": FIGURE_SIZE, "figure.dpi": 80, "savefig.dpi": 80})
