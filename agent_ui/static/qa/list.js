/* The QA list: recordings with their transcription state and findings; leads approve requests. */
"use strict";
(() => {
  const tbody = document.querySelector("#recordings tbody");
  async function load() {
    const q = new URLSearchParams();
    for (const [k, v] of new FormData(document.getElementById("filters"))) if (v) q.set(k, v);
    try {
      const rows = await QA.api(`/api/recordings?${q}`);
      tbody.replaceChildren(...(rows.length ? rows.map((r) => {
        const tr = QA.el("tr", {tabindex: "0", dataset: {id: r.id}, class: "row"},
          QA.el("td", {}, QA.el("a", {href: `/qa/${r.id}`}, QA.date(r.started_at))), QA.el("td", {}, r.seat),
          QA.el("td", {}, r.operator), QA.el("td", {}, r.caller_num), QA.el("td", {}, QA.clock(r.duration_s)),
          QA.el("td", {}, QA.JOB[r.transcription] || r.transcription),
          QA.el("td", {}, r.findings == null ? "—" : String(r.findings)),
          QA.el("td", {}, r.ticket_id ? `#${r.ticket_id}` : "—"), QA.el("td", {}, QA.STATUS[r.status] || r.status));
        tr.addEventListener("keydown", (e) => {
          if (e.key === "Enter") location.href = `/qa/${r.id}`;
          if (e.key === "ArrowDown") tr.nextElementSibling?.focus();
          if (e.key === "ArrowUp") tr.previousElementSibling?.focus();
        });
        return tr;
      }) : [QA.el("tr", {}, QA.el("td", {colspan: "9", class: "muted"}, "暂无录音 — 通话结束后录音会自动入库"))]));
    } catch (e) { tbody.replaceChildren(QA.el("tr", {}, QA.el("td", {colspan: "9", class: "error"}, e.message))); }
  }
  async function requests() {
    const body = document.querySelector("#requests tbody");
    if (!body) return;
    const rows = await QA.api("/api/recordings/access-requests?state=pending");
    body.replaceChildren(...(rows.length ? rows.map((r) => QA.el("tr", {},
      QA.el("td", {}, `${r.username}（${QA.ROLE[r.role] || r.role}）`),
      QA.el("td", {}, r.scope === "duty" ? "质检授权（全部录音）" : QA.el("a", {href: `/qa/${r.recording_id}`}, `#${r.recording_id}`)),
      QA.el("td", {}, r.reason), QA.el("td", {}, QA.date(r.created_at)),
      QA.el("td", {}, r.mine ? QA.el("span", {class: "muted"}, "本人申请，须由他人审批") : QA.el("span", {},
        QA.el("button", {type: "button", onclick: () => decide(r.id, "approve")}, "批准"), " ",
        QA.el("button", {type: "button", onclick: () => decide(r.id, "refuse")}, "拒绝"))))) :
      [QA.el("tr", {}, QA.el("td", {colspan: "5", class: "muted"}, "没有待审批的申请"))]));
  }
  // QA: the duty grant that lets them hear recordings, asked here and approved by a lead or an admin
  async function duty() {
    const state = document.getElementById("duty-state"), form = document.getElementById("duty-form");
    if (!state) return;
    const grants = (await QA.api("/api/recordings/access-requests?mine=true")).filter((r) => r.scope === "duty");
    const now = Date.now();
    const live = grants.find((g) => g.state === "approved" && (!g.expires_at || Date.parse(g.expires_at) > now));
    const waiting = grants.find((g) => g.state === "pending");
    const refused = grants.find((g) => g.state === "refused");
    state.className = live ? "ok" : "muted";
    state.textContent = live ? `已获授权（${live.decided_by} 批准），有效至 ${QA.date(live.expires_at)}`
      : waiting ? `已于 ${QA.date(waiting.created_at)} 申请，等待班长或管理员审批`
      : refused && !grants.some((g) => g.state === "approved") ? `上次申请被 ${refused.decided_by} 驳回，可重新申请`
      : "尚未获得质检授权：收听录音前请先申请";
    form.hidden = Boolean(live || waiting);
  }
  document.getElementById("duty-form")?.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await QA.api("/api/recordings/access-requests", {method: "POST",
        body: JSON.stringify({reason: new FormData(e.target).get("reason")})});
      e.target.reset();
    } catch (err) { alert(err.message); }
    duty();
  });
  async function decide(id, what) {
    try { await QA.api(`/api/recordings/access-requests/${id}/${what}`, {method: "POST"}); } catch (e) { alert(e.message); }
    requests();
  }
  document.getElementById("filters").addEventListener("submit", (e) => { e.preventDefault(); load(); });
  load();
  requests();
  duty();
  setInterval(() => { requests(); duty(); }, 15000);  // a decision shows without a reload
})();
