"""Import scripts/build_data.py in tests (it is a script, not part of the package)."""

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_build_script():
    """scripts/build_data.py as a module, imported once and shared by the tests that need it."""
    if "build_data" in sys.modules:
        return sys.modules["build_data"]
    spec = importlib.util.spec_from_file_location("build_data", ROOT / "scripts" / "build_data.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
