"""The recordings API on the real app: access approval and audit, range requests, scoring forms."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from hotline.identity import Principal, Role
from hotline.settings import Settings
from launch.compose import web_app
from recordings import catalog
from recordings.models import AccessLog, Recording, Transcript
from recordings.rules import RuleConfig, Word, check
from testkit.auth import Bearer, use
from tests.recordings.conftest import two_leg_call

LATER = 10_000_000_000.0
WORDS = [
    {"speaker": "operator", "word": "您好", "start": 0.2, "end": 0.6, "conf": 1.0},
    {"speaker": "operator", "word": "喂", "start": 0.7, "end": 0.9, "conf": 1.0},
    {"speaker": "citizen", "word": "路灯", "start": 3.1, "end": 3.5, "conf": 1.0},
    {"speaker": "citizen", "word": "坏了", "start": 3.6, "end": 4.0, "conf": 1.0},
]

PEOPLE = {
    "qa": Principal("qa", Role.QA, "赵质检"),
    "qa2": Principal("qa2", Role.QA, "钱质检"),
    "lead": Principal("lead", Role.LEAD, "王班长"),
    "lead2": Principal("lead2", Role.LEAD, "孙班长"),
    "op": Principal("op1024", Role.OPERATOR, "张敏", job_number="1024"),
    "op2": Principal("op1025", Role.OPERATOR, "李强", job_number="1025"),
    "dept": Principal("dept1", Role.DEPARTMENT, "市城管局", department_id=1),
    "admin": Principal("admin", Role.ADMIN, "系统管理员"),
}


def auth(who: str) -> Bearer:
    return Bearer(PEOPLE[who])


@pytest.fixture(scope="module")
def app_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Settings, int]]:
    settings = Settings(var_dir=tmp_path_factory.mktemp("var"), ami_port=1, agi_port=1, services=[],
                        agi_job_numbers={"8001": "1024"})
    with use(TestClient(web_app(settings))) as client:
        engine = client.app.state.engine
        base = "hotline-20261123-101500-1763868000.1"
        two_leg_call(catalog.spool_dir(settings), base, [("sil", 3.0), ("say", "caller_ko")], [("say", "agent_ko")],
                     total_s=8.0)
        from tests.recordings.test_catalog import call_record

        rid = catalog.register_call(engine, settings, call_record(base, seat="8001"))
        catalog.collect(engine, settings, now=LATER)
        findings = [f.as_dict() for f in check([Word.from_dict(w) for w in WORDS], RuleConfig(), job_number="1024")]
        with Session(engine) as s:
            s.add(Transcript(recording_id=rid, model="test", words=WORDS, findings=findings))
            s.commit()
        yield client, settings, rid


def granted(client: TestClient, who: str, rid: int | None = None, by: str = "lead") -> dict[str, Any]:
    """``who`` asks (for one recording, or a QA duty grant without ``rid``) and ``by`` approves."""
    req = client.post("/api/recordings/access-requests", json={"recording_id": rid, "reason": "复核"},
                      headers=auth(who))
    assert req.status_code == 201 and req.json()["state"] == "pending", req.text
    ok = client.post(f"/api/recordings/access-requests/{req.json()['id']}/approve", headers=auth(by))
    assert ok.status_code == 200, ok.text
    return ok.json()


def log_entries(client: TestClient, **where: Any) -> list[AccessLog]:
    with Session(client.app.state.engine) as s:
        q = select(AccessLog).order_by(AccessLog.id)
        for k, v in where.items():
            q = q.where(getattr(AccessLog, k) == v)
        return list(s.exec(q))


def test_metadata_transcript_and_findings(app_env):
    client, _, rid = app_env
    r = client.get(f"/api/recordings/{rid}", headers=auth("qa"))
    assert r.status_code == 200
    body = r.json()
    assert (body["seat"], body["operator"], body["status"], body["survey"]) == ("8001", "1024", "ok", "1")
    assert body["started_at"] == "2025-11-23T03:20:00+00:00"  # the uniqueid's epoch, said as UTC
    assert body["transcript"]["text"] == {"citizen": "路灯坏了", "operator": "您好喂"}
    assert {f["code"] for f in body["findings"]} >= {"forbidden_phrase", "greeting_incomplete"}
    assert set(body["files"]) == {"mixed", "citizen", "operator"}
    assert body["audio"] == {"allowed": False, "reason": "尚未获得质检授权：请在质检页申请，由班长或管理员批准"}
    grant = granted(client, "qa")  # a duty grant: every recording, for recordings_access_days
    assert (grant["scope"], grant["recording_id"], grant["decided_by"]) == ("duty", None, "lead")
    assert client.get(f"/api/recordings/{rid}", headers=auth("qa")).json()["audio"]["allowed"] is True
    listed = client.get("/api/recordings", headers=auth("lead")).json()
    assert [x["id"] for x in listed] == [rid] and listed[0]["transcription"] == "queued"


def test_departments_never_get_audio_and_the_attempt_is_logged(app_env):
    client, _, rid = app_env
    assert client.get(f"/api/recordings/{rid}", headers=auth("dept")).status_code == 403
    r = client.get(f"/api/recordings/{rid}/audio/mixed", headers=auth("dept"))
    assert r.status_code == 403 and r.json()["detail"] == "承办单位不能收听或下载录音"
    assert client.post("/api/recordings/access-requests", json={"recording_id": rid, "reason": "核实"},
                       headers=auth("dept")).status_code == 403
    [entry] = log_entries(client, username="dept1")
    assert (entry.action, entry.allowed, entry.leg, entry.recording_id) == ("denied", False, "mixed", rid)


def test_an_operator_needs_a_leads_approval(app_env):
    client, _, rid = app_env
    meta = client.get(f"/api/recordings/{rid}", headers=auth("op")).json()
    assert meta["audio"] == {"allowed": False, "reason": "尚未获批收听该录音：请提交收听申请，由班长或管理员审批"}
    assert client.get(f"/api/recordings/{rid}", headers=auth("op2")).status_code == 404  # not their call
    r = client.get(f"/api/recordings/{rid}/audio/operator", headers=auth("op"))
    assert r.status_code == 403 and "请提交收听申请" in r.json()["detail"]
    assert [(e.action, e.allowed) for e in log_entries(client, username="op1024")] == [("denied", False)]

    req = client.post("/api/recordings/access-requests", json={"recording_id": rid, "reason": "复核本人通话"},
                      headers=auth("op")).json()
    assert req["state"] == "pending"
    assert client.post(f"/api/recordings/access-requests/{req['id']}/approve", headers=auth("op")).status_code == 403
    pending = client.get("/api/recordings/access-requests?state=pending", headers=auth("lead")).json()
    assert [p["id"] for p in pending] == [req["id"]]
    ok = client.post(f"/api/recordings/access-requests/{req['id']}/approve", headers=auth("lead"))
    assert ok.status_code == 200 and ok.json()["decided_by"] == "lead"
    again = client.post(f"/api/recordings/access-requests/{req['id']}/refuse", headers=auth("lead"))
    assert again.status_code == 400 and again.json()["detail"] == "该申请已处理"

    full = client.get(f"/api/recordings/{rid}/audio/operator", headers=auth("op") | {"Range": "bytes=0-"})
    assert full.status_code == 206 and full.content[:4] == b"RIFF"
    part = client.get(f"/api/recordings/{rid}/audio/operator", headers=auth("op") | {"Range": "bytes=1000-1999"})
    assert part.status_code == 206 and len(part.content) == 1000
    assert part.headers["content-range"].startswith("bytes 1000-1999/")
    rest = client.get(f"/api/recordings/{rid}/audio/operator", headers=auth("op") | {"Range": "bytes=1-"})
    assert rest.status_code == 206 and len(rest.content) == len(full.content) - 1
    # every request that served bytes is on the log with its range: "bytes=1-" is no way around it
    plays = [(e.action, e.leg, e.detail) for e in log_entries(client, username="op1024") if e.allowed]
    assert plays == [("request", "", "收听申请：复核本人通话（待审批）"), ("play", "operator", "bytes=0-"),
                     ("play", "operator", "bytes=1000-1999"), ("play", "operator", "bytes=1-")]
    assert client.post("/api/recordings/access-requests", json={"reason": "抽查"},
                       headers=auth("op")).json()["detail"] == "只有质检员可以申请质检授权；收听单条录音请指明录音"


def test_nobody_hears_on_their_own_say_so_and_every_access_is_on_an_exportable_log(app_env):
    client, _, rid = app_env
    refused = client.get(f"/api/recordings/{rid}/audio/mixed?download=1", headers=auth("qa2"))
    assert refused.status_code == 403 and "质检授权" in refused.json()["detail"]
    req = client.post("/api/recordings/access-requests", json={"reason": "本周质检"}, headers=auth("qa2")).json()
    assert (req["state"], req["scope"]) == ("pending", "duty")
    again = client.post("/api/recordings/access-requests", json={"reason": "本周质检"}, headers=auth("qa2")).json()
    assert again["id"] == req["id"]  # asking twice while it waits is the same request
    assert client.post(f"/api/recordings/access-requests/{req['id']}/approve",
                       headers=auth("qa2")).status_code == 403  # QA approve nothing
    mine = client.get("/api/recordings/access-requests", headers=auth("qa2")).json()
    assert {q["username"] for q in mine} == {"qa2"}  # only one's own, unless one approves
    client.post(f"/api/recordings/access-requests/{req['id']}/approve", headers=auth("admin"))
    r = client.get(f"/api/recordings/{rid}/audio/mixed?download=1", headers=auth("qa2"))
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    entries = [(e.action, e.allowed, e.leg) for e in log_entries(client, username="qa2")]
    assert entries == [("denied", False, "mixed"), ("request", True, ""), ("download", True, "mixed")]

    # a lead's own request waits for another lead or an admin
    own = client.post("/api/recordings/access-requests", json={"recording_id": rid, "reason": "投诉复核"},
                      headers=auth("lead")).json()
    assert own["state"] == "pending"
    self_ok = client.post(f"/api/recordings/access-requests/{own['id']}/approve", headers=auth("lead"))
    assert self_ok.status_code == 400 and self_ok.json()["detail"] == "不能审批自己的申请：请由其他班长或管理员审批"
    assert client.get(f"/api/recordings/{rid}/audio/mixed", headers=auth("lead")).status_code == 403
    assert client.post(f"/api/recordings/access-requests/{own['id']}/approve",
                       headers=auth("lead2")).json()["decided_by"] == "lead2"
    assert client.get(f"/api/recordings/{rid}/audio/mixed", headers=auth("lead")).status_code == 200

    log = client.get(f"/api/recordings/access-log?recording_id={rid}", headers=auth("lead")).json()
    assert log["total"] == len(log["items"]) and {"download", "denied", "play", "approve"} <= {
        e["action"] for e in log["items"]}
    assert {e["action_label"] for e in log["items"]} >= {"下载", "拒绝访问", "批准"}
    only = client.get("/api/recordings/access-log?username=qa2&action=download", headers=auth("admin")).json()
    assert only["total"] == 1 and only["items"][0]["leg"] == "mixed"
    assert client.get("/api/recordings/access-log", headers=auth("op")).status_code == 403
    sheet = client.get("/api/recordings/access-log/export?fmt=csv&username=qa2", headers=auth("lead"))
    assert sheet.status_code == 200 and sheet.content.startswith("\ufeff时间,用户".encode())
    assert sheet.text.count("qa2") == 3 and "attachment" in sheet.headers["content-disposition"]
    assert log_entries(client, username="lead", action="export")[-1].detail == "导出访问记录 3 行（csv）"


def test_a_refused_request_gives_nothing_and_peaks_come_per_leg(app_env):
    client, _, rid = app_env
    req = client.post("/api/recordings/access-requests", json={"recording_id": rid, "reason": "投诉复核"},
                      headers=auth("op")).json()
    refused = client.post(f"/api/recordings/access-requests/{req['id']}/refuse", headers=auth("lead")).json()
    assert refused["state"] == "refused"
    if not client.get(f"/api/recordings/{rid}", headers=auth("qa")).json()["audio"]["allowed"]:
        granted(client, "qa")  # QA's duty grant (the first test's, unless this one runs without it)
    peaks = client.get(f"/api/recordings/{rid}/peaks?points=100", headers=auth("qa")).json()
    assert abs(peaks["duration_s"] - 8.0) < 0.01
    assert 90 <= len(peaks["citizen"]) <= 101 and max(peaks["citizen"]) > 0.05
    assert max(peaks["citizen"][:30]) < 0.01  # the citizen was silent for the first 3 s
    assert log_entries(client, username="qa", action="waveform")[-1].detail == "100 点"


def test_scores_are_filed_once_and_corrected_by_new_versions(app_env):
    client, _, rid = app_env
    with client.app.state.engine.begin() as conn:
        conn.execute(sa.text("UPDATE account SET centre = '一班' WHERE job_number = '1024'"))
    items = client.get("/api/qa/check-items", headers=auth("qa")).json()
    assert sum(i["weight"] for i in items) == 100 and items[0]["name"] == "开头语"
    marks = {i["code"]: {"points": i["weight"]} for i in items}
    marks["taboo"] = {"points": 0, "comment": "说了“喂”"}
    assert client.post("/api/qa/scores", json={"recording_id": rid, "marks": marks},
                       headers=auth("lead")).status_code == 403  # scoring is QA's
    first = client.post("/api/qa/scores", json={"recording_id": rid, "marks": marks}, headers=auth("qa"))
    assert first.status_code == 201 and first.json()["total"] == 94.0 and first.json()["version"] == 1
    dup = client.post("/api/qa/scores", json={"recording_id": rid, "marks": marks}, headers=auth("qa"))
    assert dup.status_code == 409 and "已评分" in dup.json()["detail"]
    corr = {"recording_id": rid, "marks": marks | {"taboo": {"points": 3}}, "supersedes": first.json()["id"]}
    no_reason = client.post("/api/qa/scores", json=corr, headers=auth("qa"))
    assert no_reason.status_code == 400 and no_reason.json()["detail"] == "更正评分须填写原因"
    second = client.post("/api/qa/scores", json=corr | {"reason": "复听后确认为语气词"}, headers=auth("qa2"))
    assert second.status_code == 201 and second.json()["version"] == 2 and second.json()["total"] == 97.0
    history = client.get(f"/api/qa/scores?recording_id={rid}", headers=auth("qa")).json()
    assert [(h["version"], h["superseded"], h["total"]) for h in history] == [(1, True, 94.0), (2, False, 97.0)]
    bad = client.post("/api/qa/scores", json={"recording_id": rid, "marks": marks | {"opening": {"points": 99}},
                                              "supersedes": second.json()["id"], "reason": "x"}, headers=auth("qa"))
    assert bad.status_code == 400 and bad.json()["detail"] == "“开头语”的分数应在 0 到 8 之间"

    per_op = client.get("/api/qa/results?by=operator", headers=auth("lead")).json()
    assert per_op == [{"operator": "1024", "scored": 1, "average": 97.0, "lowest": 97.0}]
    per_team = client.get("/api/qa/results?by=team", headers=auth("lead")).json()
    assert per_team == [{"team": "一班", "scored": 1, "average": 97.0, "lowest": 97.0}]


def test_only_admins_set_weights(app_env):
    client, _, _ = app_env
    assert client.put("/api/qa/check-items", json={"weights": {"opening": 10}}, headers=auth("qa")).status_code == 403
    r = client.put("/api/qa/check-items", json={"weights": {"opening": 10, "closing": 4}}, headers=auth("admin"))
    weights = {i["code"]: i["weight"] for i in r.json()}
    assert (weights["opening"], weights["closing"]) == (10, 4)
    assert client.put("/api/qa/check-items", json={"weights": {"nope": 1}},
                      headers=auth("admin")).json()["detail"] == "未知的检查项：nope"


def test_progress_and_pages(app_env):
    client, _, rid = app_env
    p = client.get("/api/qa/progress", headers=auth("qa")).json()
    assert (p["total"], p["queued"]) == (1, 1)
    page = client.get(f"/qa/{rid}", headers=auth("qa"))
    assert page.status_code == 200 and "质检回放" in page.text and "wavesurfer.min.js" in page.text
    assert client.get("/qa", headers=auth("dept")).status_code == 403
    assert client.get(f"/api/recordings/{rid}/audio/stereo", headers=auth("qa")).status_code == 404
    with Session(client.app.state.engine) as s:
        assert s.get(Recording, rid).status == "ok"


def test_a_voice_message_is_on_the_callback_list_and_heard_under_the_same_rules(app_env):
    from tests.recordings.conftest import leg
    from ticketing.calls import CallLog

    client, settings, _ = app_env
    engine = client.app.state.engine
    base = "message-20261123-221500-1795400000.7"
    leg(catalog.spool_dir(settings) / f"{base}-in.wav", [("sil", 1.0), ("say", "caller_ko")], 6.0)
    CallLog(engine).request_callback("1795400000.7", "13953012345", "after_hours", base)
    listed = {r["id"]: r for r in client.get("/api/callbacks", headers=auth("op2")).json()}
    row = listed["1795400000.7"]
    assert row["message"] is True and row["callback_reason"] == "after_hours"
    assert row["message_recording"] is None  # not in the catalog yet: the page says it is on its way
    [rid] = catalog.collect(engine, settings, now=LATER)
    row = {r["id"]: r for r in client.get("/api/callbacks", headers=auth("lead")).json()}["1795400000.7"]
    assert row["message_recording"] == rid
    # any operator may open it (anyone may be the one who calls back); hearing it takes approval
    meta = client.get(f"/api/recordings/{rid}", headers=auth("op2"))
    assert meta.status_code == 200 and meta.json()["audio"]["allowed"] is False
    assert client.get(f"/api/recordings/{rid}/audio/citizen", headers=auth("op2")).status_code == 403
    assert client.get(f"/api/recordings/{rid}", headers=auth("dept")).status_code == 403
    assert client.get(f"/api/recordings/{rid}/audio/citizen", headers=auth("lead")).status_code == 403
    granted(client, "lead", rid, by="admin")  # a lead hears it too only on someone else's approval
    heard = client.get(f"/api/recordings/{rid}/audio/citizen", headers=auth("lead"))
    assert heard.status_code == 200 and heard.content[:4] == b"RIFF"
    assert [(e.action, e.leg) for e in log_entries(client, username="lead", recording_id=rid) if e.allowed] == [
        ("request", ""), ("play", "citizen")]
    assert ("denied", False) in [(e.action, e.allowed) for e in log_entries(client, username="op1025")]
