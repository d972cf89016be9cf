"""Saving and loading a `MultiTaskModel`: one folder, safetensors weights and a JSON configuration.

    MODEL/multitask_config.json   format tag and version, task labels, pooling, head, ...
    MODEL/heads.safetensors       the task heads
    MODEL/encoder/                the shared encoder and its tokenizer (Hugging Face format)

`save_model` writes it, `load_model` reads it back. Saving never
destroys anything that is not a saved model (`check_save_target`), and writes into a hidden sibling
folder first, so an interruption leaves the old or the new model in place, never half of one.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from transformers import AutoModel, AutoTokenizer

from helpers.encoder import resolve_device
from helpers.model import MultiTaskModel
from helpers.tool.files import existing_ancestor, strict_json

CONFIG_FILE = "multitask_config.json"
HEADS_FILE = "heads.safetensors"
ENCODER_DIR = "encoder"
FORMAT_NAME = "mtl-tutorial/multitask-model"
FORMAT_VERSION = 1
MODEL_ENTRIES = (CONFIG_FILE, HEADS_FILE, ENCODER_DIR)  # what `save_model` writes at a model folder's top
PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the repository (or site-packages when installed)


class NotASavedModelError(FileNotFoundError):
    """A directory passed to `load_model` is missing or does not hold a saved model."""


class SaveTargetError(ValueError):
    """A folder that `save_model` refuses to write into, because it would destroy something."""


def is_saved_model(directory: str | Path) -> bool:
    """True if `directory` holds a model written by `save_model` (its config file and format tag)."""
    config_path = Path(directory) / CONFIG_FILE
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(config, dict) and config.get("format") == FORMAT_NAME


def _saved_entries(directory: Path) -> set[str]:
    """The paths (relative, '/'-separated) of the files `save_model` wrote into a saved model folder:
    model files, encoder files and extra files."""
    try:
        config = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
        extra, encoder = config["extra_files"], config["encoder_files"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError, KeyError, TypeError):
        extra, encoder = [], []
    names = [*MODEL_ENTRIES[:2], *extra, *[f"{ENCODER_DIR}/{name}" for name in encoder]]
    return {name for name in names if isinstance(name, str)}


def _unexpected_files(directory: Path) -> list[str]:
    """Everything in the whole tree of a saved model folder that `save_model` did not write (relative)."""
    expected = _saved_entries(directory)
    unexpected = []
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory).as_posix()
        if path.is_dir() and not path.is_symlink():
            if relative != ENCODER_DIR and not any(name.startswith(relative + "/") for name in expected):
                if not any(path.iterdir()):
                    unexpected.append(relative + "/")
            continue
        if relative not in expected:
            unexpected.append(relative)
    return unexpected


def check_save_target(directory: str | os.PathLike) -> Path:
    """Check that `save_model(directory)` destroys nothing; return the folder, resolved.

    Allowed: a path that does not exist yet (under a writable folder), an empty folder, or a folder
    that holds a model saved by `save_model` (config file with the format tag) and nothing else, which is
    then replaced: its whole tree is inspected, `encoder/` included, against the files `save_model` wrote.
    Refused with SaveTargetError: `.`, `..`, the file-system root, a folder that
    contains the working directory or this project's repository, a file, and any folder holding
    files that are not part of a saved model (they are listed). A symlink is followed.
    """
    if not isinstance(directory, str | os.PathLike):
        raise TypeError(f"directory must be a path (str or Path), got {type(directory).__name__}")
    given = Path(directory)
    if str(directory).strip() == "":
        raise SaveTargetError("directory is an empty path; name the folder to save the model in")
    if given.name in ("", ".", ".."):
        raise SaveTargetError(f"refusing to save into {str(directory)!r}: name a new or a model folder")
    target = given.expanduser().resolve()
    if target == Path(target.anchor):
        raise SaveTargetError(f"refusing to save into the file-system root {target}")
    protected = {Path.cwd().resolve(): "the working directory", PROJECT_ROOT: "the project's repository"}
    for place, what in protected.items():
        if target == place or target in place.parents:
            raise SaveTargetError(
                f"refusing to save into {directory} ({target}): it is or contains {what} ({place}); "
                "choose a folder of its own, e.g. models/mtl"
            )
    if target.exists() or target.is_symlink():
        if not target.is_dir():
            raise SaveTargetError(f"{directory} is an existing file, not a folder; choose another path")
        entries = {entry.name for entry in target.iterdir()}
        if entries and not is_saved_model(target):
            raise SaveTargetError(
                f"{directory} is not empty and holds no saved model ({', '.join(sorted(entries)[:5])}"
                f"{', ...' if len(entries) > 5 else ''}); refusing to replace it: choose a new folder"
            )
        unexpected = _unexpected_files(target)
        if unexpected:
            raise SaveTargetError(
                f"{directory} holds a saved model but also {', '.join(unexpected[:10])}"
                f"{', ...' if len(unexpected) > 10 else ''}, which "
                "saving would delete; move them away first"
            )
        if not os.access(target.parent, os.W_OK):
            raise SaveTargetError(f"cannot write into {target.parent} (no write permission)")
        return target
    existing = existing_ancestor(target)
    if not existing.is_dir():
        raise SaveTargetError(f"cannot create {directory}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK):
        raise SaveTargetError(f"cannot create {directory}: no write permission in {existing}")
    return target


def _check_target(directory: str | Path, replace: bool) -> Path:
    """`check_save_target`, and with `replace=False` a SaveTargetError for a model already there."""
    target = check_save_target(directory)
    if not replace and is_saved_model(target):
        raise SaveTargetError(
            f"{directory} already holds a saved model (written by another run?); refusing to replace it"
        )
    return target


def _new_sibling(target: Path, kind: str) -> Path:
    """A fresh hidden folder beside `target`, created with the user's umask (not mkdtemp's 0700)."""
    while True:
        candidate = target.parent / f".{target.name}.{kind}-{secrets.token_hex(4)}"
        try:
            candidate.mkdir(mode=0o777)
            return candidate
        except FileExistsError:
            continue


def _unused_sibling(target: Path, kind: str) -> Path:
    while True:
        candidate = target.parent / f".{target.name}.{kind}-{secrets.token_hex(4)}"
        if not candidate.exists() and not candidate.is_symlink():
            return candidate


def save_model(
    model: MultiTaskModel,
    directory: str | Path,
    extra_files: Mapping[str, str] | None = None,
    *,
    replace: bool = True,
) -> Path:
    """Save `model`'s encoder, tokenizer, heads (safetensors) and configuration (JSON) into `directory`.

    `directory` must be new, empty, or hold a model saved here before (and nothing else); see
    `check_save_target` for what is refused (SaveTargetError) and why. `extra_files` maps plain
    file names to text written beside the model (e.g. a training log); they belong to the model
    and are replaced with it (TypeError when it is not a mapping, ValueError for a bad name). The files
    are written to a hidden sibling folder (with the user's
    umask) and moved into place only when complete; an old model is moved aside, replaced, then
    deleted, so an interruption at any point leaves the old or the new model in `directory`
    (never a half-written one, never neither: at worst the old one is in `.NAME.replaced-*`).
    With `replace=False` a model already in `directory` is refused too (SaveTargetError), also one
    that appeared there while this one was being written. A model with NaN or infinite weights
    (a diverged run) is refused with ValueError: nothing is written.
    """
    if extra_files is not None and not isinstance(extra_files, Mapping):
        raise TypeError(
            f"extra_files must map file names to text (a dict), got {type(extra_files).__name__} "
            f"({extra_files!r:.40})"
        )
    target = _check_target(directory, replace)
    broken = [name for name, tensor in model.state_dict().items() if not torch.isfinite(tensor).all()]
    if broken:
        raise ValueError(
            f"refusing to save a model with NaN or infinite weights ({', '.join(broken[:3])}"
            f"{', ...' if len(broken) > 3 else ''}): its training diverged"
        )
    extra_files = dict(extra_files or {})
    for name, text in extra_files.items():
        if not isinstance(name, str) or not name or name != Path(name).name or name in MODEL_ENTRIES:
            raise ValueError(f"extra file name {name!r} must be a plain file name, not a model file")
        if name.startswith(".") or not isinstance(text, str):
            raise ValueError(f"extra file {name!r} must have a name not starting with '.' and str text")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = _new_sibling(target, "saving")
    try:
        model.backbone.save_pretrained(staging / ENCODER_DIR, safe_serialization=True)
        model.tokenizer.save_pretrained(staging / ENCODER_DIR)
        heads = {
            name: tensor.detach().cpu().contiguous() for name, tensor in model.heads.state_dict().items()
        }
        save_file(heads, staging / HEADS_FILE)
        for name, text in extra_files.items():
            (staging / name).write_text(text, encoding="utf-8")
        config = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "task_labels": model.task_labels,
            **model.config,
            "extra_files": sorted(extra_files),
            "encoder_files": sorted(
                path.relative_to(staging / ENCODER_DIR).as_posix()
                for path in (staging / ENCODER_DIR).rglob("*")
                if path.is_file()
            ),
        }
        (staging / CONFIG_FILE).write_text(strict_json(config, indent=2) + "\n", encoding="utf-8")
        _check_target(directory, replace)  # again: something may have appeared there meanwhile
        if target.is_dir() and any(target.iterdir()):  # a previous model: swap, then delete it
            previous = _unused_sibling(target, "replaced")
            try:
                os.rename(target, previous)
                os.rename(staging, target)
            except BaseException:  # Ctrl-C included: put the previous model back
                if previous.exists() and not target.exists():
                    os.rename(previous, target)
                raise
            shutil.rmtree(previous, ignore_errors=True)
        else:
            if target.is_dir():
                target.rmdir()  # empty
            os.rename(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Path(directory)


def load_model(
    directory: str | Path,
    device: str | torch.device | None = None,
    model_class: type[MultiTaskModel] = MultiTaskModel,
) -> MultiTaskModel:
    """Load a model written by `save_model`, in eval mode; it predicts exactly what the saved model did.

    Raises NotASavedModelError (a FileNotFoundError) naming the folder when it is missing, lacks
    a file, or holds an unreadable or foreign configuration or weights; ValueError for a device
    that is not available. `model_class` is the class to build (`MultiTaskModel` or a subclass).
    """
    if not isinstance(directory, str | os.PathLike):
        raise TypeError(f"directory must be a path (str or Path), got {type(directory).__name__}")
    directory = Path(directory).expanduser()  # as `save_model` does
    if not directory.is_dir():
        raise NotASavedModelError(f"{directory} does not exist or is not a directory")
    required = [CONFIG_FILE, HEADS_FILE, f"{ENCODER_DIR}/config.json", f"{ENCODER_DIR}/model.safetensors"]
    missing = [name for name in required if not (directory / name).is_file()]
    if missing:
        raise NotASavedModelError(f"{directory} is not a saved MultiTaskModel: missing {', '.join(missing)}")
    target = resolve_device(device)
    try:
        config = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise NotASavedModelError(f"{directory / CONFIG_FILE} is not valid JSON: {error}") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT_NAME:
        raise NotASavedModelError(f"{directory / CONFIG_FILE} is not a {FORMAT_NAME} configuration")
    if config.get("version") != FORMAT_VERSION:
        raise NotASavedModelError(
            f"{directory / CONFIG_FILE} has format version {config.get('version')!r}; "
            f"this code reads version {FORMAT_VERSION}"
        )
    try:
        backbone = AutoModel.from_pretrained(
            directory / ENCODER_DIR, add_pooling_layer=False, local_files_only=True
        )
        tokenizer = AutoTokenizer.from_pretrained(directory / ENCODER_DIR, local_files_only=True)
        model = model_class(
            config["task_labels"],
            backbone,
            tokenizer,
            pooling=config["pooling"],
            normalize=config["normalize"],
            head=config["head"],
            head_hidden_dim=config["head_hidden_dim"],
            dropout=config["dropout"],
            max_length=config["max_length"],
            device="cpu",
        )
        model.heads.load_state_dict(load_file(directory / HEADS_FILE))
    except (KeyError, TypeError, ValueError, OSError, RuntimeError, SafetensorError) as error:
        if isinstance(error, NotASavedModelError):
            raise
        raise NotASavedModelError(
            f"{directory} holds a damaged or incompatible saved model: {type(error).__name__}: {error}"
        ) from error
    return model.to(target)
