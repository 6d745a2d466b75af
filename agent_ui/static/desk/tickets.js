// 工单中心: one table under one row of filters, saved views (我的工单 · 今日超期 · 待回访 · 督办中),
// paging, export (leads, QA), the side panel (panel.js). Keyboard: / focuses the full-text box, ↑↓
// move through the rows, Enter opens one, Esc closes the panel. Live: ticket_update messages
// reload the table (and the open ticket).
"use strict";
(() => {
  const {api, esc, when, run, daysLeft, debounced} = window.desk;
  const $ = (s) => document.querySelector(s);
  const root = $("#desk");
  const form = $("#filters");
  const body = $("#tickets tbody");
  let view = "all", page = 1, query = {}, directory = [];
  const panel = window.deskPanel({role: root.dataset.role, departments: () => directory,
                                  onChanged: (reload = true) => { if (reload) { load(); loadCounts(); } focusRow(); }});

  function params() {
    const p = new URLSearchParams({view, page, per_page: 20});
    for (const el of form.elements) if (el.name && el.value.trim()) p.set(el.name, el.value.trim());
    return p;
  }
  async function load() {
    const supervised = view === "supervised";
    $("#tickets").hidden = $("#pager").hidden = form.hidden = supervised;
    $("#supervisions").hidden = $("#sup-all-box").hidden = !supervised;
    $("#no-tickets").hidden = true;
    if (supervised) return loadSupervisions();
    const got = await run(() => api(`/api/desk/tickets?${params()}`));
    if (!got) return;
    query = got.query;
    const open = panel.currentId();
    body.innerHTML = got.items.map((t) => row(t, t.id === open)).join("");
    $("#no-tickets").hidden = got.items.length > 0;
    const more = got.total_capped || got.page * got.per_page < got.total;
    $("#page-info").textContent = `第 ${got.page} 页 · 共 ${got.total}${got.total_capped ? "+" : ""} 件`;
    $("#prev").disabled = got.page <= 1;
    $("#next").disabled = !more;
  }
  function row(t, on) {
    const lead = t.departments.find((d) => d.is_lead), co = t.departments.filter((d) => !d.is_lead);
    const tags = [t.emergency && `<span class="tag urgent">紧急</span>`, t.confidential && `<span class="tag">保密</span>`,
                  t.supervision_count && `<span class="tag sup">督办</span>`].filter(Boolean).join("");
    return `<tr data-id="${t.id}" tabindex="0" class="dl-${esc(t.deadline_state)}${on ? " on" : ""}">
      <td><b>${esc(t.number || "草稿")}</b> ${tags}</td><td>${when(t.created_at)}</td>
      <td>${esc(t.category)}${t.subcategory ? "·" + esc(t.subcategory) : ""}</td><td class="title">${esc(t.title)}</td>
      <td>${esc(t.caller_number)}</td>
      <td>${lead ? esc(lead.name) : ""}${co.length ? `<small> 协办 ${esc(co.map((d) => d.name).join("、"))}</small>` : ""}</td>
      <td class="st">${esc(t.status_label)}</td>
      <td class="dl" title="${esc(t.deadline_label)}"><span class="dot"></span>${daysLeft(t.working_days_left) || esc(t.deadline_label)}</td></tr>`;
  }
  async function loadSupervisions() {
    const rows = (await run(() => api(`/api/desk/supervisions?open_only=${!$("#sup-all").checked}`))) || [];
    $("#supervisions tbody").innerHTML = rows.map((s) => `<tr data-id="${s.ticket_id}" tabindex="0">
      <td>${when(s.opened_at)}</td><td><b>${esc(s.number)}</b></td><td class="title">${esc(s.title)}</td>
      <td>${esc(s.department)}</td><td>${esc(s.note || s.reason)}</td><td>${esc(s.by)}</td>
      <td>${window.desk.notified(s.notified)}</td>
      <td>${s.answered_at ? esc(s.answer) : `<span class="hint">待答复</span>`}</td></tr>`).join("");
    $("#no-supervisions").hidden = rows.length > 0;
  }
  async function loadCounts() {
    const got = await run(() => api("/api/desk/counts"));
    if (!got) return;
    for (const b of document.querySelectorAll("[data-count]")) b.textContent = got[b.dataset.count] || "";
  }
  async function loadDirectory() {
    directory = (await run(() => api("/api/departments"))) || [];
    const sel = $("#f-dept"), keep = sel.value;
    sel.innerHTML = `<option value="">承办单位：全部</option>` + directory.map((d) => `<option value="${d.id}">${esc(d.name)}</option>`).join("");
    sel.value = keep;
  }

  // ------------------------------------------------------------------ filters, views, paging, export
  form.addEventListener("submit", (ev) => { ev.preventDefault(); page = 1; load(); });
  form.addEventListener("change", (ev) => { if (ev.target.tagName === "SELECT" || ev.target.type === "date") { page = 1; load(); } });
  $("#sup-all").onchange = load;
  $("#clear-filters").onclick = () => { form.reset(); page = 1; load(); };
  $("#prev").onclick = () => { page = Math.max(1, page - 1); load(); };
  $("#next").onclick = () => { page += 1; load(); };
  document.querySelector(".views").addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-view]");
    if (!b) return;
    view = b.dataset.view; page = 1;
    for (const x of document.querySelectorAll("[data-view]")) x.classList.toggle("on", x === b);
    load();
  });
  function exportAs(format) {
    const p = new URLSearchParams({format});
    for (const [k, v] of Object.entries(query)) for (const one of [].concat(v)) p.append(k, one);
    location.href = `/api/tickets/export?${p}`;
  }
  if ($("#export-csv")) { $("#export-csv").onclick = () => exportAs("csv"); $("#export-xlsx").onclick = () => exportAs("xlsx"); }

  // ------------------------------------------------------------------ opening, keyboard
  const rows = () => [...document.querySelectorAll("#tickets:not([hidden]) tbody tr, #supervisions:not([hidden]) tbody tr")];
  async function openRow(tr) {
    if (!tr) return;
    if (await panel.open(Number(tr.dataset.id))) {
      for (const x of rows()) x.classList.toggle("on", x === tr);
    }
  }
  function focusRow() {
    const on = rows().find((r) => r.classList.contains("on")) || rows()[0];
    if (on) on.focus();
  }
  document.querySelector(".desk-list").addEventListener("click", (ev) => openRow(ev.target.closest("tbody tr")));
  document.addEventListener("keydown", (ev) => {
    const t = ev.target, typing = /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName);
    if (ev.key === "/" && !typing) { ev.preventDefault(); $("#q").focus(); $("#q").select(); return; }
    if (ev.key === "Escape") {  // a field being typed in is left first: Esc never loses words
      if (typing) t.blur();
      else if (panel.isOpen()) { ev.preventDefault(); panel.close(); focusRow(); }
      return;
    }
    const list = rows(), at = list.indexOf(t.closest ? t.closest("tr") : null);
    const inBox = form.contains(t) && t.tagName === "INPUT" && t.type !== "date";
    if (ev.key === "ArrowDown" && (at >= 0 || inBox)) { ev.preventDefault(); (list[at + 1] || list[at] || list[0])?.focus(); }
    else if (ev.key === "ArrowUp" && at > 0) { ev.preventDefault(); list[at - 1].focus(); }
    else if (ev.key === "Enter" && at >= 0) { ev.preventDefault(); openRow(list[at]); }
  });

  // ------------------------------------------------------------------ live
  const refresh = debounced(() => {
    load(); loadCounts();
    const open = panel.currentId();
    if (open && !document.querySelector("#p-form form")) panel.open(open);  // not while a step is being typed
  });
  window.__live = window.HotlineLive({
    onMessage: (msg) => { if (msg.type === "ticket_update") refresh(); },
    onResync: () => { load(); loadCounts(); },
  });
  loadDirectory();
  load();
  loadCounts();
})();
