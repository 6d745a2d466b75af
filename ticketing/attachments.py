"""Attachments (附件) on a ticket: checked by type and size, kept under the attachments folder,
and served only to whoever may see the ticket itself.

A file's type is what its first bytes say, not what its name or the browser claims: a
``.jpg`` that is really an HTML page is refused.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import select

from hotline.db import session_scope
from ticketing import steps
from ticketing.context import StoreContext, role_of
from ticketing.models import Attachment
from ticketing.schemas import Actor, Forbidden, InvalidInput, NotFound
from ticketing.tickets import Tickets

# content type → (the extension it is stored with, the first bytes that prove it)
TYPES: dict[str, tuple[str, tuple[bytes, ...]]] = {
    "image/jpeg": (".jpg", (b"\xff\xd8\xff",)),
    "image/png": (".png", (b"\x89PNG\r\n\x1a\n",)),
    "application/pdf": (".pdf", (b"%PDF-",)),
    # Office files are zip containers; the name's extension says which one
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": (".docx", (b"PK\x03\x04",)),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": (".xlsx", (b"PK\x03\x04",)),
}
LABELS = "JPG、PNG、PDF、Word（docx）、Excel（xlsx）"
NAME_CHARS = 100


@dataclass(frozen=True, slots=True)
class AttachmentRead:
    id: int
    ticket_id: int
    name: str
    content_type: str
    size: int
    by: str
    by_role: str
    department_id: int | None
    at: str


def sniff(name: str, data: bytes) -> str:
    """The content type the bytes prove (the name only tells docx from xlsx), or ``InvalidInput``.

    >>> sniff("现场.jpg", b"\\xff\\xd8\\xff\\xe0rest"), sniff("a.xlsx", b"PK\\x03\\x04...")
    ('image/jpeg', 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet')
    >>> sniff("x.jpg", b"<html>")
    Traceback (most recent call last):
    ...
    ticketing.schemas.InvalidInput: 附件类型不支持：仅限 JPG、PNG、PDF、Word（docx）、Excel（xlsx）
    """
    suffix = Path(name).suffix.lower()
    for ctype, (ext, magics) in TYPES.items():
        zipped = magics == (b"PK\x03\x04",)  # docx and xlsx look alike inside: their names tell them apart
        if any(data.startswith(m) for m in magics) and (not zipped or suffix == ext):
            return ctype
    raise InvalidInput([f"附件类型不支持：仅限 {LABELS}"])


class Attachments:
    def __init__(self, ctx: StoreContext, tickets: Tickets) -> None:
        self.ctx = ctx
        self.tickets = tickets
        self.max_bytes = ctx.max_attachment_bytes

    @property
    def folder(self) -> Path:
        if self.ctx.files is None:
            raise InvalidInput(["附件存储未配置，请联系管理员"])
        return self.ctx.files

    def add(self, ticket_id: int, name: str, data: bytes, actor: Actor) -> AttachmentRead:
        """Keep a file on the ticket (the centre, or a department handling it) and note it in the history."""
        if role_of(actor) not in ("operator", "lead", "department", "admin"):
            raise Forbidden("当前角色不能上传附件")
        if not data:
            raise InvalidInput(["附件为空"])
        if len(data) > self.max_bytes:
            raise InvalidInput([f"附件过大：不能超过 {self.max_bytes // 2**20} MB"])
        ctype = sniff(name, data)
        shown = Path(name).name.strip()[:NAME_CHARS] or "附件"
        now = self.ctx.clock()
        with session_scope(self.ctx.engine) as s:
            t = self.tickets.visible(s, ticket_id, actor)
            rel = Path(str(t.id)) / f"{secrets.token_hex(8)}{TYPES[ctype][0]}"
            path = self.folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".part")
            tmp.write_bytes(data)
            tmp.replace(path)  # a reader never sees half a file
            a = Attachment(ticket_id=t.id, name=shown, content_type=ctype, size=len(data),
                           sha256=hashlib.sha256(data).hexdigest(), path=str(rel), by=actor.username,
                           by_role=role_of(actor), department_id=getattr(actor, "department_id", None), at=now)
            s.add(a)
            steps.record_event(s, t, actor, "attach", t.status, t.status, now, f"上传附件：{shown}")
            s.flush()
            return _read(a)

    def list(self, ticket_id: int, actor: Actor) -> list[AttachmentRead]:
        with session_scope(self.ctx.engine) as s:
            self.tickets.visible(s, ticket_id, actor)
            rows = s.exec(select(Attachment).where(Attachment.ticket_id == ticket_id).order_by(Attachment.id))
            return [_read(a) for a in rows]

    def open(self, ticket_id: int, attachment_id: int, actor: Actor) -> tuple[Path, AttachmentRead]:
        """The file to serve, if this actor may see the ticket; a file changed on disk is refused."""
        with session_scope(self.ctx.engine) as s:
            self.tickets.visible(s, ticket_id, actor)
            a = s.get(Attachment, attachment_id)
            if a is None or a.ticket_id != ticket_id:
                raise NotFound("附件不存在")
            path = self.folder / a.path
            if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != a.sha256:
                raise NotFound("附件文件缺失或已损坏，请联系管理员")
            return path, _read(a)


def _read(a: Attachment) -> AttachmentRead:
    return AttachmentRead(a.id or 0, a.ticket_id, a.name, a.content_type, a.size, a.by, a.by_role, a.department_id,
                          a.at.isoformat())
