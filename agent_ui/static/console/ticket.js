// 话务员工作台's ticket form (工单): a draft that survives a reload, earlier reports of the same
// matter and the department suggestion as it is typed, 紧急 (the lead is alerted and the ticket
// supervised at once) and 保密, the 细分类别 where deadlines differ (投诉 15 / 举报 30 working days),
// 协办单位 in the transfer. After saving, the ticket number and its 查询码 stay on screen (also after
// 转办 or 办结) for the operator to tell the citizen: the status page and the IVR ask for both.
"use strict";
window.ConsoleTicket = function ConsoleTicket({form, user, api, run, notice, esc, callId}) {
  const $ = (id) => document.getElementById(id);
  const DRAFT_KEY = `hotline.console.draft.${user}`;
  const DEPTS = ["department_id", "co_department_ids"];  // their options come with the directory
  let ticketId = null;  // the ticket saved from this form
  let told = null;  // {number, query_code, caller}: what the citizen is to be told

  const draft = () => { try { return JSON.parse(localStorage.getItem(DRAFT_KEY) || "null"); } catch (e) { return null; } };
  function hasText() {
    return ["title", "matter_course", "matter_demand", "matter_place"].some((n) => form[n].value.trim());
  }
  function formData() {
    const d = {};
    for (const el of form.elements) {
      if (!el.name) continue;
      d[el.name] = el.type === "checkbox" ? el.checked : el.multiple ? [...el.selectedOptions].map((o) => o.value) : el.value;
    }
    return d;
  }
  function fill(data, names) {
    for (const el of form.elements) {
      if (!el.name || !(el.name in data) || (names && !names.includes(el.name))) continue;
      if (el.type === "checkbox") el.checked = !!data[el.name];
      else if (el.multiple) for (const o of el.options) o.selected = [].concat(data[el.name]).includes(o.value);
      else el.value = data[el.name];
    }
  }
  function saveDraft() {
    localStorage.setItem(DRAFT_KEY, JSON.stringify({data: formData(), ticketId, told, call_id: callId()}));
  }
  function loadDraft() {
    const got = draft();
    if (!got) return;
    fill(got.data);
    ticketId = got.ticketId || null;
    if (ticketId) $("saved").textContent = `已保存为工单 #${ticketId}`;
    showTold(got.told || null);
  }
  function showTold(t) {
    told = t;
    $("tell").hidden = !t;
    if (t) $("tell").innerHTML = `请告知来电人${t.caller ? `（${esc(t.caller)}）` : ""}：工单编号 <b>${esc(t.number)}</b>，
      查询码 <b id="query-code">${esc(t.query_code)}</b> — 可在公众查询页或拨打热线按键查询办理进度`;
  }
  function reset(clearCaller = true) {
    const caller = form.caller_number.value;
    form.reset();
    if (!clearCaller) form.caller_number.value = caller;
    ticketId = null;
    $("saved").textContent = "";
    $("dups").hidden = true;
    $("suggest").textContent = "";
    saveDraft();
    modeChanged();
  }
  function focusFirstEmpty() {
    const first = [...form.elements].find((el) => el.name && el.type !== "checkbox" && el.tagName !== "SELECT" && !el.value);
    if (first && (document.activeElement === document.body || !form.contains(document.activeElement))) first.focus();
  }
  function modeChanged() {
    const direct = form.handling_mode.value === "直接办理";
    $("reply-box").hidden = !direct;
    $("do-close").disabled = !direct;
    $("do-transfer").disabled = direct;
    const complaint = form.category.value === "投诉举报";
    $("confidential-hint").hidden = !complaint;
    $("sub-box").hidden = !complaint;
  }
  // the directory arrived: the department choices of the draft can be shown again
  function setDepartments(list) {
    const options = list.map((d) => `<option value="${d.id}">${esc(d.name)}</option>`).join("");
    form.department_id.innerHTML = `<option value="">（直接办理无需选择）</option>${options}`;
    form.co_department_ids.innerHTML = options;
    const got = draft();
    if (got) fill(got.data, DEPTS);
  }

  form.category.addEventListener("change", () => {
    modeChanged();
    if (form.category.value === "投诉举报" && !form.confidential.checked) notice("投诉举报：请询问来电人是否需要保密，需要则勾选“保密”");
  });
  form.handling_mode.addEventListener("change", modeChanged);
  form.emergency.addEventListener("change", () => {
    if (form.emergency.checked) notice("紧急：保存后立即提醒值班长，并自动督办");
  });
  let typing = null;
  form.addEventListener("input", () => {
    saveDraft();
    clearTimeout(typing);
    typing = setTimeout(checkDuplicatesAndSuggest, 400);  // debounced: not a request per keystroke
  });
  async function checkDuplicatesAndSuggest() {
    const d = formData();
    const text = [d.title, d.matter_course, d.matter_demand].join(" ").trim();
    if (!text) return;
    const [dups, sug] = await Promise.all([
      run(() => api("/api/console/duplicates", {method: "POST", body: JSON.stringify({
        caller_number: d.caller_number, title: d.title, category: d.category, district: d.district,
        matter_place: d.matter_place, matter_course: d.matter_course, matter_demand: d.matter_demand})})),
      run(() => api(`/api/console/suggest?text=${encodeURIComponent(text)}`)),
    ]);
    const box = $("dups");
    const others = (dups || []).filter((p) => p.id !== ticketId);  // not the ticket this form just saved
    if (others.length) {
      box.hidden = false;
      box.innerHTML = "疑似重复：" + others.map((p) => `<span class="dup" title="${esc(p.reasons.join("、"))}">${esc(p.number)}（${esc(p.reasons.join("、"))}）</span>`).join(" ");
    } else box.hidden = true;
    if (sug && sug.length) {
      $("suggest").innerHTML = "建议承办：" + sug.map((s) => `<a href="#" data-id="${s.id}">${esc(s.name)}</a>`).join("、");
    } else $("suggest").textContent = "";
  }
  $("suggest").addEventListener("click", (ev) => {
    const id = ev.target.dataset && ev.target.dataset.id;
    if (id) { ev.preventDefault(); form.department_id.value = id; saveDraft(); }
  });

  function body() {
    const d = formData();
    return {caller_number: d.caller_number, caller_name: d.caller_name, caller_address: d.caller_address,
            contact: d.contact, category: d.category, subcategory: d.category === "投诉举报" ? d.subcategory : "",
            handling_mode: d.handling_mode, title: d.title || (d.matter_demand || d.matter_course).slice(0, 40),
            matter_time: d.matter_time, matter_place: d.matter_place, district: d.district,
            matter_course: d.matter_course, matter_demand: d.matter_demand, confidential: !!d.confidential,
            emergency: !!d.emergency};
  }
  async function save() {
    if (ticketId) { notice(`工单 #${ticketId} 已保存`); return ticketId; }
    const b = body();
    if (!b.title) { notice("请填写标题或诉求后再保存", true); form.title.focus(); return null; }
    if (b.category === "投诉举报" && !b.confidential && !confirm("投诉举报：来电人不需要保密吗？\n确定 = 不保密保存，取消 = 返回勾选")) return null;
    const t = await run(() => api("/api/tickets", {method: "POST", body: JSON.stringify(b)}));
    if (!t) return null;
    ticketId = t.id;
    $("saved").textContent = `已保存为工单 ${t.number}（#${t.id}）`;
    showTold({number: t.number, query_code: t.query_code, caller: t.caller_number});
    notice(`工单 ${t.number} 已保存${t.emergency ? "，已提醒值班长（紧急）" : ""}`);
    const call = callId() || (draft() || {}).call_id;
    if (call) await run(() => api("/api/console/link", {method: "POST", body: JSON.stringify({call_id: call, ticket_id: t.id})}));
    saveDraft();
    return t.id;
  }
  async function transfer() {
    const id = await save(); if (!id) return;
    const dept = Number(form.department_id.value);
    if (!dept) { notice("请选择承办单位后再转办", true); form.department_id.focus(); return; }
    const co = formData().co_department_ids.map(Number).filter((d) => d !== dept);
    const t = await run(() => api(`/api/tickets/${id}/transfer`, {method: "POST", body: JSON.stringify({
      department_id: dept, co_department_ids: co, opinion: form.matter_demand.value.slice(0, 200)})}));
    if (t) { notice(`工单 ${t.number} 已转办：${t.departments.map((d) => d.name).join("、")}`); reset(); }
  }
  async function close() {
    const id = await save(); if (!id) return;
    const result = form.reply.value.trim();
    if (!result) { notice("请填写答复内容后再办结", true); form.reply.focus(); return; }
    const t = await run(() => api(`/api/tickets/${id}/close_directly`, {method: "POST", body: JSON.stringify({result})}));
    if (t) { notice(`工单已直接办结：${t.status_label}`); reset(); }
  }
  form.addEventListener("submit", (ev) => { ev.preventDefault(); save(); });
  $("do-transfer").onclick = transfer;
  $("do-close").onclick = close;
  $("clear").onclick = () => { if (!hasText() || confirm("清空当前表单，开始新工单？")) reset(); };

  loadDraft();
  modeChanged();
  return {save, transfer, close, reset, hasText, saveDraft, focusFirstEmpty, setDepartments};
};
