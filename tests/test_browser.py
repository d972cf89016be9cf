"""What a reader sees, in a real headless Chromium driven by Playwright for Python.

* The site (`make site`, built here into build/site): every page opens, every figure loads, the
  console stays free of errors, and no request leaves the machine.
* JupyterLab, started here on a free port with a temporary token: notebook 02 is run through the UI
  (Run > Run All Cells), a sentence is typed into the sentence box, and the probabilities the box
  shows must change and equal the model's `predict_proba` for that sentence, computed by a cell the
  test adds and runs afterwards.

Screenshots go to build/screenshots/ on every run. The browser is the system's Chromium (Debian's
`chromium` package; no browser download): MTL_TUTORIAL_CHROMIUM=/path/to/chrome picks another one.
Without a Chromium the whole module is skipped with one line that says how to enable it.
MTL_TUTORIAL_BOX_NOTEBOOK=/path/to/02_multitask_model.ipynb tests another copy of notebook 02.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
SCREENSHOTS = BUILD / "screenshots"
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
ENABLE = (
    "browser tests skipped: no Chromium found; enable them with `apt-get install -y chromium` "
    "(as root; or set MTL_TUTORIAL_CHROMIUM=/path/to/chrome)"
)


def find_chromium() -> str | None:
    chosen = os.environ.get("MTL_TUTORIAL_CHROMIUM")
    if chosen:
        return chosen if Path(chosen).is_file() else None
    return next(filter(None, map(shutil.which, CHROMIUM_CANDIDATES)), None)


CHROMIUM = find_chromium()
if CHROMIUM is None:
    pytest.skip(ENABLE, allow_module_level=True)
try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - playwright is a pinned dev dependency
    pytest.skip(
        "browser tests skipped: playwright is not installed (pip install -e '.[dev]')",
        allow_module_level=True,
    )

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}
NOTEBOOK_PAGES = [
    "notebooks/01_sentence_transformer.html",
    "notebooks/02_multitask_model.html",
    "notebooks/03_training_considerations.html",
    "notebooks/04_training_loop.html",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def is_local(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about", "file"):
        return True
    return parts.scheme in ("http", "https", "ws", "wss") and parts.hostname in LOCAL_HOSTS


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Watched:
    """A page with everything that could go wrong recorded: requests, console errors, page errors."""

    def __init__(self, browser, **context_options):
        self.context = browser.new_context(viewport={"width": 1400, "height": 900}, **context_options)
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.failed: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on(
            "response",
            lambda reply: reply.status >= 400 and self.failed.append(f"{reply.url}: {reply.status}"),
        )
        self.page.on("requestfailed", lambda request: self.failed.append(f"{request.url}: {request.failure}"))
        self.page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        self.page.on(
            "console",
            lambda message: message.type == "error" and self.errors.append(f"console: {message.text}"),
        )

    def outside(self) -> list[str]:
        return [url for url in self.requests if not is_local(url)]

    def close(self):
        self.context.close()


# ----- the site -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site_url():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import build_site
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    site = build_site.build(BUILD / "site", quiet=True)
    handler = functools.partial(QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


def test_site_pages_load_everything_locally(browser, site_url):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    watched = Watched(browser, service_workers="block")
    page = watched.page
    try:
        response = page.goto(site_url + "index.html", wait_until="networkidle")
        assert response.ok
        links = page.eval_on_selector_all("main a.reference.internal", "as => as.map(a => a.href)")
        for target in NOTEBOOK_PAGES:  # the landing page links every notebook
            assert any(link.split("#")[0] == site_url + target for link in links), target
        page.screenshot(path=SCREENSHOTS / "site-index.png")
        for target in NOTEBOOK_PAGES:
            response = page.goto(site_url + target, wait_until="networkidle")
            assert response.ok, target
            title = page.locator("main h1").first.inner_text()
            assert title.startswith(Path(target).stem[:2]), (target, title)
            searches = [b for b in page.query_selector_all(".search-button-field") if b.is_visible()]
            assert len(searches) == 1, f"{target}: {len(searches)} search fields shown"  # one, in the sidebar
            images = page.evaluate(
                """async () => {
                    const images = [...document.querySelectorAll('img')];
                    for (const image of images) { image.loading = 'eager'; }
                    await Promise.all(images.map(image => image.decode().catch(() => null)));
                    return images.map(image => [image.getAttribute('src'), image.naturalWidth]);
                }"""
            )
            figures = [source for source, _ in images if "_images/" in source]
            assert figures, f"{target}: no figure on the page"
            broken = [source for source, width in images if not width]
            assert not broken, f"{target}: images that did not load: {broken}"
            page.screenshot(path=SCREENSHOTS / f"site-{Path(target).stem}.png")
        # notebook 02's figure (the architecture) and its first tables, as a reader sees them
        page.goto(site_url + NOTEBOOK_PAGES[1], wait_until="networkidle")
        page.locator("img[src*='_images/']").first.scroll_into_view_if_needed()
        page.mouse.wheel(0, -250)
        page.wait_for_timeout(300)
        page.screenshot(path=SCREENSHOTS / "site-02-figure.png")
        page.goto(site_url + "search.html?q=freezing", wait_until="networkidle")
        page.wait_for_selector("#search-results li", timeout=10_000)  # the search index works offline
    finally:
        watched.close()
    assert not watched.outside(), f"requests that left the machine: {watched.outside()}"
    assert not watched.failed, f"failed requests: {watched.failed}"
    assert not watched.errors, "\n".join(watched.errors)
    assert len(watched.requests) > 20  # pages, scripts, styles, fonts and figures were seen


def test_site_menus_open_on_a_phone(browser, site_url):
    """On a 390-px screen the visible menu button opens the notebook list (docs/_static/site.js)."""
    watched = Watched(browser)
    page = watched.page
    try:
        page.set_viewport_size({"width": 390, "height": 800})
        page.goto(site_url + NOTEBOOK_PAGES[1], wait_until="networkidle")
        buttons = [b for b in page.query_selector_all(".sidebar-toggle.primary-toggle") if b.is_visible()]
        assert len(buttons) == 1
        buttons[0].click()
        page.wait_for_function("document.getElementById('pst-primary-sidebar-modal').open", timeout=5_000)
        assert page.locator("#pst-primary-sidebar-modal a", has_text="04").first.is_visible()
        page.screenshot(path=SCREENSHOTS / "site-phone-menu.png")
        page.goto(
            site_url + "index.html", wait_until="networkidle"
        )  # the landing table scrolls, the page does not
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        table = page.locator("article table").first
        assert table.evaluate("t => getComputedStyle(t).overflowX") == "auto"
    finally:
        watched.close()
    assert not watched.errors, "\n".join(watched.errors)


# ----- JupyterLab and the sentence box ---------------------------------------------------------------

BOX_SENTENCE = "Why did nobody tell me the meeting was cancelled? ☹"  # ☹ is not in the vocabulary


def box_notebook() -> Path:
    return Path(os.environ.get("MTL_TUTORIAL_BOX_NOTEBOOK", ROOT / "notebooks" / "02_multitask_model.ipynb"))


def box_model_name(notebook: dict) -> str:
    """The model variable the notebook hands to `sentence_box(...)`."""
    for cell in notebook["cells"]:
        found = re.search(r"\bsentence_box\(\s*([A-Za-z_]\w*)", "".join(cell["source"]))
        if cell["cell_type"] == "code" and found:
            return found.group(1)
    pytest.fail(f"{box_notebook()} has no cell that calls sentence_box(model): nothing to try in the browser")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on a free port with a temporary token, on a folder holding notebook 02, outputs cleared."""
    home = tmp_path_factory.mktemp("lab")
    folder = home / "notebooks"
    folder.mkdir()
    notebook = json.loads(box_notebook().read_text(encoding="utf-8"))
    model_name = box_model_name(notebook)
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    notebook["metadata"].pop("widgets", None)
    (folder / "02_multitask_model.ipynb").write_text(json.dumps(notebook), encoding="utf-8")
    # no news prompt, and the notebook's own kernel started without asking
    for plugin, settings in {
        "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
        # every cell in the page (no windowing), so the box is found wherever the view is scrolled
        "notebook-extension/tracker": {"autoStartDefaultKernel": True, "windowingMode": "none"},
    }.items():
        path = home / "settings" / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings), encoding="utf-8")
    port, token = free_port(), os.urandom(16).hex()
    env = {
        **os.environ,
        "MTL_TUTORIAL_CACHE": str(home / "embedding-cache"),  # an empty cache of its own
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "IPYTHONDIR": str(home / "ipython"),
    }
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={folder}",
        "--ServerApp.open_browser=False",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    log = (home / "jupyterlab.log").open("w")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                pytest.fail(
                    f"jupyter lab exited ({server.returncode}):\n{(home / 'jupyterlab.log').read_text()}"
                )
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as reply:
                    if reply.status == 200:
                        break
            if time.monotonic() > deadline:
                pytest.fail("jupyter lab did not answer within 60 s")
            time.sleep(0.5)
        yield {"url": url, "token": token, "model": model_name, "log": home / "jupyterlab.log"}
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


RUN_ALL_SECONDS = 420


def run_all_until(page, box, seconds: float) -> None:
    """Wait until `box` shows; fail at once if a cell's output is an error."""
    deadline = time.monotonic() + seconds
    while not box.is_visible():
        failed = page.locator("[data-mime-type='application/vnd.jupyter.error']")
        if failed.count():
            pytest.fail(f"a cell failed while running notebook 02:\n{failed.first.inner_text()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"the sentence box did not appear within {seconds} s of Run All Cells")
        page.wait_for_timeout(1000)


def box_numbers(page) -> dict:
    """What the box shows: the sentence and, per task and label, the number printed beside each bar."""
    return page.evaluate(
        """() => {
            const result = document.querySelector('.mtl-sentence-box .mtl-sentence-box-result');
            if (!result) { return null; }
            const shown = {};
            for (const row of result.querySelectorAll('tr[data-task]')) {
                const cells = row.querySelectorAll('td');
                const number = cells[cells.length - 1].innerText.trim();
                (shown[row.dataset.task] ??= {})[row.dataset.label] = number;
            }
            return {sentence: result.dataset.sentence, shown, data: JSON.parse(result.dataset.probabilities)};
        }"""
    )


def test_sentence_box_in_jupyterlab(browser, lab):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    watched = Watched(browser)
    page = watched.page
    page.set_default_timeout(30_000)
    try:
        page.goto(f"{lab['url']}/lab/tree/02_multitask_model.ipynb?token={lab['token']}")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)
        kernel_dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
        if kernel_dialog.count():  # older settings: confirm the notebook's own kernel
            kernel_dialog.get_by_role("button", name="Select").click()
        box = page.locator(".mtl-sentence-box input")
        prompts = page.locator(".jp-InputArea-prompt")
        for _ in range(3):  # Run > Run All Cells, through the menu bar as a reader would
            page.locator(".jp-Notebook .jp-Cell").first.click()  # the notebook has the focus
            page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
            item = page.locator(".lm-Menu").get_by_text("Run All Cells", exact=True)
            item.wait_for(state="visible", timeout=10_000)
            item.click()
            with contextlib.suppress(Exception):
                page.wait_for_function(
                    "() => [...document.querySelectorAll('.jp-InputArea-prompt')]"
                    ".some(p => /\\[(\\*|\\d+)\\]/.test(p.innerText))",
                    timeout=15_000,
                )
            if any(re.search(r"\[(\*|\d+)\]", text) for text in prompts.all_inner_texts()):
                break
            page.keyboard.press("Escape")
        else:
            pytest.fail("Run > Run All Cells started nothing (three tries)")
        run_all_until(page, box, RUN_ALL_SECONDS)  # the whole notebook ran up to the box
        first = box_numbers(page)
        assert first and first["sentence"] == box.input_value()
        box.scroll_into_view_if_needed()
        box.click()
        box.press("Control+a")
        box.press_sequentially(BOX_SENTENCE, delay=15)  # real key presses; the box waits for a pause
        page.wait_for_function(
            "sentence => document.querySelector('.mtl-sentence-box-result')?.dataset.sentence === sentence",
            arg=BOX_SENTENCE,
            timeout=30_000,
        )
        typed = box_numbers(page)
        chips = page.locator(".mtl-sentence-box-result span span").all_inner_texts()
        assert chips[0] == "[CLS]" and chips[-2:] == ["[UNK]", "[SEP]"], chips  # the unknown symbol shows
        assert typed["data"] != first["data"], "the probabilities did not change"
        for task, by_label in typed["data"].items():  # the printed numbers are the data attribute's
            assert typed["shown"][task] == {label: f"{p:.3f}" for label, p in by_label.items()}
        page.locator(".mtl-sentence-box").scroll_into_view_if_needed()
        page.screenshot(path=SCREENSHOTS / "jupyterlab-sentence-box.png")

        # the model's own answer for the same sentence, from a cell added at the end and run in the UI
        page.locator(".jp-Notebook .jp-Cell").last.click()
        page.keyboard.press("Escape")
        page.keyboard.press("b")  # a new cell below, in command mode
        page.keyboard.press("Enter")
        page.keyboard.insert_text(
            "import json\n"
            f"print('MTL_BOX_EXPECTED', json.dumps({{t: [round(float(x), 3) for x in p[0]] for t, p in "
            f"{lab['model']}.predict_proba([{BOX_SENTENCE!r}]).items()}}))"
        )
        page.keyboard.press("Shift+Enter")
        output = page.locator(".jp-OutputArea-output", has_text=re.compile(r"MTL_BOX_EXPECTED \{")).first
        output.wait_for(timeout=60_000)
        expected = json.loads(output.inner_text().split("MTL_BOX_EXPECTED", 1)[1])
    finally:
        with contextlib.suppress(Exception):
            page.screenshot(path=SCREENSHOTS / "jupyterlab-last.png")
        watched.close()
    labels = {task: list(by_label) for task, by_label in typed["data"].items()}
    assert {task: [typed["data"][task][label] for label in labels[task]] for task in labels} == expected
    assert not watched.outside(), f"JupyterLab made requests that left the machine: {watched.outside()}"
    errors = [error for error in watched.errors if "favicon" not in error]
    assert not errors, "\n".join(errors)
