"""Attachments (附件) over HTTP: upload to a ticket, list them, download one.

Everything goes through ``store.attachments``, which decides what a file is by its first bytes,
keeps it under the attachments folder and shows it exactly to whoever may see the ticket (a
department: only the tickets it handles; anyone else asking gets the same 404 as for a ticket
that does not exist). A download is always a download (``Content-Disposition: attachment``,
``nosniff``): a file a citizen sent is never rendered as a page of this site.

The app must include this router before :mod:`ticketing.routes`, whose
``POST /api/tickets/{id}/{action}`` would otherwise take ``attachments`` for a workflow action.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import FileResponse
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from hotline.identity import CurrentPrincipal
from hotline.params import NO_NUL, NUL_REFUSAL, is_digits
from ticketing.routes import StoreDep, call_store, path_id, publish_change

router = APIRouter(tags=["工单附件"], dependencies=[NO_NUL])
FORM_SLACK = 64 * 1024  # the multipart envelope around the file: boundaries, headers, the file name


def _too_big(limit: int) -> HTTPException:
    most = f"{limit // 2**20} MB" if limit >= 2**20 else f"{limit // 1024} KB"
    return HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"附件过大：不能超过 {most}")


@router.post("/api/tickets/{ticket_id}/attachments", status_code=201, summary="上传附件（multipart，字段名 file）")
async def upload(ticket_id: str, request: Request, principal: CurrentPrincipal, store: StoreDep) -> Any:
    tid = path_id(ticket_id)
    limit = store.attachments.max_bytes
    declared = request.headers.get("content-length", "")
    if is_digits(declared) and (len(declared) > 15 or int(declared) > limit + FORM_SLACK):
        raise _too_big(limit)  # refused before a byte of it is spooled
    name, data = await _the_file(request, limit)
    saved = await call_store(store.attachments.add, tid, name, data, principal)
    await publish_change(request, tid, "attach", principal.username)
    return saved


async def _the_file(request: Request, limit: int) -> tuple[str, bytes]:
    """The one file of a multipart upload (field ``file``): its name and at most ``limit`` bytes."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "请以表单文件上传附件（字段名 file）")
    try:
        form = await request.form(max_files=1, max_fields=5)
    except StarletteHTTPException:  # malformed, or more than one file: starlette says so in English
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "上传内容格式不正确：每次只能上传一个文件") from None
    try:
        got = form.get("file")
        if not isinstance(got, UploadFile):
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "请选择要上传的文件")
        data = await got.read(limit + 1)  # one byte more than allowed tells "too big" without reading it all
        name = got.filename or "附件"
    finally:
        await form.close()
    if "\x00" in name:  # a form is not read by NO_NUL (a file may hold any byte); its name is text
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, NUL_REFUSAL)
    if len(data) > limit:
        raise _too_big(limit)
    return name, data


@router.get("/api/tickets/{ticket_id}/attachments", summary="工单附件列表")
async def listing(ticket_id: str, principal: CurrentPrincipal, store: StoreDep) -> Any:
    return await call_store(store.attachments.list, path_id(ticket_id), principal)


@router.get("/api/tickets/{ticket_id}/attachments/{attachment_id}", summary="下载附件")
async def download(ticket_id: str, attachment_id: str, principal: CurrentPrincipal, store: StoreDep) -> FileResponse:
    path, meta = await call_store(store.attachments.open, path_id(ticket_id), path_id(attachment_id, "附件"), principal)
    return FileResponse(path, media_type=meta.content_type, filename=meta.name, content_disposition_type="attachment",
                        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
                                 "Content-Security-Policy": "sandbox"})
