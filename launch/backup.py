"""``hotline backup`` and ``hotline restore``: the centre's whole state, online and consistent.

A backup is one folder (``var/backups/hotline-<UTC time>/`` unless told where):

* ``database.sqlite`` — SQLite's own online backup API (a consistent snapshot while the app keeps
  writing), or ``database.pgdump`` — ``pg_dump --format=custom`` (one transaction: consistent);
* ``recordings/`` — the files **the snapshot refers to**, each checked against the checksum the
  catalog recorded when it took it in (a file changed or lost since is reported, not copied);
  recordings are never rewritten once catalogued, so copying them after the snapshot is safe;
  a recording catalogued after the snapshot is simply not in this backup;
* ``attachments/`` — the ticket attachments the snapshot refers to, checked the same way;
* ``secrets/`` — the AMI secret and the SIP lines' passwords (the folder is 0700, files 0600);
* ``manifest.json`` — when, from what, counts, and every file's SHA-256.

``hotline restore FOLDER`` puts it back into the configured (empty) var directory and database:
the manifest's checksums are verified first, recordings' stored paths are rewritten to the new
storage folder, and the counts are compared with the manifest's. It refuses a target that already
holds tickets unless forced.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from hotline.db import make_engine
from hotline.settings import Settings
from recordings.integrity import sha256_of  # the one place a file's checksum is computed

FORMAT = 1
COUNTED = ("ticket", "ticket_event", "call_record", "recording", "recording_file", "attachment", "account")


class BackupError(RuntimeError):
    """A backup or a restore that cannot be done as asked; the message says why (Chinese)."""


@dataclass
class Outcome:
    folder: Path
    counts: dict[str, int]
    files: int
    problems: list[str] = field(default_factory=list)


def _sqlite_path(url: str) -> Path | None:
    return Path(url.split("///", 1)[-1]) if url.startswith("sqlite") else None


def _pg_tool(name: str) -> str:
    """pg_dump / pg_restore: on PATH, or Debian's versioned folder (the postgresql package)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)
    if not candidates:
        raise BackupError(f"找不到 {name}：请安装 postgresql-client")
    return str(candidates[0])


def _pg_url(url: str) -> str:
    """The libpq form of the database URL (``postgresql+psycopg://`` is SQLAlchemy's)."""
    return "postgresql://" + url.split("://", 1)[1]


def _counts(engine: sa.Engine) -> dict[str, int]:
    names = set(sa.inspect(engine).get_table_names())
    with engine.connect() as conn:
        return {t: int(conn.execute(sa.text(f'SELECT count(*) FROM "{t}"')).scalar_one())
                for t in COUNTED if t in names}


def _referenced(engine: sa.Engine) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(recording files, attachments) the snapshot refers to: (stored path, sha256)."""
    names = set(sa.inspect(engine).get_table_names())
    with engine.connect() as conn:
        recs = [(str(p), str(h or "")) for p, h in conn.execute(sa.text(
            "SELECT path, sha256 FROM recording_file WHERE status = 'ok' AND path <> ''"))] \
            if "recording_file" in names else []
        atts = [(str(p), str(h or "")) for p, h in conn.execute(sa.text("SELECT path, sha256 FROM attachment"))] \
            if "attachment" in names else []
    return recs, atts


def backup(settings: Settings, to: Path | None = None) -> Outcome:
    """An online, consistent backup of the database, the recordings and attachments it refers to,
    and the secrets."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    folder = Path(to) if to else settings.var_dir / "backups" / f"hotline-{stamp}"
    if folder.exists() and any(folder.iterdir()):
        raise BackupError(f"备份目录不是空的：{folder}")
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)  # it holds the secrets and citizens' data
    url = settings.db_url
    sqlite = _sqlite_path(url)
    if sqlite is not None:
        if not sqlite.is_file():
            raise BackupError(f"数据库文件不存在：{sqlite}")
        db_file = folder / "database.sqlite"
        with sqlite3.connect(f"file:{sqlite}?mode=ro", uri=True) as src, sqlite3.connect(db_file) as dst:
            src.backup(dst)  # page by page, consistent while others write
        snapshot = sa.create_engine(f"sqlite:///{db_file}")  # plain: no pragma may touch the copy
    else:
        db_file = folder / "database.pgdump"
        done = subprocess.run([_pg_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={db_file}",
                               _pg_url(url)], capture_output=True, text=True, timeout=3600)
        if done.returncode != 0:
            raise BackupError(f"pg_dump 失败：{done.stderr.strip()[-500:]}")
        snapshot = make_engine(url)  # counts and references from the live database (a little newer: fine)
    try:
        counts = _counts(snapshot)
        recs, atts = _referenced(snapshot)
    finally:
        snapshot.dispose()
    files: dict[str, str] = {db_file.name: sha256_of(db_file)}
    problems: list[str] = []
    storage = _storage(settings)
    for stored, expected in recs:
        source = Path(stored)
        rel = _relative(source, storage)
        _copy_checked(source, folder / "recordings" / rel, expected, files, f"recordings/{rel}", problems)
    for stored, expected in atts:
        _copy_checked(settings.attachments_path / stored, folder / "attachments" / stored, expected, files,
                      f"attachments/{stored}", problems)
    if settings.secrets_dir.is_dir():
        for path in sorted(p for p in settings.secrets_dir.rglob("*") if p.is_file() and not p.name.startswith(".")):
            rel = path.relative_to(settings.secrets_dir).as_posix()
            _copy_checked(path, folder / "secrets" / rel, "", files, f"secrets/{rel}", problems)
        if (folder / "secrets").is_dir():
            (folder / "secrets").chmod(0o700)
    manifest = {"format": FORMAT, "created_at": datetime.now(UTC).isoformat(), "database": db_file.name,
                "recordings_root": str(storage), "counts": counts, "files": files, "problems": problems}
    (folder / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1))
    return Outcome(folder, counts, len(files), problems)


def _storage(settings: Settings) -> Path:
    from recordings.catalog import storage_dir  # the catalog decides where recordings live

    return storage_dir(settings)


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:  # stored outside today's storage folder (it moved): keep its own name and folders
        return path.as_posix().lstrip("/")


def _copy_checked(source: Path, target: Path, expected: str, files: dict[str, str], key: str,
                  problems: list[str]) -> None:
    if not source.is_file():
        problems.append(f"文件缺失，未备份：{source}")
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)
    digest = sha256_of(target)
    if expected and digest != expected:
        target.unlink()
        problems.append(f"文件与入库时的校验值不符，未备份：{source}")
        return
    if key.startswith("secrets/"):
        target.chmod(0o600)
    files[key] = digest


def restore(settings: Settings, folder: Path, *, force: bool = False) -> Outcome:
    """Put a backup back into the configured var directory and database (which must hold no tickets)."""
    manifest_path = Path(folder) / "manifest.json"
    if not manifest_path.is_file():
        raise BackupError(f"不是 hotline 备份（缺少 manifest.json）：{folder}")
    manifest: dict[str, Any] = json.loads(manifest_path.read_text())
    if manifest.get("format") != FORMAT:
        raise BackupError(f"备份格式 {manifest.get('format')} 不受支持")
    for key, digest in manifest["files"].items():  # all or nothing: check every file before writing any
        path = Path(folder) / key
        if not path.is_file() or sha256_of(path) != digest:
            raise BackupError(f"备份文件缺失或已损坏：{key}")
    url = settings.db_url
    sqlite = _sqlite_path(url)
    target = make_engine(url)
    try:
        if not force and _counts(target).get("ticket"):
            raise BackupError("目标数据库中已有工单：恢复会覆盖它们（确需恢复请加 --force）")
    finally:
        target.dispose()
    db_file = Path(folder) / manifest["database"]
    if (sqlite is None) != (db_file.suffix == ".pgdump"):
        raise BackupError("备份的数据库类型与当前配置（HOTLINE_DATABASE_URL）不一致")
    if sqlite is not None:
        sqlite.parent.mkdir(parents=True, exist_ok=True)
        for leftover in (sqlite, sqlite.with_name(sqlite.name + "-wal"), sqlite.with_name(sqlite.name + "-shm")):
            leftover.unlink(missing_ok=True)
        with sqlite3.connect(db_file) as src, sqlite3.connect(sqlite) as dst:
            src.backup(dst)
    else:
        done = subprocess.run([_pg_tool("pg_restore"), "--clean", "--if-exists", "--no-owner",
                               f"--dbname={_pg_url(url)}", str(db_file)], capture_output=True, text=True, timeout=3600)
        if done.returncode != 0:
            raise BackupError(f"pg_restore 失败：{done.stderr.strip()[-500:]}")
    storage = _storage(settings)
    for key in manifest["files"]:
        for part, root in (("recordings/", storage), ("attachments/", settings.attachments_path),
                           ("secrets/", settings.secrets_dir)):
            if key.startswith(part):
                dest = root / key[len(part):]
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(Path(folder) / key, dest)
                if part == "secrets/":
                    dest.chmod(0o600)
                    for up in (dest.parent, settings.secrets_dir):
                        up.chmod(0o700)
    engine = make_engine(url)
    try:
        old_root = manifest["recordings_root"].rstrip("/") + "/"
        with engine.begin() as conn:  # the catalog stores full paths: they follow the storage folder
            conn.execute(sa.text("UPDATE recording_file SET path = :new || substr(path, :n) WHERE path LIKE :old"),
                         {"new": str(storage).rstrip("/") + "/", "n": len(old_root) + 1, "old": old_root + "%"})
        counts = _counts(engine)
    finally:
        engine.dispose()
    problems = [f"{t}: 备份中 {n} 行，恢复后 {counts.get(t)} 行" for t, n in manifest["counts"].items()
                if counts.get(t) != n]
    return Outcome(Path(folder), counts, len(manifest["files"]), problems)
