// 承办单位工作台 · the ticket beside the list: the matter, deadlines, departments, supervision notes
// with their answers, attachments and the history as a timeline; buttons only for the steps the
// workflow allows this department now. Steps post to the ticket store's own routes; files go
// first, so a refused file leaves the reply unsent. Ctrl+Enter submits a step's form, Esc closes it.
"use strict";
(function () {
  const api = window.hotlineApi;
  const $ = (id) => document.getElementById(id);
  const when = (iso) => {
    if (!iso) return "—";
    const d = new Date(iso), p = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
  };
  const daysLeft = (n) => n === null || n === undefined ? "—" : n > 0 ? `剩 ${n} 个工作日` : n === 0 ? "今日到期" : `超期 ${-n} 个工作日`;
  const size = (n) => n >= 1048576 ? `${(n / 1048576).toFixed(1)} MB` : `${Math.max(1, Math.round(n / 1024))} KB`;

  const ACTIONS = {accept: "签收", start: "开始办理", progress: "办理进展", reply: "答复", request_extension: "申请延期",
                   answer_supervision: "回复督办", assign: "分派", return: "退回"};
  const EVENTS = Object.assign({}, ACTIONS, {create: "受理", register: "登记", transfer: "转办", approve_extension: "批准延期",
    refuse_extension: "驳回延期", callback: "回访", redo: "重办", close: "办结", archive: "归档", supervise: "督办",
    attach: "上传附件", link: "关联工单", repeat: "重复反映", update: "修改受理内容", merge: "合并", close_directly: "直接办结"});
  const FILES = {name: "files", label: "附件（可多选：JPG、PNG、PDF、Word、Excel）", kind: "files"};
  // the fields of each step's form; a step without one (签收, 开始办理) runs on the click
  const FORMS = {
    return: [{name: "reason", label: "退回原因（必填：为何不属于本单位办理）", kind: "text"}],
    request_extension: [{name: "days", label: "延期天数（工作日，1-30）", kind: "number"},
                        {name: "reason", label: "申请理由（必填）", kind: "text"}],
    progress: [{name: "note", label: "办理进展（必填）", kind: "text"}, FILES],
    reply: [{name: "result", label: "答复内容：办理结果（必填）", kind: "text"}, FILES],
    answer_supervision: [{name: "supervision_id", label: "回复哪条督办", kind: "supervision"},
                         {name: "note", label: "回复内容（必填）", kind: "text"}],
    assign: [{name: "assignee", label: "承办人", kind: "staff"}, {name: "note", label: "分派说明（可不填）", kind: "text"}],
  };

  let current = null;  // {id, data}: the ticket open in the panel

  const {esc, notice, run} = window.hotlineUi;

  async function upload(id, file) {
    const body = new FormData();
    body.append("file", file, file.name);
    let res;
    try {
      res = await fetch(`/api/tickets/${id}/attachments`, {method: "POST", body, headers: {"X-Requested-With": "hotline"}});
    } catch (e) { throw new Error(`附件“${file.name}”未上传：无法连接服务器，请重试`); }
    const got = await res.json().catch(() => null);
    if (res.status === 401) location.href = `/login?next=${encodeURIComponent(location.pathname)}`;
    if (!res.ok) throw new Error(`附件“${file.name}”未上传：${(got && got.detail) || `请求失败（${res.status}）`}`);
    return got;
  }

  // ------------------------------------------------------------------ rendering
  function head(d) {
    const t = d.ticket;
    const allowed = t.allowed_actions.filter((a) => ACTIONS[a]
      && (a !== "answer_supervision" || d.supervisions.some((s) => !s.answered_at)));
    const order = Object.keys(ACTIONS);
    allowed.sort((a, b) => order.indexOf(a) - order.indexOf(b));
    return `<div class="d-title"><span class="dl dl-${esc(t.deadline_state)}" title="${esc(t.deadline_label)}"></span>
        <b id="d-number">${esc(t.number)}</b> ${esc(t.title)}</div>
      <div class="d-meta"><span class="pill" id="d-status">${esc(t.status_label)}</span>
        <span>${d.lead ? "主办" : "协办"}</span><span>待办：<b id="d-waits">${esc(t.waits_for)}</b></span>
        <span id="d-left" class="dl-text dl-${esc(t.deadline_state)}">${daysLeft(t.working_days_left)}</span>
        ${t.emergency ? `<span class="flag">突发紧急</span>` : ""}</div>
      <div class="d-actions">${allowed.map((a) => `<button type="button" data-action="${a}"
        class="${a === "return" ? "refuse" : ""}">${ACTIONS[a]}</button>`).join("")
        || `<span class="empty">当前没有需要本单位办理的步骤</span>`}</div>
      ${d.return_until ? `<p class="hint">如不属于本单位职责，请在 ${when(d.return_until)} 前退回；逾期不能退回。</p>` : ""}`;
  }

  function dl(rows) {
    return `<dl class="d-fields">${rows.filter(([, v]) => v !== "" && v !== null && v !== undefined)
      .map(([k, v, id]) => `<dt>${k}</dt><dd${id ? ` id="${id}"` : ""}>${v}</dd>`).join("")}</dl>`;
  }

  function body(d) {
    const t = d.ticket;
    const caller = t.masked ? `<span class="masked">（保密）</span> <small>来电人要求保密，身份信息不向承办单位提供</small>`
      : esc([t.caller_name, t.caller_number].filter(Boolean).join(" · ") || "—");
    const depts = t.departments.map((x) => `${esc(x.name)}（${x.is_lead ? "主办" : "协办"}${x.assignee ? ` · 承办人 ${esc(x.assignee)}` : ""}）`).join("；");
    const notes = d.supervisions.map((s) => `<li class="${s.answered_at ? "answered" : "open"}">
        <div><b>${esc(s.reason)}</b> · ${esc(s.by)} · ${when(s.opened_at)}${s.note ? `：${esc(s.note)}` : ""}</div>
        <div class="answer">${s.answered_at ? `回复（${esc(s.answered_by)} · ${when(s.answered_at)}）：${esc(s.answer)}`
          : `<span class="bad-text">待回复</span>`}</div></li>`).join("");
    const files = d.attachments.map((a) => `<li><a href="${esc(a.url)}" download="${esc(a.name)}" data-attachment="${a.id}">${esc(a.name)}</a>
        <small>${size(a.size)} · ${esc(a.by)} · ${when(a.at)}</small></li>`).join("");
    const history = d.history.map((e) => `<li><span class="when">${when(e.at)}</span>
        <b>${esc(EVENTS[e.action] || e.action)}</b> <span class="who">${esc(e.actor)}</span>${e.note ? `<div class="note">${esc(e.note)}</div>` : ""}</li>`).join("");
    return `<h2>诉求</h2>${dl([
        ["来电人", caller, "d-caller"], ["联系方式", t.masked ? "（保密）" : esc(t.contact)],
        ["分类", esc([t.category, t.subcategory].filter(Boolean).join(" · "))], ["所属区县", esc(t.district)],
        ["事发地点", esc(t.matter_place)], ["事发时间", esc(t.matter_time)], ["事件经过", esc(t.matter_course)],
        ["现状", esc(t.matter_state)], ["诉求", esc(t.matter_demand)], ["转办意见", esc(t.transfer_opinion)],
        ["承办单位", depts]])}
      <h2>时限</h2>${dl([["受理时间", when(t.created_at)], ["签收时限", when(t.accept_due)],
        ["办结时限", when(t.due_at), "d-due"], ["当前时限", `${when(t.current_due)} · ${daysLeft(t.working_days_left)}`],
        ["已延期", t.extension_days ? `${t.extension_days} 个工作日` : ""],
        ["延期申请中", t.extension_requested_days ? `${t.extension_requested_days} 个工作日，等待热线中心审批` : ""]])}
      ${t.reply_text ? `<h2>答复</h2><p class="d-reply">${esc(t.reply_text)}</p>` : ""}
      ${t.satisfaction ? `<h2>回访</h2><p>${esc(t.satisfaction)}${t.callback_result ? `：${esc(t.callback_result)}` : ""}</p>` : ""}
      <h2>督办 <small>${d.supervisions.length} 条</small></h2><ul class="d-notes" id="d-notes">${notes || `<li class="empty">无督办</li>`}</ul>
      <h2>附件 <small>${d.attachments.length} 个</small></h2><ul class="d-files" id="d-files">${files || `<li class="empty">无附件（答复或记录进展时可上传）</li>`}</ul>
      <h2>通知 <small>${d.notified.length} 条</small></h2><ul class="d-notified">${d.notified.map((n) =>
        `<li>${when(n.sent_at || n.created_at)} <b>${esc(n.kind_label)}</b> ${esc(n.channel_label)} → ${esc(n.recipient)}
         <small>${esc(n.status_label)}</small></li>`).join("") || `<li class="empty">暂无通知</li>`}</ul>
      <h2>流转记录</h2><ol class="timeline" id="d-history">${history}</ol>`;
  }

  function render() {
    const el = $("detail");
    if (!el.querySelector("#d-head")) {
      el.innerHTML = `<div id="d-head"></div><form id="act-form" class="act-form" hidden autocomplete="off"></form><div id="d-body"></div>`;
      el.querySelector("#act-form").addEventListener("submit", (e) => { e.preventDefault(); submit(); });
    }
    $("d-head").innerHTML = head(current.data);
    $("d-body").innerHTML = body(current.data);
    const form = $("act-form");  // a form being typed survives a live refresh, while its step is still allowed
    if (!form.hidden && !current.data.ticket.allowed_actions.includes(form.dataset.action)) {
      closeForm();
      notice("工单状态已变化，该操作已不可用", true);
    }
  }

  // ------------------------------------------------------------------ step forms
  function field(f) {
    if (f.kind === "text") return `<label>${f.label}<textarea name="${f.name}" rows="3" maxlength="4000"></textarea></label>`;
    if (f.kind === "number") return `<label>${f.label}<input name="${f.name}" type="number" min="1" max="30" value="5"></label>`;
    if (f.kind === "files") return `<label>${f.label}<input name="${f.name}" type="file" multiple
      accept=".jpg,.jpeg,.png,.pdf,.docx,.xlsx"></label>`;
    if (f.kind === "staff") {
      const staff = window.deptStaff || [];
      return `<label>${f.label}<select name="${f.name}">${staff.map((s) => `<option value="${esc(s.username)}">${esc(s.display_name)}（${esc(s.username)}）</option>`).join("")}</select></label>`;
    }
    const open = current.data.supervisions.filter((s) => !s.answered_at);
    return `<label>${f.label}<select name="${f.name}">${open.map((s) => `<option value="${s.id}">${esc(s.reason)} · ${when(s.opened_at)}${s.note ? ` · ${esc(s.note.slice(0, 30))}` : ""}</option>`).join("")}</select></label>`;
  }

  function openForm(action) {
    const form = $("act-form");
    form.dataset.action = action;
    form.innerHTML = `<h2>${ACTIONS[action]}</h2>${FORMS[action].map(field).join("")}
      <div class="buttons"><button type="submit" id="act-submit">提交${ACTIONS[action]}（Ctrl+Enter）</button>
      <button type="button" class="quiet" id="act-cancel">取消（Esc）</button></div>`;
    form.hidden = false;
    form.querySelector("#act-cancel").onclick = closeForm;
    (form.querySelector("textarea, select, input") || form).focus();
  }

  function closeForm() {
    const form = $("act-form");
    if (!form) return;
    form.hidden = true; form.innerHTML = ""; delete form.dataset.action;
  }

  async function step(action, params, files) {
    const id = current.id;
    for (const f of files || []) { await upload(id, f); }
    await api(`/api/tickets/${id}/${action}`, {method: "POST", body: JSON.stringify(params)});
    closeForm();
    notice(`已${ACTIONS[action]}：工单 ${current.data.ticket.number}${files && files.length ? `（附件 ${files.length} 个）` : ""}`);
    await refresh();
    window.deptPortal && window.deptPortal.reload();
  }

  async function submit() {
    const form = $("act-form");
    const action = form.dataset.action;
    const params = {};
    let files = [];
    for (const el of form.elements) {
      if (!el.name) continue;
      if (el.type === "file") files = [...el.files];
      else if (el.name === "days" || el.name === "supervision_id") params[el.name] = el.value ? Number(el.value) : null;
      else params[el.name] = el.value.trim();
    }
    const must = {return: "reason", request_extension: "reason", progress: "note", reply: "result", answer_supervision: "note",
                  assign: "assignee"}[action];
    if (must && !params[must]) { notice(`请填写${FORMS[action].find((f) => f.name === must).label.replace(/（.*）/, "")}`, true); return; }
    const btn = form.querySelector("#act-submit");
    btn.disabled = true;
    await run(() => step(action, params, files));
    btn.disabled = false;
  }

  $("detail").addEventListener("click", (e) => {
    const btn = e.target.closest("button[data-action]");
    if (!btn || !current) return;
    const action = btn.dataset.action;
    if (FORMS[action]) { openForm(action); return; }
    btn.disabled = true;
    run(() => step(action, {}, [])).finally(() => { btn.disabled = false; });
  });
  $("detail").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && e.ctrlKey && e.target.closest("#act-form")) { e.preventDefault(); submit(); }
    if (e.key === "Escape" && e.target.closest("#act-form")) { e.preventDefault(); closeForm(); }
  });

  // ------------------------------------------------------------------ public
  // a live refresh and a step's own may overlap: an older answer never replaces a newer one
  let asked = 0, shown = 0;
  async function read(id) {
    const n = ++asked;
    const data = await api(`/api/dept/tickets/${id}`);
    if (n < shown) return null;
    shown = n;
    return data;
  }
  async function open(id) {
    if (!current || current.id !== id) closeForm();
    const data = await run(() => read(id));
    if (!data) return;
    current = {id, data};
    render();
    window.deptPortal && window.deptPortal.mark(id);
  }
  async function refresh() {
    if (!current) return;
    const id = current.id;
    try {
      const data = await read(id);
      if (!data || !current || current.id !== id) return;
      current.data = data;
      render();
    } catch (e) {
      if (e.status === 404 && current && current.id === id) {  // no longer this department's (sent elsewhere)
        current = null; closeForm();
        $("detail").innerHTML = `<p class="empty">该工单已不由本单位承办</p>`;
      } else notice(e.message, true);
    }
  }

  window.DeptTicket = {open, refresh, current: () => current && current.id, notice, run, esc, when, daysLeft};
})();
