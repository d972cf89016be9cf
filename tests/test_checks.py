"""helpers.checks: the argument checks every entry point shares, and safe file writing."""

import numpy as np
import pandas as pd
import pytest

from helpers import freezing
from helpers.checks import check_int, check_number, check_texts, sha256_file
from helpers.task_data import TaskData
from helpers.tool.files import atomic_write, existing_ancestor


def test_whole_and_finite_numbers_name_the_argument_and_the_range():
    assert check_int("n", 3, 1, 5) == 3
    with pytest.raises(TypeError, match="n must be an integer"):
        check_int("n", True)
    with pytest.raises(ValueError, match="n must be between 1 and 5, got 6"):
        check_int("n", 6, 1, 5)
    assert check_number("rate", 1, 0.0, 1.0) == 1.0
    with pytest.raises(ValueError, match=r"rate must be a finite number in \(0.0, 1.0\]"):
        check_number("rate", 0.0, 0.0, 1.0, low_open=True)


def test_an_interrupted_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "run.pt"
    with atomic_write(path) as handle:
        handle.write(b"one")
    with pytest.raises(KeyboardInterrupt), atomic_write(path) as handle:
        handle.write(b"tw")
        raise KeyboardInterrupt
    assert path.read_bytes() == b"one"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.pt"]  # no partial file left behind


def test_existing_ancestor_and_checksum(tmp_path):
    assert existing_ancestor(tmp_path / "a" / "b" / "c") == tmp_path
    (tmp_path / "f").write_bytes(b"")
    assert sha256_file(tmp_path / "f") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_small_helpers_check_their_arguments(make_model):
    import pandas as pd

    from helpers.analysis.probes import confident_mistakes
    from helpers.analysis.tagger import RuleBasedTagger
    from helpers.data import probe_split

    with pytest.raises(TypeError, match="k must be an integer"):
        freezing.unfreeze_top_k(make_model(), 2.5)
    with pytest.raises(ValueError, match="k must be between 0 and 6"):
        freezing.unfreeze_top_k(make_model(), 7)
    with pytest.raises(TypeError, match="text must be a string"):
        RuleBasedTagger().predict_one(None)
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        confident_mistakes(["a"], ["x"], np.zeros((1, 3)), ["x", "y"])
    with pytest.raises(ValueError, match="2 texts, 1 true labels"):
        confident_mistakes(["a", "b"], ["x"], np.zeros((2, 2)), ["x", "y"])
    with pytest.raises(ValueError, match="train_size must be"):
        probe_split(pd.DataFrame({"split": ["train"], "label": ["x"]}), 0, ["label"])


@pytest.mark.parametrize(
    "texts",
    [pd.DataFrame({"text": ["a", "b"]}), {"a", "b"}, frozenset({"a"}), {"a": 1}, {"a": 1}.keys()],
    ids=["DataFrame", "set", "frozenset", "dict", "keys"],
)
def test_unordered_texts_are_refused(texts):
    with pytest.raises(TypeError, match="texts must be ordered|a mapping|got dict"):
        check_texts(texts)
    with pytest.raises(TypeError):
        TaskData(texts, np.zeros(len(texts), dtype=np.int64))


def test_a_dataframe_error_suggests_its_column():
    with pytest.raises(TypeError, match=r"df\['text'\]"):
        check_texts(pd.DataFrame({"text": ["a"]}))


def test_strict_json_writes_no_nan_or_infinity_and_plain_numbers():
    import json

    from helpers.tool.files import strict_json

    text = strict_json({"loss": float("nan"), "best": -np.inf, "n": np.int64(3), "f": [np.float32(0.5), 1.0]})
    assert json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in strict JSON")) == {
        "loss": None, "best": None, "n": 3, "f": [0.5, 1.0],
    }  # fmt: skip


def test_two_writers_of_one_file_never_share_a_temporary_file(tmp_path):
    """Two runs saving the same checkpoint at once: both complete, the one that finishes last wins."""
    path = tmp_path / "run.checkpoint.pt"
    with atomic_write(path) as first, atomic_write(path) as second:
        first.write(b"first")
        second.write(b"second")
        assert len(list(tmp_path.iterdir())) == 2  # two temporary files, one each
    assert path.read_bytes() == b"first" and list(tmp_path.iterdir()) == [path]
