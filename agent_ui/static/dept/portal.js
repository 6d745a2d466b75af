// 承办单位工作台 · the counters, the department's tickets (filters by view, deadline colour and full
// text), its own assessment, and the live link: every ticket_update the server lets through (only
// tickets this department handles) refreshes the counters and the list, and the open ticket.
// Keys: / search, ↑↓ move through the list, Enter opens the ticket.
"use strict";
(function () {
  const api = window.hotlineApi;
  const T = window.DeptTicket;
  const {esc, notice, run, daysLeft} = T;
  const $ = (id) => document.getElementById(id);
  const root = $("dept");
  const ME = root.dataset.user;
  const COLOURS = {green: "正常", yellow: "临期", red: "超期", none: "无时限"};
  const state = {view: "todo", colour: "", q: "", sort: "current_due", page: 1, pages: 1};
  let rows = [];

  // ------------------------------------------------------------------ counters
  async function loadSummary() {
    const got = await run(() => api("/api/dept/summary"));
    if (!got) return;
    window.deptStaff = got.staff;
    for (const [k, v] of Object.entries(got.counters)) {
      const el = $(`c-${k}`);
      if (el) { el.textContent = v; el.closest(".counter").classList.toggle("zero", !v); }
    }
  }

  // ------------------------------------------------------------------ the list
  let asked = 0, shown = 0;  // answers can overtake each other: an older one never replaces a newer
  async function loadList() {
    const q = new URLSearchParams({view: state.view, sort: state.sort, page: state.page, per_page: 50});
    if (state.colour) q.set("deadline_state", state.colour);
    if (state.q) q.set("q", state.q);
    const n = ++asked;
    const got = await run(() => api(`/api/dept/tickets?${q}`));
    if (!got || n < shown) return;
    shown = n;
    const focused = document.activeElement && document.activeElement.closest("#tickets tr[data-id]");
    rows = got.items;
    state.pages = Math.max(1, Math.ceil(got.total / got.per_page));
    $("total").textContent = `共 ${got.total}${got.total_capped ? "+" : ""} 件`;
    $("page").textContent = `第 ${got.page} / ${state.pages}${got.total_capped ? "+" : ""} 页`;
    $("prev").disabled = got.page <= 1;
    $("next").disabled = got.page >= state.pages && !got.total_capped;
    const open = T.current();
    $("tickets").querySelector("tbody").innerHTML = rows.map((t) => `<tr tabindex="0" data-id="${t.id}"
        data-number="${esc(t.number)}" class="${t.id === open ? "on" : ""}${t.open_supervision ? " supervised" : ""}">
      <td><span class="dl dl-${esc(t.deadline_state)}" title="${COLOURS[t.deadline_state] || ""}"></span></td>
      <td class="num-cell">${esc(t.number)}</td>
      <td>${t.emergency ? `<span class="flag">急</span> ` : ""}${esc(t.title)}${t.lead ? "" : ` <small class="co">协办</small>`}</td>
      <td>${esc(t.category)}</td><td>${esc(t.status_label)}</td>
      <td class="waits"><b>${esc(t.waits_for)}</b></td>
      <td class="dl-text dl-${esc(t.deadline_state)}">${daysLeft(t.working_days_left)}</td>
      <td>${esc(t.assignee) || "—"}</td></tr>`).join("");
    $("no-tickets").hidden = rows.length > 0;
    if (focused) {  // a live refresh keeps the keyboard where it was
      const again = document.querySelector(`#tickets tr[data-id="${focused.dataset.id}"]`);
      if (again) again.focus();
    }
  }

  function mark(id) {
    for (const tr of document.querySelectorAll("#tickets tbody tr")) tr.classList.toggle("on", Number(tr.dataset.id) === id);
  }

  // ------------------------------------------------------------------ assessment
  async function loadAssessment() {
    const month = $("a-month").value;
    const a = await run(() => api(`/api/dept/assessment${month ? `?month=${month}` : ""}`));
    if (!a) return;
    $("a-period").textContent = `${a.period.label} · 本单位主办工单 ${a.tickets} 件`;
    const line = (x) => `<tr><td>${esc(x.item)}</td><td class="num">${x.count}</td><td class="num">${x.points > 0 ? "+" : ""}${x.points}</td>
      <td>${x.entered ? `<span class="empty">热线中心录入</span>` : x.tickets.map((t) => `<a href="#" data-open="${t.id}">${esc(t.title)}</a>`).join("、")}</td></tr>`;
    $("assessment").innerHTML = `<div class="a-score"><span class="v" id="a-score">${a.score}</span><span class="l">分（满分 100）</span>
        <span>组织领导 ${a.leadership} · 制度建设 ${a.rules} · 工作实绩 ${a.results} / 80</span></div>
      <table class="grid a-items"><thead><tr><th>项目</th><th class="num">次数</th><th class="num">分值</th><th>涉及工单</th></tr></thead>
        <tbody>${[...a.deductions, ...a.bonuses].map(line).join("")
          || `<tr><td colspan="4" class="empty">本月暂无扣分或加分项</td></tr>`}</tbody></table>`;
  }
  $("assessment").addEventListener("click", (e) => {
    const link = e.target.closest("a[data-open]");
    if (!link) return;
    e.preventDefault();
    T.open(Number(link.dataset.open));
  });
  $("a-month").addEventListener("change", loadAssessment);
  $("a-month").value = ((d) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}`)(new Date());

  // ------------------------------------------------------------------ filters, keys
  function filtersChanged() {
    state.view = $("f-view").value; state.colour = $("f-colour").value; state.sort = $("f-sort").value;
    state.q = $("f-q").value.trim(); state.page = 1;
    loadList();
  }
  // open work sorts by the deadline that runs; finished or mixed lists (no deadline) by intake, newest first
  const BY_INTAKE = new Set(["replied", "returned", "closed", "all"]);
  function viewChanged() {
    $("f-sort").value = BY_INTAKE.has($("f-view").value) ? "-created_at" : "current_due";
    filtersChanged();
  }
  $("f-view").addEventListener("change", viewChanged);
  for (const id of ["f-colour", "f-sort"]) $(id).addEventListener("change", filtersChanged);
  let typing = null;
  $("f-q").addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(filtersChanged, 300); });
  document.querySelector(".dept-counters").addEventListener("click", (e) => {
    const c = e.target.closest(".counter");
    if (!c) return;
    $("f-view").value = c.dataset.view; $("f-colour").value = c.dataset.colour;
    viewChanged();
  });
  $("prev").onclick = () => { if (state.page > 1) { state.page -= 1; loadList(); } };
  $("next").onclick = () => { state.page += 1; loadList(); };

  const tbody = $("tickets").querySelector("tbody");
  tbody.addEventListener("click", (e) => {
    const tr = e.target.closest("tr[data-id]");
    if (tr) T.open(Number(tr.dataset.id));
  });
  tbody.addEventListener("keydown", (e) => {
    const tr = e.target.closest("tr[data-id]");
    if (!tr) return;
    if (e.key === "Enter") { e.preventDefault(); T.open(Number(tr.dataset.id)); }
    const next = e.key === "ArrowDown" ? tr.nextElementSibling : e.key === "ArrowUp" ? tr.previousElementSibling : null;
    if (next) { e.preventDefault(); next.focus(); }
  });
  document.addEventListener("keydown", (e) => {
    const typingHere = /^(INPUT|TEXTAREA|SELECT)$/.test(e.target.tagName);
    if (e.key === "/" && !typingHere) { e.preventDefault(); $("f-q").focus(); }
    if (e.key === "ArrowDown" && !typingHere && !e.target.closest("tr")) {
      const first = tbody.querySelector("tr"); if (first) { e.preventDefault(); first.focus(); }
    }
  });

  // ------------------------------------------------------------------ live
  let pending = null;
  function reload() {
    if (pending) return;
    pending = setTimeout(async () => { pending = null; await Promise.all([loadSummary(), loadList()]); }, 200);
  }
  const SAY = {transfer: (m) => `新派单：工单 ${m.number}`, supervise: (m) => `督办：工单 ${m.number} 收到督办意见`,
               approve_extension: (m) => `工单 ${m.number} 的延期申请已批准`,
               refuse_extension: (m) => `工单 ${m.number} 的延期申请被驳回`,
               callback: (m) => m.status === "in_progress" ? `工单 ${m.number} 回访不满意，已退回重办` : ""};
  function onMessage(m) {
    if (m.type !== "ticket_update") return;
    reload();
    if (T.current() === m.ticket_id) T.refresh();
    const say = m.by !== ME && SAY[m.action] && SAY[m.action](m);
    if (say) notice(say);
  }
  window.HotlineLive({
    onMessage,
    onResync: () => { reload(); T.refresh(); },
    onStatus: (up) => { $("link").className = `dot ${up ? "on" : "off"}`; },
  });

  window.deptPortal = {reload, mark};
  loadSummary(); loadList(); loadAssessment();
})();
