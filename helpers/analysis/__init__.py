"""What the notebooks use to judge results: the baselines (`vader`, `tagger`), the label-noise
ceiling (`label_noise`), linear probes (`probes`), bootstrap intervals over test sentences
(`intervals`), per-task gradient norms (`gradients`), the test scoreboard (`reports`), plots,
timing, comparisons over seeds (`comparison`), notebook 03's tables of the experiment grids
(`nb03_tables`) and the notebooks' setup (`notebook`). Optional reading: the model and its
training loop are at the top level of `helpers`."""
