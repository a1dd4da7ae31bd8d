"""Uploaded models, checked before a job is queued: staged under names mll chooses.

An upload's file name is hostile input: only its suffix is read, and only when it is one of a few
known suffixes; the bytes are written to ``<hub>/uploads/<job id>/model<suffix>``. The checks of
``mll hub add`` that need no model code run here, in the request, so a bad upload is refused at
once with one line (never unpickled: pickles are refused by name and by their bytes; size limits;
zip bombs, links and paths that would leave the directory refused); packing, the probe run and
labelling run in the job.
"""

from __future__ import annotations

import re
import shutil
import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from .. import limits as _limits
from .._safepath import child_path, create_new
from ..errors import InvalidParameterError, LimitExceededError, UnsafeFormatError
from ..hub.safety import PICKLE_SUFFIXES, refuse_unsafe

#: Suffixes an uploaded weights file may have: a file a family reads, or a zip of a directory.
UPLOAD_SUFFIXES = (".onnx", ".safetensors", ".zip")
MAX_ZIP_MEMBERS = 1000
_CHUNK = 1 << 20
_RATIO_FLOOR = 1 << 20  # smaller members may compress well (JSON, tokenizers) without harm
_SUFFIX = re.compile(r"\.[a-z0-9]{1,12}")


def uploads_dir(hub_root: Path) -> Path:
    return Path(hub_root) / "uploads"


def staging_dir(hub_root: Path, job_id: str) -> Path:
    """Where a job's upload is kept until the job ends (``job_id`` is chosen by mll)."""
    return child_path(uploads_dir(hub_root), job_id, "job id")


def _suffix(filename: str) -> str:
    """The known suffix of an uploaded file's name, or a clear refusal."""
    suffix = Path(filename or "").suffix.lower()
    if not _SUFFIX.fullmatch(suffix):
        suffix = ""
    if suffix in PICKLE_SUFFIXES:
        return suffix  # refused by refuse_unsafe, with the safe formats named
    if suffix not in UPLOAD_SUFFIXES:
        raise InvalidParameterError(
            f"uploaded weights {filename[:80]!r}: the file must be .onnx, .safetensors, or a .zip "
            "of a model directory (model.safetensors + config.json, or a Hugging Face CLIP "
            "folder)")
    return suffix


def copy_bounded(src: BinaryIO, dest: Path, max_bytes: int, what: str) -> int:
    """Stream ``src`` into the new file ``dest``, refused once it passes ``max_bytes``; returns
    the bytes written (the sender's declared size is never trusted)."""
    n = 0
    with create_new(dest) as out:
        while block := src.read(_CHUNK):
            n += len(block)
            if n > max_bytes:
                raise LimitExceededError(
                    f"{what} is over the upload limit of {max_bytes / 1e6:.1f} MB")
            out.write(block)
    return n


def stage(staging: Path, filename: str, src: BinaryIO, max_bytes: int) -> Path:
    """Write an upload into ``staging`` and check it; returns the model path ``hub.add`` takes.

    On any refusal the staging directory is removed and the error raised.
    """
    suffix = _suffix(filename)
    staging.mkdir(parents=True, exist_ok=False)
    try:
        path = staging / f"model{suffix}"
        what = f"uploaded weights {filename[:80]!r}"
        if copy_bounded(src, path, max_bytes, what) == 0:
            raise InvalidParameterError(f"{what} is empty; not a model file")
        try:
            refuse_unsafe(path)
        except UnsafeFormatError as exc:
            raise UnsafeFormatError(f"uploaded weights {filename[:80]!r}: {exc}") from None
        if suffix == ".zip":
            folder = staging / "model"
            unpack(path, folder, max_bytes)
            path.unlink()
            return folder
        return path
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _members(zf: zipfile.ZipFile, path_name: str) -> Iterator[tuple[zipfile.ZipInfo, str]]:
    """Each file member with the plain name it is written under; a clear error for the rest."""
    infos = [i for i in zf.infolist() if not i.is_dir()]
    if not infos:
        raise InvalidParameterError(f"{path_name} holds no files")
    if len(infos) > MAX_ZIP_MEMBERS:
        raise LimitExceededError(f"{path_name} holds {len(infos)} files; a model directory has "
                                 f"at most {MAX_ZIP_MEMBERS}")
    parts = [i.filename.split("/") for i in infos]
    top = {p[0] for p in parts}
    strip = len(top) == 1 and all(len(p) == 2 for p in parts)  # one folder zipped whole
    for info, p in zip(infos, parts, strict=True):
        if stat.S_ISLNK(info.external_attr >> 16):
            raise UnsafeFormatError(f"{path_name}: member {info.filename!r} is a symbolic link; "
                                    "a model directory holds only files")
        if ("\\" in info.filename or (len(p) - strip) != 1
                or any(part in ("", ".", "..") for part in p)):
            raise InvalidParameterError(
                f"{path_name}: member {info.filename!r} is not a plain file of the model "
                "directory (zip the directory's files, or the directory itself)")
        yield info, p[-1]


def unpack(path: Path, folder: Path, max_bytes: int) -> None:
    """Unpack a zipped model directory into ``folder``: names checked, sizes bounded as the bytes
    inflate (so a member that lies about its size stops at the limit), pickles refused."""
    lim = _limits.current()
    if not zipfile.is_zipfile(path):
        raise InvalidParameterError("the uploaded .zip is not a zip archive")
    folder.mkdir()
    total = 0
    with zipfile.ZipFile(path) as zf:
        for info, name in _members(zf, "the uploaded zip"):
            target = child_path(folder, name, "zip member name")
            what = f"the uploaded zip: member {info.filename!r}"
            _limits.check(f"{what}: declared size", info.file_size, "max_model_bytes", lim)
            if info.file_size > _RATIO_FLOOR:
                _limits.check(f"{what}: compression ratio",
                              info.file_size / max(info.compress_size, 1), "max_zip_ratio", lim)
            n = 0
            with zf.open(info) as src, create_new(target) as out:
                while block := src.read(_CHUNK):
                    n += len(block)
                    total += len(block)
                    _limits.check(f"{what}: unpacked size", n, "max_model_bytes", lim)
                    if n > _RATIO_FLOOR:
                        _limits.check(f"{what}: compression ratio",
                                      n / max(info.compress_size, 1), "max_zip_ratio", lim)
                    if total > max_bytes:
                        raise LimitExceededError(f"the uploaded zip unpacks to over the upload "
                                                 f"limit of {max_bytes / 1e6:.1f} MB")
                    out.write(block)
            try:
                refuse_unsafe(target)
            except UnsafeFormatError as exc:
                raise UnsafeFormatError(f"the uploaded zip: {exc}") from None
