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
      QA.el("td", {}, `${r.username}（${r.role}）`), QA.el("td", {}, QA.el("a", {href: `/qa/${r.recording_id}`}, `#${r.recording_id}`)),
      QA.el("td", {}, r.reason), QA.el("td", {}, QA.date(r.created_at)),
      QA.el("td", {}, QA.el("button", {type: "button", onclick: () => decide(r.id, "approve")}, "批准"), " ",
        QA.el("button", {type: "button", onclick: () => decide(r.id, "refuse")}, "拒绝")))) :
      [QA.el("tr", {}, QA.el("td", {colspan: "5", class: "muted"}, "没有待审批的申请"))]));
  }
  async function decide(id, what) {
    try { await QA.api(`/api/recordings/access-requests/${id}/${what}`, {method: "POST"}); } catch (e) { alert(e.message); }
    requests();
  }
  document.getElementById("filters").addEventListener("submit", (e) => { e.preventDefault(); load(); });
  load();
  requests();
})();
