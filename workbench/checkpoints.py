"""Checkpoints that can be trusted: a damaged one is named before a resume, and a save that failed (a full
disk, an unwritable folder) leaves no half-written checkpoint and one clear message.

HF writes trainer_state.json last, so a checkpoint without it is unfinished (runs.latest_checkpoint
skips those).
"""

from __future__ import annotations

import errno
import json
import shutil
import zipfile
from pathlib import Path

from workbench import runs
from workbench.errors import RunError, WorkbenchError


def verify(checkpoint: Path) -> None:
    """A clear error naming the file when a checkpoint is cut short (a killed or out-of-space save).

    Cheap structural checks only (zip directory, safetensors header, JSON): nothing is loaded.
    """
    for file in sorted(checkpoint.iterdir()):
        problem = _damage(file)
        if problem:
            raise RunError(f"the checkpoint {checkpoint} is damaged: {file.name} {problem}. Delete {checkpoint} "
                           "to resume from the one before it, or start a new run")  # fmt: skip


def _damage(file: Path) -> str | None:
    try:
        if file.suffix in (".pt", ".pth", ".bin"):
            zipfile.ZipFile(file).close()  # torch.save writes a zip; a cut file has no central directory
        elif file.suffix == ".safetensors":
            with file.open("rb") as f:
                size = int.from_bytes(f.read(8), "little")
                header = json.loads(f.read(size))
            end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
            if file.stat().st_size < 8 + size + end:
                return "is shorter than its header says"
        elif file.suffix == ".json":
            json.loads(file.read_text(encoding="utf-8"))
    except (zipfile.BadZipFile, ValueError, KeyError, OSError) as error:
        return f"cannot be read ({type(error).__name__}: {error})"
    return None


def discard_partial(run: runs.Run) -> list[Path]:
    """Remove checkpoints whose save did not complete (no trainer_state.json, written last)."""
    partial = [p for p in run.checkpoints.glob("checkpoint-*") if not (p / "trainer_state.json").is_file()]
    for path in partial:
        shutil.rmtree(path, ignore_errors=True)
    return partial


WRITE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS)


def explain_failed_write(error: BaseException, run: runs.Run) -> BaseException:
    """Turn a full disk or an unwritable folder met while training into one clear RunError."""
    if not isinstance(error, OSError | RuntimeError) or isinstance(error, WorkbenchError):
        return error
    text = str(error)
    if isinstance(error, OSError) and error.errno in WRITE_ERRORS:
        os_error = error
    elif "No space left" in text or "unexpected pos" in text:  # torch.save's zip writer on a full disk
        os_error = OSError(errno.ENOSPC, "No space left on device")
    else:
        return error
    last = runs.latest_checkpoint(run.path)
    needs = f"about {_mb(last):,.0f} MB" if last else f"more than the {_mb(run.checkpoints):,.0f} MB it wrote"
    partial = discard_partial(run)
    removed = (
        f"; the unfinished checkpoint ({', '.join(p.name for p in partial)}) was removed" if partial else ""
    )
    return RunError(f"writing {run.path} failed: {runs.cant_write(run.path, os_error)}{removed}. "
                    f"A checkpoint of this run needs {needs}")  # fmt: skip


def _mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20 if folder.exists() else 0.0
