"""Tiny real models of the file-based families, for tests and the hub benchmark.

They are small enough to build in well under a second, yet go through the same upload path
(the Hugging Face folder layout, an ONNX graph) as any developer's model.
"""

from __future__ import annotations

import string
import warnings
from pathlib import Path


def tiny_clip_dir(path: Path, width: int = 32, image_size: int = 32, seed: int = 0) -> Path:
    """A randomly initialised ``CLIPModel`` with a character-level tokenizer, saved offline."""
    import torch
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    torch.manual_seed(seed)
    chars = list(string.ascii_lowercase + string.digits + " -'")
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    vocab.update({c: len(vocab) + i for i, c in enumerate(chars)})
    vocab.update({c + "</w>": len(vocab) + i for i, c in enumerate(chars)})
    layers = dict(hidden_size=width, intermediate_size=2 * width, num_hidden_layers=2,
                  num_attention_heads=2)
    cfg = CLIPConfig(
        text_config=dict(vocab_size=len(vocab), max_position_embeddings=32, bos_token_id=0,
                         eos_token_id=1, pad_token_id=1, **layers),
        vision_config=dict(image_size=image_size, patch_size=image_size // 4, **layers),
        projection_dim=width // 2)
    CLIPModel(cfg).save_pretrained(path)
    CLIPTokenizer(vocab=vocab, merges=[]).save_pretrained(path)
    return path


def export_onnx(module, path: Path, input_shape: tuple[int, ...] = (1, 1, 28, 28)) -> Path:
    """Export a torch module to ONNX with a dynamic batch axis (input ``x``, output ``logits``)."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (torch.zeros(*input_shape),), str(path),
                          input_names=["x"], output_names=["logits"],
                          dynamic_axes={"x": {0: "n"}}, dynamo=False)
    return path


def link_or_copy(src: str, dst: str) -> None:
    """Hard-link ``src`` to ``dst`` (a copy across file systems): for files written once, by rename."""
    import os
    import shutil

    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def backup_sqlite(source: Path, target: Path) -> None:
    """A consistent copy of a live SQLite database, write-ahead log included."""
    import sqlite3

    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        with dst:
            src.backup(dst)
    finally:
        src.close()
        dst.close()


def hub_view(source: Path, dest: Path, writable: tuple[str, ...] = ()) -> Path:
    """A private hub at ``dest`` over the labelled hub ``source``, cheap in time and space.

    Directories named in ``writable`` (e.g. artifacts, labels) are hard-linked copies the view may
    add to (files there are written once, by rename); the rest are symlinks, only read. The
    databases are copied, so migrations and writes in the view never touch ``source``.
    """
    import shutil

    dest.mkdir(parents=True)
    for name in ("artifacts", "corpus", "graph", "labels"):
        if name in writable:
            shutil.copytree(source / name, dest / name, copy_function=link_or_copy)
        else:
            (dest / name).symlink_to(source / name, target_is_directory=True)
    (dest / "cache").mkdir()
    (dest / "cache" / "features").symlink_to(source / "cache" / "features",
                                             target_is_directory=True)
    if (source / "cache" / "text.sqlite").exists():
        backup_sqlite(source / "cache" / "text.sqlite", dest / "cache" / "text.sqlite")
    backup_sqlite(source / "mll.db", dest / "mll.db")
    return dest
