// 工单中心's side panel: one ticket's whole file (matter, departments, history, supervision notes with
// their answers, attachments, calls, and for leads the confidential-read log) and a button for each
// workflow step the role may take now; a step that needs words opens a small form in the panel.
"use strict";
window.deskPanel = function deskPanel({role, departments, onChanged}) {
  const {api, post, esc, when, notice, run, daysLeft} = window.desk;
  const el = document.getElementById("panel");
  const LEADS = role === "lead" || role === "admin";
  // what each step asks for ("?" = may stay empty); steps not listed need nothing
  const FIELDS = {
    transfer: ["department_id", "co_department_ids", "opinion"], close_directly: ["result"],
    merge: ["duplicate_of"], link: ["duplicate_of"], approve_extension: ["note?"], refuse_extension: ["reason"],
    redo: ["note?"], close: ["reason?"], supervise: ["reason"], return: ["reason"],
    request_extension: ["days", "reason"], reply: ["result"], progress: ["note"], assign: ["assignee"],
    answer_supervision: ["note"],
  };
  const LABELS = {department_id: "承办单位", co_department_ids: "协办单位（可多选）", opinion: "转办意见", result: "办理结果",
                  duplicate_of: "原工单编号（14位）", note: "备注", reason: "原因", days: "延期天数（工作日）", assignee: "承办人"};
  const ROLES = {operator: "话务员", lead: "值班长", qa: "质检", department: "承办单位", admin: "管理员", system: "系统"};
  const PURPOSES = {detail: "查看详情", list: "列表", export: "导出", create: "受理", caller_lookup: "来电查询"};
  let file = null;  // the open ticket's /api/desk/tickets/{id}

  async function open(id) {
    const got = await run(() => api(`/api/desk/tickets/${id}`));
    if (!got) return false;
    file = got;
    render();
    el.hidden = false;
    loadAttachments(got.ticket.id);
    loadNotified(got.ticket.id);
    if (LEADS && got.ticket.confidential) loadReads(got.ticket.id);
    return true;
  }
  function close() { el.hidden = true; file = null; }
  const currentId = () => (file ? file.ticket.id : null);

  function render() {
    const t = file.ticket;
    const depts = t.departments.map((d) => `<li>${d.is_lead ? "<b>牵头</b>" : "协办"} ${esc(d.name)}
      ${d.assignee ? `<small>承办人 ${esc(d.assignee)}</small>` : ""}</li>`).join("") || `<li class="empty">尚未转办</li>`;
    const flags = [t.emergency && `<span class="tag urgent">紧急</span>`, t.confidential && `<span class="tag">保密</span>`,
                   t.supervision_count && `<span class="tag sup">督办 ${t.supervision_count}</span>`].filter(Boolean).join(" ");
    el.innerHTML = `
      <header><h1>${esc(t.number || "草稿")} <small>${esc(t.status_label)}</small> ${flags}</h1>
        <button type="button" class="quiet small" data-close title="Esc">关闭</button></header>
      <p class="dl-${esc(t.deadline_state)}"><span class="dot"></span>${esc(t.deadline_label)}
        ${t.current_due ? `· 时限 ${when(t.current_due)} · ${daysLeft(t.working_days_left)}` : ""}
        ${t.query_code ? `· 查询码 <b>${esc(t.query_code)}</b>` : ""}</p>
      <div class="actions" id="p-actions">${file.actions.map((a) =>
        `<button type="button" data-act="${esc(a.action)}">${esc(a.label)}</button>`).join("")
        || `<span class="hint">当前无可执行的操作</span>`}</div>
      <div id="p-form"></div>
      <section><h2>事项</h2><dl class="facts">${facts(t)}</dl></section>
      <section><h2>承办单位</h2><ul class="plain">${depts}</ul></section>
      <section><h2>督办</h2><ul class="plain notes">${file.supervisions.map((s) => `<li>
        <b>${esc(s.reason)}</b> ${esc(s.note)} <small>${esc(s.by)} · ${when(s.opened_at)}</small>
        <div class="${s.answered_at ? "answer" : "answer open"}">${s.answered_at
          ? `答复：${esc(s.answer)} <small>${esc(s.answered_by)} · ${when(s.answered_at)}</small>` : "待承办单位答复"}</div></li>`).join("")
        || `<li class="empty">没有督办</li>`}</ul></section>
      <section><h2>附件</h2><ul class="plain" id="p-attachments"><li class="empty">正在读取…</li></ul></section>
      <section><h2>通知记录</h2><ul class="plain" id="p-notified"><li class="empty">正在读取…</li></ul></section>
      <section><h2>流转记录</h2><ol class="timeline">${file.history.map((e) => `<li><span class="when">${when(e.at)}</span>
        <b>${esc(e.label)}</b> ${esc(e.actor)} ${e.from !== e.to ? `<small>${esc(e.from)} → ${esc(e.to)}</small>` : ""}
        ${e.note ? `<div>${esc(e.note)}</div>` : ""}</li>`).join("")}</ol></section>
      ${file.calls.length ? `<section><h2>通话</h2><ul class="plain">${file.calls.map((c) => `<li>${when(c.offered) || "回拨"}
        ${esc(c.caller)} ${c.talk_s ? `通话 ${Math.round(c.talk_s)} s` : ""} ${c.survey_label ? "· 评价 " + esc(c.survey_label) : ""}</li>`).join("")}
        </ul></section>` : ""}
      ${LEADS && t.confidential ? `<section><h2>保密查阅记录</h2><ul class="plain" id="p-reads"><li class="empty">正在读取…</li></ul></section>` : ""}`;
  }

  // the matter as label → text, the empty ones left out
  function facts(t) {
    const join = (...xs) => xs.filter(Boolean).join(" · ");
    return [
      ["标题", t.title], ["分类", join(t.category, t.subcategory, t.handling_mode)],
      ["来电人", join(`${t.caller_name} ${t.caller_number}`.trim(), t.contact && `联系 ${t.contact}`, t.caller_address)],
      ["受理", `${when(t.created_at)} · 工号 ${t.operator}`], ["时间地点", join(t.matter_time, t.district, t.matter_place)],
      ["经过", t.matter_course], ["现状", t.matter_state], ["诉求", t.matter_demand], ["答复", t.reply_text],
      ["回访", t.satisfaction && join(`办理过程 ${t.satisfaction_process || "—"}`, `办理结果 ${t.satisfaction}`, t.callback_result)],
      ["重办", t.redo_count && `${t.redo_count} 次`],
    ].filter(([, v]) => v).map(([k, v]) => `<dt>${k}</dt><dd>${esc(v)}</dd>`).join("");
  }
  async function loadAttachments(id) {
    let rows = [];
    try {  // the files' route may not answer (not served on this node): then there is nothing to list
      const got = await api(`/api/tickets/${id}/attachments`);
      rows = Array.isArray(got) ? got : (got && got.items) || [];
    } catch (e) { rows = []; }
    const box = document.getElementById("p-attachments");
    if (!box || currentId() !== id) return;
    box.innerHTML = rows.length ? rows.map((a) => `<li><a href="/api/tickets/${id}/attachments/${a.id}"
      download>${esc(a.name)}</a> <small>${Math.ceil(a.size / 1024)} KB · ${esc(a.by)} · ${when(a.at)}</small></li>`).join("")
      : `<li class="empty">暂无附件</li>`;
  }
  async function loadNotified(id) {  // reminders and supervision notes sent about this ticket
    const got = await run(() => api(`/api/notifications?ticket_id=${id}`));
    const box = document.getElementById("p-notified");
    if (!box || !got || currentId() !== id) return;
    box.innerHTML = got.items.map((n) => `<li>${when(n.sent_at || n.created_at)} <b>${esc(n.kind_label)}</b>
      ${esc(n.channel_label)} → ${esc(n.recipient)} <small>${esc(n.status_label)}${n.error ? " · " + esc(n.error) : ""}</small></li>`).join("")
      || `<li class="empty">尚无通知</li>`;
  }
  async function loadReads(id) {
    const rows = await run(() => api(`/api/desk/tickets/${id}/reads`));
    const box = document.getElementById("p-reads");
    if (!box || !rows || currentId() !== id) return;
    box.innerHTML = rows.map((r) => `<li>${when(r.at)} <b>${esc(r.username)}</b> ${esc(ROLES[r.role] || r.role)} ·
      ${esc(PURPOSES[r.purpose] || r.purpose)}${r.masked ? " <small>（已脱敏）</small>" : ""}</li>`).join("")
      || `<li class="empty">尚无查阅</li>`;
  }

  // ------------------------------------------------------------------ steps
  function fieldHtml(spec) {
    const name = spec.replace("?", ""), label = LABELS[name] || name;
    const options = () => departments().map((d) => `<option value="${d.id}">${esc(d.name)}</option>`).join("");
    let input;
    if (name === "department_id") input = `<select name="department_id"><option value="">请选择</option>${options()}</select>`;
    else if (name === "co_department_ids") input = `<select name="co_department_ids" multiple size="4">${options()}</select>`;
    else if (name === "days") input = `<input name="days" type="number" min="1" max="30" value="5">`;
    else if (name === "duplicate_of") input = `<input name="duplicate_of" maxlength="14" inputmode="numeric">`;
    else if (name === "assignee") input = `<input name="assignee" maxlength="64">`;
    else input = `<textarea name="${name}" rows="2" maxlength="4000"></textarea>`;
    return `<label data-optional="${spec.endsWith("?")}" data-label="${esc(label)}">${esc(label)} ${input}</label>`;
  }
  function showForm(action, label) {
    if (action === "callback") { location.href = `/callbacks?ticket=${file.ticket.id}`; return; }
    const fields = FIELDS[action] || [];
    const box = document.getElementById("p-form");
    box.innerHTML = `<form class="act-form" data-action="${esc(action)}" data-label="${esc(label)}"><b>${esc(label)}</b>
      ${fields.map(fieldHtml).join("")}<span><button type="submit">确定${esc(label)}</button>
      <button type="button" class="quiet" data-cancel>取消</button></span></form>`;
    const first = box.querySelector("select, input, textarea, button");
    if (first) first.focus();
  }
  async function valueOf(field) {
    const name = field.name;
    if (name === "department_id" || name === "days") return field.value ? Number(field.value) : null;
    if (name === "co_department_ids") return [...field.selectedOptions].map((o) => Number(o.value));
    if (name === "duplicate_of") {
      const number = field.value.trim();
      if (!/^\d{14}$/.test(number)) throw new Error("原工单编号应为14位数字");
      const got = await api(`/api/desk/tickets?number=${number}`);
      if (!got.items.length) throw new Error(`找不到工单 ${number}`);
      return got.items[0].id;
    }
    return field.value.trim();
  }
  async function submit(form) {
    const body = {};
    for (const label of form.querySelectorAll("label")) {
      const field = label.querySelector("select, input, textarea");
      const value = await valueOf(field);
      const empty = value === null || value === "" || (Array.isArray(value) && !value.length);
      if (empty && label.dataset.optional !== "true" && field.name !== "co_department_ids") {
        field.focus();
        throw new Error(`请填写${label.dataset.label}`);
      }
      if (!empty) body[field.name] = value;
    }
    const id = file.ticket.id;
    const t = await post(`/api/tickets/${id}/${form.dataset.action}`, body);
    notice(`已${form.dataset.label}：工单 ${t.number}（${t.status_label}）`);
    await open(id);
    onChanged();
  }
  el.addEventListener("click", (ev) => {
    const b = ev.target.closest("button");
    if (!b) return;
    if (b.dataset.close !== undefined) { close(); onChanged(false); }
    else if (b.dataset.cancel !== undefined) document.getElementById("p-form").innerHTML = "";
    else if (b.dataset.act) showForm(b.dataset.act, b.textContent.trim());
  });
  el.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const form = ev.target.closest("form.act-form");
    if (form) run(() => submit(form));
  });
  return {open, close, currentId, isOpen: () => !el.hidden};
};
