"""The speech models a centre has installed, and which one is active: ``<var>/models/installed.json``.

A centre downloads its Chinese Vosk model once, as a zip, and installs it with
``hotline model install FILE`` (launch/model_cli.py), which unpacks it into ``<var>/models/<name>``
and records it here. :func:`recordings.transcribe.model_path` then finds the active one: the
transcription workers and the live-transcription service load the same model without anyone
setting ``HOTLINE_VOSK_MODEL_PATH`` by hand (that setting, when given, still wins).

The index is small JSON, rewritten whole and atomically (a temporary file, fsync, rename): a
reader sees the old index or the new one, never half of one. Writers take a lock on
``<var>/models/.lock`` so that two installs at once do not lose each other's entry.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

INDEX = "installed.json"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")  # a folder name: no path, nothing hidden


class IndexUnreadable(ValueError):
    """installed.json exists but is not a readable index: better to stop than to fall back quietly
    to another model (a centre would get Korean transcripts of Chinese calls)."""


class UnknownModel(KeyError):
    def __str__(self) -> str:
        return f"没有名为 {self.args[0]} 的已安装模型（no installed model named {self.args[0]}）"


def models_dir(settings: Any) -> Path:
    return Path(settings.var_dir) / "models"


def index_path(settings: Any) -> Path:
    return models_dir(settings) / INDEX


def empty() -> dict[str, Any]:
    return {"active": None, "models": {}}


def read(settings: Any) -> dict[str, Any]:
    """The index: ``{"active": name | None, "models": {name: entry}}``; empty when none was written."""
    path = index_path(settings)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return empty()
    except (OSError, ValueError) as exc:
        raise IndexUnreadable(f"{path} 无法读取（unreadable）：{exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise IndexUnreadable(f"{path} 格式不对（not a model index）")
    if data.get("active") is not None and data["active"] not in data["models"]:
        raise IndexUnreadable(f"{path}：启用的模型 {data['active']} 不在列表中（active model not listed）")
    return data


def installed_path(settings: Any, name: str) -> Path:
    """Where an installed model lives. Derived from the var dir, not the recorded path, so a var
    dir restored elsewhere (hotline restore) still finds its models."""
    return models_dir(settings) / name


def active_path(settings: Any) -> Path | None:
    """The active installed model's folder, or None when nothing is installed or active."""
    if getattr(settings, "var_dir", None) is None:
        return None
    active = read(settings).get("active")
    return installed_path(settings, active) if active else None


def write(settings: Any, index: dict[str, Any]) -> None:
    """Replace the index atomically (callers hold :func:`locked`)."""
    path = index_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".installed-", suffix=".json", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide it from workers running as another user
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(index, f, ensure_ascii=False, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    # the rename itself made durable: a crash right after must not bring the old index back
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@contextlib.contextmanager
def locked(settings: Any) -> Iterator[None]:
    """One writer of the models folder at a time (install, use)."""
    folder = models_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def record(settings: Any, entry: dict[str, Any], *, activate: bool) -> dict[str, Any]:
    """Add (or replace) one model's entry, making it active if asked; returns the new index."""
    if not NAME.match(entry["name"]):
        raise ValueError(f"模型名称不合法（invalid model name）：{entry['name']!r}")
    with locked(settings):
        index = read(settings)
        index["models"][entry["name"]] = entry
        if activate:
            index["active"] = entry["name"]
        write(settings, index)
    return index


def activate(settings: Any, name: str) -> dict[str, Any]:
    """Make an installed model the active one; returns the new index."""
    with locked(settings):
        index = read(settings)
        if name not in index["models"]:
            raise UnknownModel(name)
        index["active"] = name
        write(settings, index)
    return index
