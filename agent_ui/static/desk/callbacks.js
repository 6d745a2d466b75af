// 回访: replied tickets, the soonest due first (overdue red), each with the citizen's IVR verdict on
// the call that produced it. Enter on a row (or its 拨号 button) dials the citizen through the
// operator's seat, links that call to the ticket and opens the result form, which stays open
// during the call: 满意 / 基本满意 / 不满意 for 办理过程 and 办理结果, with notes; 不满意 needs the
// reason, and the store sends the ticket straight back to the department. With a listening node the
// call's words show beside the form, and what the citizen's words say of the two verdicts (and the
// reason, when 不满意) is proposed (智能回访): Alt+1…9 or a click takes one, nothing is filled by itself.
// While the citizen is on the line, 三方 (Alt+T) brings the department that replied into the call,
// on its SIP line or its directory phone, as the console's 三方 does.
"use strict";
(() => {
  const {api, post, esc, when, notice, run, daysLeft, debounced} = window.desk;
  const $ = (s) => document.querySelector(s);
  const OPERATOR = $("#visits").dataset.role === "operator";
  const form = $("#v-form");
  let rows = [], current = null;

  async function load() {
    const got = await run(() => api("/api/desk/callbacks"));
    if (!got) return;
    rows = got;
    // the list is drawn again (a ticket changed, the link came back): the row the keyboard is on stays so
    const focused = document.activeElement && document.activeElement.closest && document.activeElement.closest("#due tbody tr");
    $("#due tbody").innerHTML = rows.map((r) => `<tr data-id="${r.id}" tabindex="0"
        class="dl-${esc(r.deadline_state)}${current && current.id === r.id ? " on" : ""}">
      <td class="dl"><span class="dot"></span>${when(r.callback_due)} <small>${daysLeft(r.working_days_left)}</small></td>
      <td><b>${esc(r.number)}</b>${r.confidential ? ` <span class="tag">保密</span>` : ""}</td>
      <td class="title">${esc(r.title)}</td><td>${esc(r.department)}</td><td>${esc(r.caller_name)}</td>
      <td>${esc(r.caller_number)}</td><td>${r.ivr_survey_label ? `<span class="survey s-${r.ivr_survey}">${esc(r.ivr_survey_label)}</span>` : ""}</td>
      <td>${r.redo_count ? `${r.redo_count} 次` : ""}</td>
      <td>${OPERATOR && numbers(r).length ? `<button type="button" class="small" data-dial>拨号</button>` : ""}</td></tr>`).join("");
    if (focused) document.querySelector(`#due tbody tr[data-id="${focused.dataset.id}"]`)?.focus();
    $("#no-due").hidden = rows.length > 0;
    const wanted = Number(new URLSearchParams(location.search).get("ticket"));
    if (wanted && !current) { const r = rows.find((x) => x.id === wanted); if (r) show(r); }
  }
  // the number the citizen called from, and the contact they gave if it is another phone
  function numbers(r) {
    const out = [r.caller_number].filter((n) => /^\+?\d{3,20}$/.test(n || ""));
    const contact = (r.contact || "").replace(/[\s-]/g, "");
    if (/^\+?\d{3,20}$/.test(contact) && !out.includes(contact)) out.push(contact);
    return out;
  }

  function show(r) {
    current = r;
    for (const tr of document.querySelectorAll("#due tbody tr")) tr.classList.toggle("on", Number(tr.dataset.id) === r.id);
    $("#v-number").textContent = `回访 ${r.number}`;
    $("#v-ticket").innerHTML = `<p><b>${esc(r.title)}</b></p>
      <p>承办单位 ${esc(r.department)} · 答复于 ${when(r.replied_at)} · 回访期限 ${when(r.callback_due)}
        <span class="dl-${esc(r.deadline_state)}">${daysLeft(r.working_days_left)}</span></p>
      <p class="reply">答复：${esc(r.reply_text)}</p>
      ${r.ivr_survey_label ? `<p>来电时的满意度评价：<b>${esc(r.ivr_survey_label)}</b></p>` : ""}
      ${r.redo_count ? `<p class="warn">已重办 ${r.redo_count} 次</p>` : ""}`;
    $("#v-dial-number").innerHTML = numbers(r).map((n) => `<option>${esc(n)}</option>`).join("")
      || `<option value="">（无可拨打的号码）</option>`;
    $("#v-call").textContent = "";
    conferrable(false);
    form.reset();
    $("#v-redo").hidden = true;
    $("#visit").hidden = false;
  }
  function hide() {
    $("#visit").hidden = true;
    const tr = current && document.querySelector(`#due tr[data-id="${current.id}"]`);
    current = null;
    if (tr) { tr.classList.remove("on"); tr.focus(); }
  }

  async function dial() {
    const number = $("#v-dial-number").value;
    if (!current || !number) { notice("没有可拨打的号码", true); return; }
    const ticket = current;
    const got = await run(() => window.hotlineCallBack({number, ticket_id: ticket.id}));  // once per ticket, unless 再拨一次
    if (!got) return;
    // the call belongs to the ticket: its recording and its place in the ticket's calls
    const linked = await run(() => post("/api/console/link", {call_id: got.call_id, ticket_id: ticket.id}));
    calling = {call_id: got.call_id, number, linked: linked ? "（已关联工单）" : "",
               department: ticket.department, line: ticket.department_line};
    conferrable(false);
    $("#v-call").textContent = `正在回拨 ${number}：请先接起话机${calling.linked}`;
    if (transcript) transcript.reset(got.call_id);  // the call's words appear as it is spoken
    form.querySelector("input[name=satisfaction_process]").focus();
  }

  // the call itself, live: answered, its words (实时转写, when the centre has a listening node), its end
  let calling = null;
  const transcript = OPERATOR && window.ConsoleTranscript
    ? window.ConsoleTranscript({form, esc, showArticle: () => {}, articles: false, speakers: {citizen: "市民"}}) : null;
  function onLive(msg) {
    if (msg.type === "live_transcript" || msg.type === "live_assist") { if (transcript) transcript.onMessage(msg); return; }
    if (!calling || msg.call_id !== calling.call_id) return;
    if (msg.event === "OutboundAnswered") {
      $("#v-call").textContent = `通话中 ${calling.number}${calling.linked}`;
      conferrable(true);
    } else if (msg.event === "CallConferenced") {
      // citizen and operator go into the room first, the department once it answers
      const dept = calling.department || "承办单位";
      $("#v-call").textContent = msg.parties >= 3 ? `三方通话中（${calling.number}、${dept}）${calling.linked}`
        : `正在接通 ${dept}…${calling.linked}`;
      if (msg.parties >= 3) notice(`${dept} 已加入三方通话`);
      conferrable(false);
    } else if (msg.event === "OutboundEnded") {
      $("#v-call").textContent = `通话结束（通话 ${mmss(msg.talk_s)}）${calling.linked}`;
      conferrable(false);
    }
  }
  // 三方 only while the citizen is on the line, and only with a department that has a number to ring
  function conferrable(on) {
    const b = $("#v-conf");
    if (b) b.hidden = !(on && calling && calling.line);
  }
  async function conference() {
    if (!calling || !calling.line || $("#v-conf").hidden) return;
    const ok = await run(() => post("/api/seat/conference", {number: calling.line}));
    if (ok) notice(`正在邀请 ${calling.department} 加入三方通话…`);
  }
  const mmss = (s) => `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, "0")}`;

  function verdicts() {
    const pick = (name) => (form.querySelector(`input[name=${name}]:checked`) || {}).value || "";
    return {satisfaction_process: pick("satisfaction_process"), satisfaction: pick("satisfaction"),
            result: form.result.value.trim()};
  }
  async function submit() {
    const body = verdicts(), ticket = current;
    if (!ticket) return;
    if (!body.satisfaction_process || !body.satisfaction) { notice("请选择办理过程和办理结果的满意度", true); return; }
    if ((body.satisfaction === "不满意" || body.satisfaction_process === "不满意") && !body.result) {
      notice("选择“不满意”时请写明不满意的原因", true);
      form.result.focus();
      return;
    }
    const t = await run(() => post(`/api/tickets/${ticket.id}/callback`, body));
    if (!t) return;
    const back = t.status === "in_progress";
    notice(back ? `回访已记录：工单 ${t.number} 不满意，已退回${ticket.department}重办（${t.status_label}，第 ${t.redo_count} 次重办）`
      : `回访已记录：工单 ${t.number}（${t.status_label}）`);
    hide();
    load();
  }
  form.addEventListener("submit", (ev) => { ev.preventDefault(); submit(); });
  form.addEventListener("change", () => {
    const v = verdicts();
    // only the result sends the ticket back (ticketing/steps.py); 办理过程 不满意 is kept on the ticket
    $("#v-redo").hidden = v.satisfaction !== "不满意";
  });
  if ($("#v-dial")) $("#v-dial").onclick = dial;
  if ($("#v-conf")) $("#v-conf").onclick = conference;
  $("#v-close").onclick = hide;

  $("#due").addEventListener("click", (ev) => {
    const tr = ev.target.closest("tbody tr");
    const r = tr && rows.find((x) => x.id === Number(tr.dataset.id));
    if (!r) return;
    if (!current || current.id !== r.id) show(r);
    if (ev.target.closest("[data-dial]")) dial();
  });
  document.addEventListener("keydown", (ev) => {
    const t = ev.target, typing = /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName);
    if (ev.key === "Escape") { if (typing) t.blur(); else if (!$("#visit").hidden) hide(); return; }
    if (ev.altKey && ev.key.toLowerCase() === "t" && $("#v-conf") && !$("#v-conf").hidden) { ev.preventDefault(); conference(); return; }
    const list = [...document.querySelectorAll("#due tbody tr")], at = list.indexOf(t.closest ? t.closest("tr") : null);
    if (ev.key === "ArrowDown" && !typing) { ev.preventDefault(); (list[at + 1] || list[at] || list[0])?.focus(); }
    else if (ev.key === "ArrowUp" && at > 0) { ev.preventDefault(); list[at - 1].focus(); }
    else if (ev.key === "Enter" && at >= 0) {
      ev.preventDefault();
      const r = rows.find((x) => x.id === Number(list[at].dataset.id));
      show(r);
      if (OPERATOR) dial();
    }
  });

  const reload = debounced(load);  // replied or called back elsewhere: the list follows
  window.__live = window.HotlineLive({onMessage: (msg) => (msg.type === "ticket_update" ? reload() : onLive(msg)),
                                      onResync: load});
  load();
})();
