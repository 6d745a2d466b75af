"""REST routes of recordings/ (``router``); the QA pages that use them are the web room's.

Identity comes from the ground floor (``hotline.identity``); the call log and the accounts are
read through the stores the app holds (``app.state.store``, ``app.state.accounts``).
Everything needs a signed-in principal; departments get nothing here. Metadata, transcript and
findings are open to QA, leads and admins (operators: their own calls); audio only after
approval (see access.py), each play/download/refusal logged. Audio is served with HTTP range
support so the browser can seek.
"""

from __future__ import annotations

import array
import math
import os
import wave
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import FileResponse, JSONResponse, Response
from sqlmodel import Session, select

from hotline import sheets
from hotline.identity import CurrentPrincipal, Principal, Role, require_roles
from hotline.params import DB_INT_MAX, DbId, day_bounds
from recordings import access, integrity, scoring, service, worker
from recordings.models import LEGS, AccessLog, AccessRequest, Recording, RecordingFile, Transcript
from recordings.rules import display_text
from recordings.schemas import AccessRequestIn, ScoreIn, WeightsIn, recording_out

router = APIRouter(prefix="/api", tags=["recordings"])

Viewer = Annotated[Principal, Depends(require_roles(Role.QA, Role.LEAD, Role.OPERATOR))]
Reviewer = Annotated[Principal, Depends(require_roles(Role.QA, Role.LEAD))]
Scorer = Annotated[Principal, Depends(require_roles(Role.QA))]
Approver = Annotated[Principal, Depends(require_roles(Role.LEAD))]  # and admins (require_roles)
Admin = Annotated[Principal, Depends(require_roles())]


def _engine(request: Request) -> sa.Engine:
    return request.app.state.engine


def _session(request: Request) -> Session:
    # objects stay readable after the access log's commits
    return Session(_engine(request), expire_on_commit=False)


def _settings(request: Request) -> Any:
    return request.app.state.settings


def _bad(msg: str, code: int = status.HTTP_400_BAD_REQUEST) -> HTTPException:
    return HTTPException(code, msg)


def _centre(request: Request, principal: Principal) -> sa.ColumnElement[bool] | None:
    return service.centre_filter(_settings(request), request.app.state.cti, principal)


def _centre_rows(model: Any, request: Request, principal: Principal) -> sa.ColumnElement[bool] | None:
    return service.rows_of_centre(model, principal, _centre(request, principal))


def _in_centre(session: Session, request: Request, principal: Principal, rec: Recording | None) -> bool:
    return service.in_centre(session, rec, _centre(request, principal))


def _get(session: Session, principal: Principal, recording_id: int, request: Request) -> Recording:
    """The recording if this principal may see it at all (role, own calls, centre); else 404 —
    another centre's recording is as unknown here as a wrong id."""
    rec = session.get(Recording, recording_id)
    if rec is None or not _in_centre(session, request, principal, rec) or not access.may_see(principal, rec):
        raise _bad("录音不存在或无权查看", status.HTTP_404_NOT_FOUND)
    return rec


def _files(session: Session, recording_id: int) -> dict[str, RecordingFile]:
    return {f.leg: f for f in session.exec(select(RecordingFile).where(RecordingFile.recording_id == recording_id))}


# ------------------------------------------------------------------ progress, access requests, log


@router.get("/qa/progress")
def transcription_progress(request: Request, _p: Viewer) -> dict[str, Any]:
    """The transcription backlog: counts per state and the share done (the QA page's bar)."""
    return worker.backlog(_engine(request))


@router.get("/recordings/access-requests")
def list_requests(request: Request, principal: Viewer, state: str | None = None,
                  mine: bool = False) -> list[dict[str, Any]]:
    """Requests to hear recordings and QA duty grants: an approver sees everyone's (with
    ``mine=true`` only their own), anyone else only their own."""
    with _session(request) as session:
        q = select(AccessRequest).order_by(AccessRequest.id.desc()).limit(200)  # type: ignore[union-attr]
        if state:
            q = q.where(AccessRequest.state == state)
        if mine or principal.role.value not in access.APPROVERS:
            q = q.where(AccessRequest.username == principal.username)
        elif (centre := _centre_rows(AccessRequest, request, principal)) is not None:
            q = q.where(centre)  # an approver of a centre decides for its recordings and its people
        return [r.model_dump(mode="json") | {"mine": r.username == principal.username} for r in session.exec(q)]


@router.post("/recordings/access-requests", status_code=201)
def create_request(body: AccessRequestIn, request: Request, principal: Viewer) -> dict[str, Any]:
    """Ask to hear one recording, or (QA, no ``recording_id``) for a duty grant over all of them;
    a lead or an admin other than the asker decides."""
    with _session(request) as session:
        if body.recording_id is not None:
            _get(session, principal, body.recording_id, request)
        try:
            req = access.request_access(session, principal, body.recording_id, body.reason)
        except access.AccessError as exc:
            raise _bad(str(exc)) from None
        return req.model_dump(mode="json")


@router.post("/recordings/access-requests/{request_id}/{decision}")
def decide_request(request_id: DbId, decision: str, request: Request, principal: Approver) -> dict[str, Any]:
    if decision not in ("approve", "refuse"):
        raise _bad("操作只能是 approve 或 refuse", status.HTTP_404_NOT_FOUND)
    with _session(request) as session:
        centre = _centre_rows(AccessRequest, request, principal)
        if centre is not None and session.exec(select(AccessRequest.id).where(
                AccessRequest.id == request_id, centre)).first() is None:
            raise _bad("申请不存在", status.HTTP_404_NOT_FOUND)  # another centre's is not this lead's to decide
        try:
            req = access.decide(session, principal, request_id, decision == "approve",
                                _settings(request).recordings_access_days)
        except access.AccessError as exc:
            raise _bad(str(exc)) from None
        return req.model_dump(mode="json")


@router.get("/recordings/access-log")
def get_access_log(request: Request, principal: Reviewer, recording_id: DbId | None = None, username: str = "",
                   action: str = "", date_from: date | None = None, date_to: date | None = None,
                   limit: Annotated[int, Query(ge=1, le=1000)] = 200,
                   offset: Annotated[int, Query(ge=0, le=DB_INT_MAX)] = 0) -> dict[str, Any]:
    """Who asked, was approved, heard, downloaded or was refused which recording (QA, leads,
    admins); newest first, ``total`` the number matching."""
    since, until = day_bounds(date_from, date_to)
    total, rows = access.access_log(_engine(request), recording_id, limit, username=username[:64],
                                    action=action[:16], since=since, until=until, offset=offset,
                                    where=_centre_rows(AccessLog, request, principal))
    return {"total": total, "items": [_log_row(e) for e in rows]}


@router.get("/recordings/access-log/export")
def export_access_log(request: Request, principal: Reviewer, fmt: Literal["csv", "xlsx"] = "xlsx",
                      recording_id: DbId | None = None, username: str = "", action: str = "",
                      date_from: date | None = None, date_to: date | None = None) -> Response:
    """The access log as a spreadsheet (up to 50 000 rows); the export itself is logged."""
    since, until = day_bounds(date_from, date_to)
    _, rows = access.access_log(_engine(request), recording_id, EXPORT_MAX, username=username[:64],
                                action=action[:16], since=since, until=until,
                                where=_centre_rows(AccessLog, request, principal))
    body = sheets.table_bytes(fmt, "录音访问记录", LOG_HEADER, (
        [sheets.local_time(e["at"]), e["username"], e["role"], e["action_label"], e["recording_id"] or "", e["leg"],
         "是" if e["allowed"] else "否", e["detail"], e["client"]] for e in map(_log_row, rows)))
    with _session(request) as session:
        access.log_access(session, principal, None, "", "export", True,
                          f"导出访问记录 {len(rows)} 行（{fmt}）", _client(request))
    return Response(body, media_type=sheets.MEDIA[fmt],
                    headers=sheets.attachment_headers(f"录音访问记录-{date.today()}.{fmt}"))


EXPORT_MAX = 50_000
LOG_HEADER = ["时间", "用户", "角色", "操作", "录音", "声道", "允许", "说明", "客户端地址"]


def _log_row(e: AccessLog) -> dict[str, Any]:
    return e.model_dump(mode="json") | {"action_label": access.ACTION_LABELS.get(e.action, e.action)}


# ------------------------------------------------------------------ recordings


@router.get("/recordings")
def list_recordings(request: Request, principal: Viewer, operator: str | None = None, seat: str | None = None,
                    status_: Annotated[str | None, Query(alias="status")] = None, since: datetime | None = None,
                    until: datetime | None = None, limit: int = Query(100, ge=1, le=500),
                    offset: Annotated[int, Query(ge=0, le=DB_INT_MAX)] = 0) -> list[dict[str, Any]]:
    with _session(request) as session:
        q = select(Recording).order_by(Recording.id.desc()).offset(offset).limit(limit)  # type: ignore[union-attr]
        if principal.role is Role.OPERATOR:
            q = q.where(Recording.operator == (principal.job_number or "\0"))
        elif operator:
            q = q.where(Recording.operator == operator)
        if seat:
            q = q.where(Recording.seat == seat)
        if status_:
            q = q.where(Recording.status == status_)
        centre = _centre(request, principal)
        if centre is not None:
            q = q.where(centre)
        if since:
            q = q.where(Recording.started_at >= since)
        if until:
            q = q.where(Recording.started_at < until)
        recs = list(session.exec(q))
        ids = [r.id for r in recs]
        jobs = dict(session.execute(sa.select(worker.JOBS.c.recording_id, worker.JOBS.c.state)
                                    .where(worker.JOBS.c.recording_id.in_(ids))).all()) if ids else {}
        counts = dict(session.execute(
            sa.select(Transcript.recording_id, sa.func.json_array_length(Transcript.findings))
            .where(Transcript.recording_id.in_(ids))).all()) if ids else {}  # type: ignore[attr-defined]
        return [recording_out(r, {}) | {"transcription": jobs.get(r.id, ""), "findings": counts.get(r.id)}
                for r in recs]


@router.get("/recordings/{recording_id}")
def get_recording(recording_id: DbId, request: Request, principal: Viewer) -> dict[str, Any]:
    """Metadata, the transcript (both legs, words with speaker and times) and the QA findings."""
    engine = _engine(request)
    with Session(engine, expire_on_commit=False) as session:
        rec = _get(session, principal, recording_id, request)
        if rec.ticket_id is None and rec.uniqueid:
            rec.ticket_id = request.app.state.store.calls.ticket_of(rec.uniqueid)
            if rec.ticket_id is not None:
                session.add(rec)
                session.commit()
                session.refresh(rec)
        tr = session.get(Transcript, recording_id)
        job = session.execute(sa.select(worker.JOBS).where(worker.JOBS.c.recording_id == recording_id)).first()
        approved = access.valid_approval(session, principal.username, recording_id) is not None
        allowed, why = access.decide_pure(principal.role.value, approved)
        words = tr.words if tr else []
        out = recording_out(rec, _files(session, recording_id))
        out["transcript"] = {
            "words": words, "model": tr.model if tr else "",
            "text": {sp: display_text(w["word"] for w in words if w["speaker"] == sp)
                     for sp in ("citizen", "operator")},
        } if tr else None
        out["findings"] = tr.findings if tr else []
        out["transcription"] = ({"state": job.state, "attempts": job.attempts, "error": job.error}
                                if job is not None else None)
        out["audio"] = {"allowed": allowed, "reason": why}
        out["scores"] = [s.model_dump(mode="json") for s in scoring.history(session, recording_id)]
        return out


UNREADABLE_STATUS = {"corrupt": status.HTTP_409_CONFLICT, "missing": status.HTTP_410_GONE,
                     "purged": status.HTTP_410_GONE}


def _audio_file(session: Session, request: Request, principal: Principal, recording_id: int,
                leg: str) -> tuple[Path, os.stat_result]:
    """The leg's file as stored, checked against its checksum (integrity.py: a file unchanged since
    its last check costs a ``stat``); gone or changed, it is marked and logged and the user told
    so — 410 or 409 — and no byte of it is sent."""
    f = _files(session, recording_id).get(leg)
    if f is None:
        raise _bad("录音文件缺失", status.HTTP_404_NOT_FOUND)
    reader = integrity.Reader(principal.username, principal.role.value, _client(request))
    try:
        return integrity.checked_path(session, f, reader)
    except integrity.Unreadable as exc:
        raise _bad(str(exc), UNREADABLE_STATUS[exc.state]) from None


class CheckedFile(FileResponse):
    """A file sent only if it is still the one just checked: the same device, inode, size, mtime
    and ctime as at the check (a file replaced or written in between is refused, never sent)."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            now = await anyio.to_thread.run_sync(os.stat, self.path)
        except OSError:
            now = None
        if now is None or self.stat_result is None or integrity.identity(now) != integrity.identity(self.stat_result):
            integrity.VERIFIED.forget(str(self.path))
            changed = JSONResponse({"detail": "录音文件在校验后发生了变化，请重试"}, status.HTTP_409_CONFLICT)
            return await changed(scope, receive, send)
        await super().__call__(scope, receive, send)


def _visible(session: Session, request: Request, principal: Principal, recording_id: int) -> Recording:
    """A recording whose audio may be asked for: it exists and is of the principal's centre (the
    approval is :func:`_guard`'s question: a department's or another operator's attempt is refused
    and logged there)."""
    rec = session.get(Recording, recording_id)
    if rec is None or not _in_centre(session, request, principal, rec):
        raise _bad("录音不存在", status.HTTP_404_NOT_FOUND)
    return rec


def _client(request: Request) -> str:
    return request.client.host if request.client else ""


def _guard(request: Request, session: Session, principal: Principal, rec: Recording, leg: str, action: str) -> None:
    """Refuse (and log the refusal) unless someone else approved this principal's listening."""
    allowed, why = access.authorise(session, principal, rec.id)
    if not allowed:
        access.log_access(session, principal, rec.id, leg, "denied", False, f"{action}：{why}", _client(request))
        raise _bad(why, status.HTTP_403_FORBIDDEN)


@router.get("/recordings/{recording_id}/audio/{leg}")
def get_audio(recording_id: DbId, leg: str, request: Request, principal: CurrentPrincipal,
              download: bool = False) -> FileResponse:
    """The wav of one leg (``mixed``, ``citizen``, ``operator``), with range requests."""
    if leg not in LEGS:
        raise _bad("录音声道只能是 mixed、citizen 或 operator", status.HTTP_404_NOT_FOUND)
    with _session(request) as session:
        rec = _visible(session, request, principal, recording_id)
        action = "download" if download else "play"
        _guard(request, session, principal, rec, leg, action)  # before the check: only the approved cost a hash
        path, checked = _audio_file(session, request, principal, recording_id, leg)
        # every request that serves bytes is logged with the range it asked for, before a byte goes
        # out: a seek or a "bytes=1-" is audio heard like the first request (issue #13)
        rng = request.headers.get("range", "").strip()[:200]
        access.log_access(session, principal, rec.id, leg, action, True, rng or "整段", _client(request))
    name = f"{rec.base}{'' if leg == 'mixed' else '-' + leg}.wav"
    return CheckedFile(path, media_type="audio/wav", filename=name if download else None, stat_result=checked,
                       content_disposition_type="attachment" if download else "inline",
                       headers={"Cache-Control": "no-store"})


@router.get("/recordings/{recording_id}/peaks")
def get_peaks(recording_id: DbId, request: Request, principal: CurrentPrincipal,
              points: int = Query(1000, ge=50, le=5000)) -> dict[str, Any]:
    """Waveform peaks of both legs (the page draws them without downloading each leg)."""
    with _session(request) as session:
        rec = _visible(session, request, principal, recording_id)
        _guard(request, session, principal, rec, "peaks", "waveform")
        access.log_access(session, principal, rec.id, "peaks", "waveform", True, f"{points} 点", _client(request))
        out: dict[str, Any] = {"duration_s": rec.duration_s}
        for leg in ("citizen", "operator"):
            try:  # drawn from checked bytes only: a damaged leg is marked and shows no waveform
                out[leg] = peaks(_audio_file(session, request, principal, recording_id, leg)[0], points)
            except HTTPException:
                out[leg] = []
        return out


def peaks(path: Path, points: int) -> list[float]:
    """Max absolute sample per bucket, 0..1."""
    with wave.open(str(path)) as w:
        data = array.array("h", w.readframes(w.getnframes()))
    if not data:
        return []
    size = max(1, math.ceil(len(data) / points))
    return [round(max(max(chunk), -min(chunk)) / 32768, 3)
            for chunk in (data[i:i + size] for i in range(0, len(data), size))]


# ------------------------------------------------------------------ QA scoring


@router.get("/qa/check-items")
def get_items(request: Request, _p: Viewer) -> list[dict[str, Any]]:
    with _session(request) as session:
        return [i.model_dump() for i in scoring.items(session)]


@router.put("/qa/check-items")
def put_weights(body: WeightsIn, request: Request, _p: Admin) -> list[dict[str, Any]]:
    with _session(request) as session:
        try:
            return [i.model_dump() for i in scoring.set_weights(session, body.weights)]
        except scoring.ScoreError as exc:
            raise _bad(str(exc)) from None


@router.post("/qa/scores", status_code=201)
def post_score(body: ScoreIn, request: Request, principal: Scorer) -> dict[str, Any]:
    engine = _engine(request)
    with Session(engine, expire_on_commit=False) as session:
        rec = _visible(session, request, principal, body.recording_id)
        try:
            team = request.app.state.accounts.centre_of_job_number(rec.operator)  # the operator's centre
            score = scoring.file_score(session, recording_id=body.recording_id, scorer=principal.username,
                                       marks={k: m.model_dump() for k, m in body.marks.items()},
                                       comment=body.comment, team=team,
                                       supersedes=body.supersedes, reason=body.reason)
        except scoring.ScoreError as exc:
            raise _bad(str(exc), status.HTTP_409_CONFLICT if "已评分" in str(exc) or "刚被" in str(exc)
                       else status.HTTP_400_BAD_REQUEST) from None
        return score.model_dump(mode="json")


@router.get("/qa/scores")
def get_scores(request: Request, principal: Viewer, recording_id: DbId) -> list[dict[str, Any]]:
    with _session(request) as session:
        _get(session, principal, recording_id, request)
        return [s.model_dump(mode="json") for s in scoring.history(session, recording_id)]


@router.get("/qa/results")
def get_results(request: Request, _p: Reviewer, by: str = "operator", since: datetime | None = None,
                until: datetime | None = None) -> list[dict[str, Any]]:
    """Per-operator or per-team QA results (latest versions only), for the lead's reports."""
    try:
        return scoring.results(_engine(request), by, since, until)
    except scoring.ScoreError as exc:
        raise _bad(str(exc)) from None
