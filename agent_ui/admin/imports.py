"""导入历史工单: the admin brings the centre's finished tickets over from its previous system in the
browser, as ``hotline tickets import FILE`` does on the command line (launch/tickets_cli.py).

The admin uploads a JSON lines file (one ticket a line, the fields of
:class:`ticketing.importer.TicketImport`); the body is streamed to ``var/imports/<id>.jsonl``, never
held in memory, and refused past :data:`MAX_BYTES`, or when it is not a ``.jsonl`` file of JSON
objects. 检查 runs the importer's dry run, 导入 the import; both run in a background thread (a
million lines take minutes) while the page polls the upload's status: bytes and lines read, the
counts of the last finished batch, the first 100 bad lines. One job at a time per server (a
second is a 409); an import needs a finished check of the same upload, or the admin's explicit
``unchecked``. The import is audited (``ticket_import``) as the CLI's is. A file is deleted once it
is imported, any upload a day after it came (the registry lives in this process: files left by an
earlier run are swept by age).
"""

from __future__ import annotations

import heapq
import logging
import os
import secrets
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, BinaryIO, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from accounts.audit import AuditLog
from agent_ui.auth import client_of
from agent_ui.pages import templates
from hotline.identity import Principal, Role, require_roles
from hotline.params import NUL_REFUSAL
from ticketing.importer import ImportReport
from ticketing.store import Store

log = logging.getLogger(__name__)
router = APIRouter(tags=["导入历史工单"])
Admins = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
UploadId = Annotated[str, PathParam(pattern=r"^[0-9a-f]{16}$", description="上传文件的编号")]

MAX_BYTES = 2 * 2**30  # a million tickets with their texts are about 1 GB
KEEP = timedelta(days=1)  # an upload nobody imports is deleted after this
MAX_UPLOADS = 10  # waiting uploads per server (each may be large)
DISK_RESERVE = 256 * 2**20  # what an upload must leave free on the disk of var/
LINE_MAX = 2**20  # a longer line is cut and reported as invalid, never read whole into memory
CHUNK = 2**20  # written to disk in pieces of this size
HEAD = 4096  # the bytes that decide whether the upload is JSON lines at all
ERRORS_SHOWN = 100
BOM = b"\xef\xbb\xbf"
STATE = "ticket_imports"  # the desk's name on app.state


def _now() -> datetime:
    return datetime.now(UTC)


def _size_label(n: int) -> str:
    return f"{n / 2**30:g} GB" if n >= 2**30 else f"{n / 2**20:g} MB" if n >= 2**20 else f"{n} 字节"


@dataclass
class Job:
    """One run of the importer over an upload (检查 or 导入) and its progress."""

    kind: Literal["check", "import"]
    by: str
    size: int
    started_at: datetime = field(default_factory=_now)
    state: Literal["running", "done", "failed"] = "running"
    bytes_read: int = 0  # counted by the line reader as it goes
    lines: int = 0
    read: int = 0  # the counts below are the importer's, at its last finished batch
    imported: int = 0
    already_present: int = 0
    rejected: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    finished_at: datetime | None = None
    failure: str = ""

    def take(self, report: ImportReport) -> None:
        """The importer's counts (its progress callback, in the job's thread)."""
        self.read, self.imported, self.already_present = report.read, report.imported, report.already_present
        self.rejected = report.rejected
        self.errors = heapq.nsmallest(ERRORS_SHOWN, report.errors)  # a duplicate number is found a batch later

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "by": self.by, "state": self.state, "size": self.size,
                "bytes_read": self.bytes_read, "lines": self.lines, "read": self.read, "imported": self.imported,
                "already_present": self.already_present, "rejected": self.rejected,
                "errors": [{"line": n, "reason": r.replace("请求体", "此行")} for n, r in self.errors],
                "more_errors": self.rejected > len(self.errors), "started_at": self.started_at.isoformat(),
                "finished_at": self.finished_at.isoformat() if self.finished_at else None, "failure": self.failure}


@dataclass
class Upload:
    id: str
    name: str
    path: Path
    size: int
    by: str
    at: datetime = field(default_factory=_now)
    check: Job | None = None
    run: Job | None = None  # the import
    removed: bool = False  # the file is gone (imported); the counts stay to be seen

    @property
    def checked(self) -> bool:
        return self.check is not None and self.check.state == "done"

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "size": self.size, "uploaded_by": self.by,
                "uploaded_at": self.at.isoformat(), "checked": self.checked, "removed": self.removed,
                "check": self.check.as_dict() if self.check else None,
                "import": self.run.as_dict() if self.run else None}


class Desk:
    """This server's uploads and its one running job."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.uploads: dict[str, Upload] = {}
        self.busy: Upload | None = None
        self.lock = threading.Lock()
        self.timers: dict[str, threading.Timer] = {}

    def add(self, upload: Upload) -> None:
        with self.lock:
            self.uploads[upload.id] = upload
            timer = self.timers[upload.id] = threading.Timer(KEEP.total_seconds() + 60, self.sweep)
        timer.daemon = True
        timer.start()

    def get(self, upload_id: str) -> Upload:
        found = self.uploads.get(upload_id)
        if found is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "没有这个上传文件（上传超过一天会被删除）：请重新上传")
        return found

    def start(self, upload: Upload, job: Job, work: Callable[[Upload, Job], None]) -> None:
        """Run ``work`` in its own thread, unless a job is running already (409)."""
        with self.lock:
            if self.busy is not None:
                running = self.busy.run if self.busy.run and self.busy.run.state == "running" else self.busy.check
                what = "导入" if running and running.kind == "import" else "检查"
                raise HTTPException(status.HTTP_409_CONFLICT,
                                    f"已有一项{what}正在进行（{self.busy.name}，{running.by if running else ''}）："
                                    "同一时间只能运行一项导入或检查，请等它结束后再试")
            self.busy = upload
            if job.kind == "check":
                upload.check = job
            else:
                upload.run = job
        threading.Thread(target=work, args=(upload, job), name=f"ticket-{job.kind}-{upload.id}", daemon=True).start()

    def finish(self, upload: Upload, *, delete: bool) -> None:
        """The job of ``upload`` is over; ``delete``: its file goes (imported), before anyone may start another."""
        with self.lock:
            if delete:
                self._remove(upload, forget=False)
            self.busy = None

    def listed(self) -> list[Upload]:
        with self.lock:
            return sorted(self.uploads.values(), key=lambda u: u.at, reverse=True)

    def waiting(self) -> int:
        with self.lock:
            return sum(1 for u in self.uploads.values() if not u.removed)

    def drop(self, upload: Upload, *, forget: bool) -> None:
        """Delete the upload's file; ``forget`` also its entry (its counts are no longer shown)."""
        with self.lock:
            if self.busy is upload:
                raise HTTPException(status.HTTP_409_CONFLICT, "此文件正在检查或导入，请等它结束")
            self._remove(upload, forget=forget)

    def _remove(self, upload: Upload, *, forget: bool) -> None:  # under the lock
        upload.path.unlink(missing_ok=True)
        upload.removed = True
        timer = self.timers.pop(upload.id, None)
        if timer:
            timer.cancel()
        if forget:
            self.uploads.pop(upload.id, None)

    def sweep(self) -> None:
        """Uploads older than :data:`KEEP` go (file and entry), unless their job runs; so do files
        and partial uploads an earlier run of the server left behind."""
        cutoff = _now() - KEEP
        with self.lock:
            for u in [u for u in self.uploads.values() if u.at < cutoff and u is not self.busy]:
                self._remove(u, forget=True)
            known = {u.path for u in self.uploads.values()}
        if self.folder.is_dir():
            for p in self.folder.iterdir():
                try:
                    if p not in known and datetime.fromtimestamp(p.stat().st_mtime, UTC) < cutoff:
                        p.unlink()
                except OSError:  # gone meanwhile, or not ours to delete: the next sweep tries again
                    continue


def _desk(request: Request) -> Desk:
    desk = getattr(request.app.state, STATE, None)
    if desk is None:  # no await between the look and the set: one desk per app
        desk = Desk(request.app.state.settings.var_dir / "imports")
        setattr(request.app.state, STATE, desk)
    return desk


def _lines(path: Path, job: Job) -> Iterator[bytes]:
    """The file's lines for the importer, counting the bytes read; an empty line is reported as
    the CLI reports it, a line longer than :data:`LINE_MAX` is cut (and so reported as invalid)."""
    with path.open("rb") as f:
        first = True
        while raw := f.readline(LINE_MAX + 1):
            job.bytes_read += len(raw)
            if len(raw) > LINE_MAX and not raw.endswith(b"\n"):
                while rest := f.readline(CHUNK):
                    job.bytes_read += len(rest)
                    if rest.endswith(b"\n"):
                        break
                raw = raw[:LINE_MAX]
            if first:
                raw, first = raw.removeprefix(BOM), False
            job.lines += 1
            yield raw.strip() or b"{}"


def _work(desk: Desk, store: Store, audit: AuditLog, who: Principal, client: str) -> Callable[[Upload, Job], None]:
    """What the job's thread does: the importer over the upload, then the audit and the clean-up."""

    def work(upload: Upload, job: Job) -> None:
        outcome: Literal["done", "failed"] = "failed"
        try:
            report = store.imports.tickets(_lines(upload.path, job), who, dry_run=job.kind == "check",
                                           progress=job.take)
            job.take(report)
            outcome = "done"
        except Exception as exc:  # the page says what went wrong; the server goes on
            log.exception("ticket %s of %s failed", job.kind, upload.name)
            job.failure = f"{'导入' if job.kind == 'import' else '检查'}中断：{exc}"[:500]
        finally:
            job.finished_at = _now()
            if job.kind == "import":
                _audit(audit, who, client, upload, job, outcome)
            desk.finish(upload, delete=job.kind == "import" and outcome == "done")
            job.state = outcome  # last: whoever sees "done" may start the next job at once
        _quietly(desk.sweep)

    return work


def _audit(audit: AuditLog, who: Principal, client: str, upload: Upload, job: Job, outcome: str) -> None:
    detail = f"导入 {job.imported}，已存在 {job.already_present}，有误 {job.rejected}"
    if outcome != "done":
        detail += f"；{job.failure}"
    _quietly(audit.record, who.username, "ticket_import", upload.name[:64], detail[:500], client)


def _quietly(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    try:
        fn(*args, **kwargs)
    except Exception:  # a background thread has nobody to answer: the log says it
        log.exception("ticket import: %s failed", getattr(fn, "__name__", fn))


# --- the page and its API ---------------------------------------------------------------------


@router.get("/admin/imports", response_class=HTMLResponse)
async def imports_page(request: Request, principal: Admins) -> HTMLResponse:
    return templates.TemplateResponse(request, "admin/imports.html", {
        "user": principal, "settings": request.app.state.settings, "active": "imports",
        "max_bytes": MAX_BYTES, "max_label": _size_label(MAX_BYTES)})


@router.get("/api/admin/imports", summary="最近一天的上传文件及其检查、导入进度")
async def uploads(request: Request, _principal: Admins) -> dict[str, Any]:
    """The uploads of the last day, newest first, and which one has a job running."""
    desk = _desk(request)
    await run_in_threadpool(desk.sweep)
    return {"uploads": [u.as_dict() for u in desk.listed()], "busy": desk.busy.id if desk.busy else None,
            "max_bytes": MAX_BYTES}


def _looks_like_json_lines(head: bytes) -> str | None:
    """Why these first bytes are not a file of JSON objects, or None."""
    if b"\x00" in head:
        return "文件内容不是文本：请上传 UTF-8 编码的 JSON lines 文件（每行一张工单的 JSON 对象）"
    start = head.removeprefix(BOM).lstrip()
    if not start:
        return "文件开头没有内容（只有空白）：请选择原系统导出的 .jsonl 文件"
    if not start.startswith(b"{"):
        return "文件内容不是 JSON lines：每行应是一张工单的 JSON 对象（以 { 开头），例如原系统导出的 .jsonl 文件"
    return None


RAW_FILE = {"requestBody": {
    "required": True, "description": "the file itself: JSON lines, one ticket a line (TicketImport)",
    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}


@router.post("/api/admin/imports", status_code=status.HTTP_201_CREATED, summary="上传历史工单文件（.jsonl）",
             openapi_extra=RAW_FILE)
async def upload(request: Request, principal: Admins,
                 name: Annotated[str, Query(min_length=1, max_length=200, description="文件名（.jsonl）")]) -> Any:
    """The request body is the file itself (any content type), streamed to disk."""
    if "\x00" in name:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, NUL_REFUSAL)
    if not name.lower().endswith(".jsonl"):
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                            "只能导入 .jsonl 文件（JSON lines：每行一张工单的 JSON 对象）")
    declared = request.headers.get("content-length", "")
    declared_size = int(declared) if declared.isdigit() and len(declared) <= 15 else None
    if len(declared) > 15 or (declared_size or 0) > MAX_BYTES:
        raise _too_big()
    desk = _desk(request)
    part = await run_in_threadpool(_prepare, desk, declared_size or 0)
    try:
        with await run_in_threadpool(_open_private, part) as f:
            size = await _receive(request, f)
        if size == 0:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "文件是空的：请选择原系统导出的 .jsonl 文件")
        path = await run_in_threadpool(part.rename, part.with_suffix(".jsonl"))
    except BaseException:
        await run_in_threadpool(part.unlink, missing_ok=True)
        raise
    up = Upload(part.stem, Path(name.replace("\\", "/")).name[:120] or "import.jsonl", path, size,
                principal.username)
    desk.add(up)
    return up.as_dict()


def _too_big() -> HTTPException:
    return HTTPException(status.HTTP_413_CONTENT_TOO_LARGE,
                         f"文件过大：不能超过 {_size_label(MAX_BYTES)}，请拆成几个文件分别导入")


def _prepare(desk: Desk, declared: int) -> Path:
    """Where the next upload goes (``<id>.part`` until it is whole), once there is room for it."""
    desk.sweep()
    if desk.waiting() >= MAX_UPLOADS:
        raise HTTPException(status.HTTP_409_CONFLICT,
                            f"待处理的上传文件已有 {MAX_UPLOADS} 个：请先导入或放弃其中的文件")
    desk.folder.mkdir(mode=0o700, parents=True, exist_ok=True)  # citizens' numbers: for this server's user only
    if shutil.disk_usage(desk.folder).free < declared + DISK_RESERVE:
        raise HTTPException(status.HTTP_507_INSUFFICIENT_STORAGE, "服务器磁盘空间不足，无法保存此文件：请联系运维人员")
    return desk.folder / f"{secrets.token_hex(8)}.part"


def _open_private(path: Path) -> BinaryIO:
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")


async def _receive(request: Request, f: BinaryIO) -> int:
    """Stream the body into ``f``; refused when too big or not JSON lines (by its first bytes)."""
    size, buf, head_checked = 0, bytearray(), False
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BYTES:
            raise _too_big()
        buf += chunk
        if not head_checked and len(buf) >= HEAD:
            head_checked = True
            if why := _looks_like_json_lines(bytes(buf[:HEAD])):
                raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, why)
        if len(buf) >= CHUNK:
            await run_in_threadpool(f.write, bytes(buf))
            buf.clear()
    if size and not head_checked and (why := _looks_like_json_lines(bytes(buf))):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, why)
    await run_in_threadpool(f.write, bytes(buf))
    return size


@router.get("/api/admin/imports/{upload_id}", summary="上传文件的检查与导入进度")
async def upload_status(upload_id: UploadId, request: Request, _principal: Admins) -> dict[str, Any]:
    """What the page polls: the upload and its check and import, with their progress."""
    return _desk(request).get(upload_id).as_dict()


def _start(request: Request, principal: Principal, up: Upload, kind: Literal["check", "import"]) -> dict[str, Any]:
    state = request.app.state
    desk = _desk(request)
    if up.removed:
        raise HTTPException(status.HTTP_409_CONFLICT,
                            "此文件已导入并删除：如需再次导入，请重新上传（已导入的工单会跳过）")
    desk.start(up, Job(kind, principal.username, up.size),
               _work(desk, state.store, state.accounts.audit, principal, client_of(request)))
    return up.as_dict()


@router.post("/api/admin/imports/{upload_id}/check", status_code=status.HTTP_202_ACCEPTED, summary="检查（不写入）")
async def check(upload_id: UploadId, request: Request, principal: Admins) -> dict[str, Any]:
    """检查: every line validated as the import would, nothing written."""
    return _start(request, principal, _desk(request).get(upload_id), "check")


class ImportStart(BaseModel):
    unchecked: bool = False  # the admin confirmed importing without a check of this upload


@router.post("/api/admin/imports/{upload_id}/import", status_code=status.HTTP_202_ACCEPTED, summary="导入")
async def run_import(upload_id: UploadId, request: Request, principal: Admins,
                     start: ImportStart | None = None) -> dict[str, Any]:
    """导入: after a finished check of this upload, or with ``unchecked``; audited."""
    up = _desk(request).get(upload_id)
    if not up.checked and not (start and start.unchecked) and not up.removed:
        raise HTTPException(status.HTTP_409_CONFLICT,
                      "请先检查此文件（检查不写入任何工单，会列出有误的行），或确认不检查直接导入")
    return _start(request, principal, up, "import")


@router.delete("/api/admin/imports/{upload_id}", summary="放弃并删除上传文件")
async def discard(upload_id: UploadId, request: Request, _principal: Admins) -> dict[str, str]:
    """放弃: the file is deleted now (not during its job)."""
    desk = _desk(request)
    await run_in_threadpool(desk.drop, desk.get(upload_id), forget=True)
    return {"deleted": upload_id}
