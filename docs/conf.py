"""Sphinx configuration of the series' website (`make site`, i.e. `python scripts/build_site.py`).

The site is the committed notebooks, rendered with their committed outputs (nothing is executed),
plus the landing page `docs/index.md`. `scripts/build_site.py` copies both into a build-time source
folder (`build/site-src`: `index.md` and `notebooks/*.ipynb`, the repository's own layout, so every
page's launch link points at the notebook's path in the repository) and runs Sphinx strictly (`-W`)
with this folder as the configuration folder.

Launch buttons (Binder, Colab) come from the one place that holds the repository's public path,
`[tool.mtl-tutorial] repository` in pyproject.toml; while it is empty, no launch button is shown.
`MTL_TUTORIAL_REPOSITORY=owner/name` overrides it (the tests build both states with it).
Every page loads only files of the site itself: no web fonts, no CDN scripts, no math renderer.
"""

import os
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
REPOSITORY = os.environ.get("MTL_TUTORIAL_REPOSITORY", SETTINGS["tool"]["mtl-tutorial"]["repository"]).strip()
BRANCH = os.environ.get("MTL_TUTORIAL_BRANCH", "main")
if REPOSITORY and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+", REPOSITORY):
    raise ValueError(f"[tool.mtl-tutorial] repository must be 'owner/name' on GitHub, got {REPOSITORY!r}")

project = "Multi-task learning with sentence transformers"
author = "the contributors to this tutorial"
copyright = "2026, the contributors to this tutorial (code and notebooks under the MIT licence)"
version = release = SETTINGS["project"]["version"]

extensions = ["myst_nb"]
myst_enable_extensions = ["substitution"]
myst_heading_anchors = 3
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
templates_path = ["_templates"]
html_static_path = ["_static"]
html_css_files = ["site.css"]
html_js_files = ["site.js"]

# The committed outputs are the content: never execute (the notebooks take minutes and nbval checks them).
nb_execution_mode = "off"
# A live widget needs a kernel; the site shows each widget's plain-text line instead of loading the
# ipywidgets JavaScript from a CDN (the sentence box prints its example's result as text above it).
nb_ipywidgets_js = {}
nb_mime_priority_overrides = [("html", "application/vnd.jupyter.widget-view+json", None)]
# No page has LaTeX math, so Sphinx links no MathJax (it would come from a CDN): the browser test
# fails on any request that leaves the machine, so a formula added later is noticed.

html_theme = "sphinx_book_theme"
html_favicon = "_static/favicon.svg"
html_title = "Multi-task learning with sentence transformers"
html_last_updated_fmt = None
html_context = {"default_mode": "light"}  # the theme's switcher still offers dark
html_theme_options = {
    "home_page_in_toc": True,
    "show_toc_level": 2,
    "use_download_button": True,
    "use_fullscreen_button": False,
    # no "edit this page"/issues buttons: the site is read, the notebooks are the source
    "use_edit_page_button": False,
    "use_issues_button": False,
    "use_source_button": False,
    "navigation_with_keys": False,
    "icon_links": [],
    # search once, in the sidebar: pydata-sphinx-theme's header would add a second search field
    "navbar_persistent": [],
}
if REPOSITORY:
    html_theme_options |= {
        "repository_url": f"https://github.com/{REPOSITORY}",
        "repository_branch": BRANCH,
        "path_to_docs": "",  # pages sit at the notebooks' own paths (notebooks/NN_*.ipynb)
        "use_repository_button": True,
        "launch_buttons": {
            "binderhub_url": "https://mybinder.org",
            "colab_url": "https://colab.research.google.com",
            "notebook_interface": "jupyterlab",
        },
    }
    launch = (
        f"[launch it on Binder](https://mybinder.org/v2/gh/{REPOSITORY}/{BRANCH}?urlpath=lab/tree/notebooks) "
        "(JupyterLab with everything installed), open a notebook in Colab with the rocket button at the "
        f"top of its page, or read the [source on GitHub](https://github.com/{REPOSITORY})"
    )
else:
    launch = (
        "set `[tool.mtl-tutorial] repository` in `pyproject.toml` to your fork's GitHub path and rebuild "
        "the site to get Binder and Colab buttons on every page"
    )
myst_substitutions = {"launch": launch, "version": version}
