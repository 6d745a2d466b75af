// 话务员工作台: seat status, the ringing strip (screen-pop), caller history, scripts, knowledge
// base, directory (transfer / three-party call) and callbacks; the ticket form is ticket.js.
// Keyboard-first: Ctrl+S save, Ctrl+Shift+T 转办, Ctrl+Shift+D 直办办结, Alt+K 知识库,
// Alt+H 挂断, Alt+E 转专业席, Alt+R 示闲, Alt+B 示忙. Esc never clears anything.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const api = window.hotlineApi;
  const root = $("console");
  const JOB = root.dataset.job || "";
  const USER = root.dataset.user;
  const form = $("ticket");
  const FLAG_LABELS = {repeat: "⚑ 重复来电", blacklist: "⛔ 黑名单", vip: "★ 重点关注", elderly: "老年人", overdue: "有超期工单"};
  const STATE_LABELS = {signed_out: "未签入", ready: "示闲", ringing: "振铃", on_call: "通话中", wrap_up: "话后处理", busy: "示忙"};
  const DEADLINE = {green: "正常", yellow: "临期", red: "超期"};

  let seat = null;           // my seat view from /api/seat
  let call = null;           // {call_id, caller_num, waited_ms, shownAt, answeredAt, state}
  let directory = [];

  const {esc, notice, run} = window.hotlineUi;
  const phone = window.ConsolePhone({api, notice});
  function carrier(num) {
    const m = /^1(3[4-9]|4[78]|5[0-27-9]|7[28]|8[2-478]|9[578])/.test(num) ? "移动"
      : /^1(3[0-2]|4[56]|5[56]|6[67]|7[156]|8[56]|96)/.test(num) ? "联通"
      : /^1(33|49|53|7[37]|8[019]|9[0139])/.test(num) ? "电信" : "";
    return m || (/^0\d{2,3}/.test(num) || num.length <= 8 ? "固话" : "");
  }
  function fmtNum(n) { return n.length === 11 ? `${n.slice(0, 3)} ${n.slice(3, 7)} ${n.slice(7)}` : n; }
  function mmss(s) { s = Math.max(0, Math.floor(s)); return `${String(Math.floor(s / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`; }

  // ------------------------------------------------------------------ seat
  async function loadSeat() {
    const got = await run(() => api("/api/seat"));
    if (!got) return;
    seat = got.seat;
    if (got.job_number) $("job").textContent = got.job_number;
    renderSeat(seat && seat.state, seat && seat.reason, seat && seat.wrapup_remaining_s);
    const browserSeats = got.browser_seats || [];
    phone.seat(seat && seat.state !== "signed_out" ? seat.seat : null, !!seat && browserSeats.includes(seat.seat));
    const pick = $("seat-pick");
    const keep = pick.value;
    pick.innerHTML = got.free_seats.map((s) =>
      `<option value="${esc(s)}">${esc(s)}${browserSeats.includes(s) ? " · 浏览器话机" : ""}</option>`).join("");
    if (got.free_seats.includes(keep)) pick.value = keep;
    showApproval((got.approvals || [])[0]);
  }
  let wrapTimer = null;
  function renderSeat(state, reason, wrapLeft) {
    const signed = !!seat && state && state !== "signed_out";
    $("seat-no").textContent = signed ? seat.seat : "未签入";
    $("signin-box").hidden = signed;
    $("seat-actions").hidden = !signed;
    const st = $("seat-state");
    st.textContent = signed ? (STATE_LABELS[state] || state) + (reason ? `（${reason}）` : "")
      + (seat.phone_reachable === false ? " · 话机离线，来电不会分配到本坐席" : "") : "尚未签入坐席 — 请选择坐席并签入";
    st.className = `st st-${state || "signed_out"}`;
    clearInterval(wrapTimer);
    $("wrapup-done").hidden = state !== "wrap_up";
    if (state === "wrap_up" && wrapLeft != null) {
      let left = wrapLeft;
      $("wrapup-left").textContent = `${Math.ceil(left)} s`;
      wrapTimer = setInterval(() => { left -= 1; $("wrapup-left").textContent = `${Math.max(0, Math.ceil(left))} s`; }, 1000);
    }
    renderScripts();
  }
  function showApproval(a) {
    const el = $("approval");
    if (!a) { el.hidden = true; return; }
    el.hidden = false;
    el.className = `approval ap-${a.state}`;
    const what = a.kind === "busy" ? `示忙（${a.reason}）` : "签出";
    el.textContent = {pending: `${what}申请：等待班长审批…`, approved: `${what}已由 ${a.decided_by} 批准`,
                      refused: `${what}申请被 ${a.decided_by} 拒绝${a.note ? "：" + a.note : ""}`,
                      failed: `${what}已批准但未执行：${a.note}`}[a.state] || a.state;
  }
  async function seatAction(path, body) {
    try {
      await api(path, {method: "POST", body: body ? JSON.stringify(body) : undefined});
      notice("");
    } catch (e) {
      if (e.status === 409 && e.body && e.body.approval) { showApproval(e.body.approval); notice(e.message); }
      else notice(e.message, true);
    }
    await loadSeat();
  }
  $("signin").onclick = () => seatAction("/api/seat/signin", {seat: $("seat-pick").value});
  $("signout").onclick = () => seatAction("/api/seat/signout");
  $("ready").onclick = () => seatAction("/api/seat/ready");
  $("busy").onclick = () => seatAction("/api/seat/busy", {reason: $("busy-reason").value});
  $("wrapup-done").onclick = () => seatAction("/api/seat/wrapup/done");

  // ------------------------------------------------------------------ screen-pop
  let waitTimer = null;
  function popShow(msg) {
    const v = msg.variables || {};
    call = {call_id: msg.call_id, caller_num: msg.caller_num, waited_ms: msg.waited_ms || 0,
            shownAt: performance.now(), state: "ringing", answeredAt: null, parties: 0};
    const pop = $("pop");
    $("pop-num").textContent = fmtNum(msg.caller_num || "未知号码");
    $("pop-loc").textContent = [v.HL_LOCATION, carrier(msg.caller_num || "")].filter(Boolean).join(" · ");
    const flags = (v.HL_FLAGS || "").split(",").filter(Boolean);
    if (v.HL_REPEAT === "1" && !flags.includes("repeat")) flags.push("repeat");
    $("pop-flags").innerHTML = flags.map((f) => `<span class="flag flag-${esc(f)}">${esc(FLAG_LABELS[f] || f)}</span>`).join(" ")
      + (v.HL_TICKETS && v.HL_TICKETS !== "0" ? ` <span class="flag">历史工单 ${esc(v.HL_TICKETS)} 件</span>` : "");
    $("pop-state").textContent = "振铃中";
    $("pop-talk").textContent = "";
    $("pop-conf").textContent = "";
    pop.hidden = false;
    pop.dataset.callId = msg.call_id;
    clearInterval(waitTimer);
    tickWait();
    waitTimer = setInterval(tickWait, 250);
    $("form-call").textContent = `来电 ${msg.caller_num} · 通话 ${msg.call_id}`;
    // the form opens with the caller filled in; a draft already being typed is kept
    if (!form.caller_number.value || !ticket.hasText()) {
      if (!ticket.hasText()) { ticket.reset(false); }
      form.caller_number.value = msg.caller_num || "";
      ticket.saveDraft();
    }
    // the caller's history arrives with the pop itself (the AGI lookup put it on the call);
    // only when the lookup did not run or failed (no HL_TICKETS) is it asked for by REST
    renderHistory((v.HL_RECENT || "").split(",").filter(Boolean).map((x) => {
      const [number, dl, status_label, category, title] = x.split(":");
      return {number, deadline_state: dl, status_label: status_label || "", category: category || "", title: title || ""};
    }));
    if (v.HL_TICKETS === undefined) loadHistory(msg.caller_num);
    renderScripts();
    phone.popShown(msg.call_id);
    if (transcriptCall !== msg.call_id) { transcriptCall = msg.call_id; transcript.reset(msg.call_id); }
    window.__lastPop = {call_id: msg.call_id, at: performance.now()};
  }
  function tickWait() {
    if (!call) return;
    const ringing = call.state === "ringing";
    // the wait counts up while it rings; once answered it is the wait Asterisk measured
    const w = ringing || call.wait_ms == null ? (call.waited_ms + performance.now() - call.shownAt) / 1000 : call.wait_ms / 1000;
    $("pop-wait").textContent = `${Math.floor(w)} s`;
    $("pop").className = `pop ${w >= 15 ? "wait-red" : w >= 10 ? "wait-amber" : "wait-grey"}${call.heldAt ? " held" : ""}`;
    if (call.answeredAt) {
      const held = (call.holdS || 0) + (call.heldAt ? (performance.now() - call.heldAt) / 1000 : 0);
      $("pop-talk").textContent = `通话 ${mmss((performance.now() - call.answeredAt) / 1000)}` +
        (held >= 1 ? ` · 保持 ${mmss(held)}` : "");
    }
  }
  function popClose(why) {
    clearInterval(waitTimer);
    $("pop").hidden = true;
    if (why) notice(why);
    call = null;  // the transcript stays until the next call: its proposals serve the ticket still being filed
    phone.popClosed();
    renderScripts();
  }
  function onCallUpdate(msg) {
    if (!call || msg.call_id !== call.call_id) return;
    const mySeat = seat && seat.seat;
    switch (msg.event) {
      case "CallAnswered":
        if (msg.seat !== mySeat) { popClose("该来电已由其他坐席接听"); return; }
        call.state = "answered"; call.answeredAt = performance.now(); call.wait_ms = msg.wait_ms;
        $("pop-state").textContent = "通话中";
        phone.bridged();
        ticket.focusFirstEmpty();
        break;
      case "SeatRingNoAnswer":
        if (msg.seat === mySeat) popClose("未接听，来电已转往其他坐席（请注意示闲/示忙状态）");
        break;
      case "CallConferenced":
        call.state = "conference"; call.parties = msg.parties;
        $("pop-state").textContent = "三方通话";
        $("pop-conf").textContent = `会议中 ${msg.parties} 方${call.confWith ? "（含 " + call.confWith + "）" : ""}`;
        break;
      case "CallHeld":  // the phone's hold key: the citizen hears music meanwhile
        call.heldAt = msg.held ? performance.now() : null; call.holdS = msg.hold_s;
        $("pop-state").textContent = msg.held ? "保持中" : call.state === "conference" ? "三方通话" : "通话中";
        tickWait();
        break;
      case "CallTransferred":
        call.state = "transferred"; $("pop-state").textContent = `已转接 ${msg.target}`;
        phone.callEnded();
        break;
      case "CallAbandoned":
        phone.callEnded();
        popClose("来电人已挂机（放弃）");
        break;
      case "CallCompleted":
        $("pop-state").textContent = "通话结束";
        phone.callEnded();
        setTimeout(loadToday, 1000);  // the call log has it a moment later
        call.state = "ended";
        clearInterval(waitTimer);
        renderScripts();
        setTimeout(() => { if (call && call.state === "ended") popClose(""); }, 15000);
        break;
    }
    renderScripts();
  }

  // ------------------------------------------------------------------ caller history
  async function loadHistory(number) {
    if (!number) return;
    const got = await run(() => api(`/api/callers/${encodeURIComponent(number)}`));
    if (got && (!call || call.caller_num === number)) renderHistory(got.recent || []);
  }
  function renderHistory(rows) {
    const num = call ? call.caller_num : form.caller_number.value;
    $("history").innerHTML = rows.length ? rows.map((t) =>
      `<li class="dl-${esc(t.deadline_state || "none")}"><b>${esc(t.number)}</b> ${esc(t.status_label)}
       <span class="dl">${esc(DEADLINE[t.deadline_state] || "")}</span> ${esc(t.category || "")} ${esc(t.title)}
       ${num ? `<button type="button" class="quiet" data-num="${esc(num)}" data-ticket="${esc(t.id)}" title="就此工单回拨来电人">回拨</button>` : ""}</li>`).join("")
      : `<li class="empty">该号码没有历史工单</li>`;
  }
  // 回拨 from a ticket of the caller's history: the seat's phone rings first, then the citizen's
  $("history").addEventListener("click", async (ev) => {
    const b = ev.target.closest("button"); if (!b) return;
    phone.expectCall();
    const got = await run(() => window.hotlineCallBack({number: b.dataset.num, ticket_id: Number(b.dataset.ticket)}));
    if (got) dialling(got, b.dataset.num);
  });
  // a callback dialled from here: its live transcript takes the panel (the ticket form's proposals
  // serve what the call brings up); the phone's answer and the call's end are said as they come
  function dialling(got, number) {
    notice(`正在回拨 ${number}：请先接起话机`);
    transcriptCall = got.call_id;
    transcript.reset(got.call_id);
  }
  function onCallback(msg) {
    if (!seat || msg.seat !== seat.seat) return;
    if (msg.event === "OutboundAnswered") notice(`回拨 ${msg.number} 已接通`);
    else notice(`回拨 ${msg.number} 通话结束（通话 ${mmss(msg.talk_s)}）`);
  }

  // ------------------------------------------------------------------ scripts (话术)
  const SCRIPTS = {
    greeting: () => `您好！12345热线，${JOB || (seat && seat.seat) || ""}号话务员为您服务。`,
    silent: () => "您好，这里是12345热线，请问您能听到吗？如您不便说话，请稍后再拨，再见。",
    noisy: () => "您好，您那边声音比较嘈杂，请您换个安静的地方或大声一点，好吗？",
    harass: () => "本热线为政务服务专线，请勿占用热线资源。如无诉求，我将结束通话，谢谢配合。",
    closing: () => "请问还有其他可以帮您的吗？感谢您的来电，再见！",
  };
  const SCRIPT_NAMES = {greeting: "开头语", silent: "无声电话", noisy: "噪声干扰", harass: "骚扰电话", closing: "结束语"};
  function renderScripts() {
    const now = !call ? [] : call.state === "ringing" || call.state === "answered" && performance.now() - call.answeredAt < 20000
      ? ["greeting", "silent", "noisy"] : call.state === "ended" ? [] : ["closing", "harass"];
    $("scripts").innerHTML = Object.keys(SCRIPTS).map((k) =>
      `<p class="script${now.includes(k) ? " now" : ""}" data-k="${k}"><b>${SCRIPT_NAMES[k]}</b>　${esc(SCRIPTS[k]())}</p>`).join("");
  }
  setInterval(() => { if (call && call.state === "answered") renderScripts(); }, 5000);

  // ------------------------------------------------------------------ ticket form (ticket.js)
  const ticket = window.ConsoleTicket({form, user: USER, api, run, notice, esc, callId: () => call && call.call_id});
  // the live transcript under the pop; a pushed article opens in the 知识库 card
  const transcript = window.ConsoleTranscript({form, esc, showArticle: (a) => {
    $("kb-q").value = a.title; $("kb-q").dispatchEvent(new Event("input"));
  }});

  // ------------------------------------------------------------------ directory, transfer, conference
  async function loadDirectory() {
    directory = (await run(() => api("/api/departments"))) || [];
    ticket.setDepartments(directory);
    renderDirectory();
  }
  function renderDirectory() {
    const q = $("dept-filter").value.trim();
    const rows = directory.filter((d) => !q || d.name.includes(q) || (d.duties || "").includes(q)).slice(0, 30);
    $("directory").innerHTML = rows.map((d) => {
      const line = d.line || "";  // its SIP line, else its first directory phone, as digits (DepartmentRead.line)
      return `<li><span>${esc(d.name)} <small>${esc(line)}</small></span>
        <span>${line ? `<button type="button" class="quiet" data-conf="${esc(line)}" data-name="${esc(d.name)}">三方</button>
        <button type="button" class="quiet" data-xfer="${esc(line)}">转接</button>` : ""}</span></li>`;
    }).join("") || `<li class="empty">没有匹配的单位</li>`;
  }
  // one call-control action at a time: a transfer or 三方 clicked as the call connects waits (up to
  // 2 s) for Asterisk to bridge it (cti.actions), and a second click meanwhile, on the same button or
  // another (转接 after 三方), would send a second action for the same call
  let acting = false;
  async function once(b, fn) {
    if (acting) return null;
    acting = true; b.disabled = true;
    try { return await run(fn); } finally { acting = false; b.disabled = false; }
  }
  $("dept-filter").addEventListener("input", renderDirectory);
  $("directory").addEventListener("click", async (ev) => {
    const b = ev.target.closest("button"); if (!b) return;
    if (b.dataset.conf) {
      if (call) call.confWith = b.dataset.name;
      const ok = await once(b, () => api("/api/seat/conference", {method: "POST", body: JSON.stringify({number: b.dataset.conf})}));
      if (ok) notice(`正在邀请 ${b.dataset.name} 加入三方通话…`);
    } else if (b.dataset.xfer) {
      const ok = await once(b, () => api("/api/seat/transfer", {method: "POST", body: JSON.stringify({target: b.dataset.xfer})}));
      if (ok) notice("已转接");
    }
  });
  $("to-expert").onclick = async () => {
    const ok = await once($("to-expert"), () => api("/api/seat/transfer", {method: "POST", body: JSON.stringify({target: "expert"})}));
    if (ok) notice("已转专业席");
  };
  // the browser phone hangs up its own call (a BYE from the browser); a desk phone's through the CTI
  $("hangup").onclick = async () => {
    if (phone.inCall()) { phone.hangup(); notice("已挂断"); return; }
    if (await run(() => api("/api/seat/hangup", {method: "POST"}))) notice("已挂断");
  };

  // ------------------------------------------------------------------ knowledge base
  let kbTimer = null;
  $("kb-q").addEventListener("input", () => { clearTimeout(kbTimer); kbTimer = setTimeout(kbSearch, 150); });
  async function kbSearch() {
    const q = $("kb-q").value.trim();
    if (!q) { $("kb").innerHTML = ""; $("kb-missing").hidden = true; return; }
    const rows = (await run(() => api(`/api/kb?q=${encodeURIComponent(q)}&limit=8`))) || [];
    if (q !== $("kb-q").value.trim()) return;  // typed on meanwhile
    $("kb").innerHTML = rows.map((a) => `<li><b>${esc(a.title)}</b><br><small>${esc((a.body || "").slice(0, 120))}</small></li>`).join("")
      || `<li class="empty">查无信息</li>`;
    $("kb-missing").hidden = rows.length > 0;
  }
  $("kb-missing").onclick = async () => {
    const q = $("kb-q").value.trim();
    if (await run(() => api("/api/kb/missing", {method: "POST", body: JSON.stringify({query: q, note: form.title.value})}))) {
      notice(`已登记“${q}”查无信息，知识库管理员会补充`); $("kb-missing").hidden = true;
    }
  };

  // ------------------------------------------------------------------ callbacks
  async function loadCallbacks() {
    const rows = (await run(() => api("/api/callbacks"))) || [];
    $("callbacks").innerHTML = rows.slice(0, 10).map((r) => {
      const num = r.caller || "";
      const why = r.callback_requested ? CALLBACK_WHY[r.callback_reason] || "申请回拨" : "放弃";
      // 留言: the citizen's voice message, heard on its replay page (the access rules apply there)
      const msg = !r.message ? "" : r.message_recording
        ? `<a class="msg" href="/qa/${r.message_recording}" target="_blank">▶ 留言</a>` : `<small class="msg">留言入库中</small>`;
      const act = num ? `<button type="button" class="quiet" data-num="${esc(num)}" data-id="${esc(r.id)}">回拨</button>`
        : `<button type="button" class="quiet" data-id="${esc(r.id)}" data-done="1" title="号码未显示，无法回拨">已处理</button>`;
      return `<li><span>${esc(num ? fmtNum(num) : "号码未显示")} <small>${esc(why)}</small> ${msg}</span>${act}</li>`;
    }).join("") || `<li class="empty">暂无待回拨来电</li>`;
  }
  const CALLBACK_WHY = {after_hours: "非工作时间", no_seat: "无坐席", overflow: "排队过久"};
  $("callbacks").addEventListener("click", async (ev) => {
    const b = ev.target.closest("button"); if (!b) return;
    if (b.dataset.done) {
      await run(() => api(`/api/callbacks/${encodeURIComponent(b.dataset.id)}/done`, {method: "POST", body: JSON.stringify({note: "已听留言，无需回拨"})}));
      loadCallbacks();
      return;
    }
    // the server marks the missed call called back with the dial itself (nothing left for a second request)
    phone.expectCall();
    const got = await run(() => window.hotlineCallBack({number: b.dataset.num, call_id: b.dataset.id}));
    if (got) dialling(got, b.dataset.num);
    loadCallbacks();
  });

  // ------------------------------------------------------------------ keyboard
  document.addEventListener("keydown", (ev) => {
    const k = ev.key.toLowerCase();
    if (ev.ctrlKey && !ev.shiftKey && k === "s") { ev.preventDefault(); ticket.save(); }
    else if (ev.ctrlKey && ev.shiftKey && k === "t") { ev.preventDefault(); ticket.transfer(); }
    else if (ev.ctrlKey && ev.shiftKey && k === "d") { ev.preventDefault(); ticket.close(); }
    else if (ev.altKey && k === "k") { ev.preventDefault(); $("kb-q").focus(); }
    else if (ev.altKey && k === "h") { ev.preventDefault(); $("hangup").click(); }
    else if (ev.altKey && k === "e") { ev.preventDefault(); $("to-expert").click(); }
    else if (ev.altKey && k === "r") { ev.preventDefault(); $("ready").click(); }
    else if (ev.altKey && k === "b") { ev.preventDefault(); $("busy").click(); }
    else if (k === "escape") { ev.preventDefault(); if (document.activeElement) document.activeElement.blur(); }  // never clears text
  });

  // ------------------------------------------------------------------ live link
  let transcriptCall = null;  // the call the transcript shows: kept through a re-pop of the same call
  function onMessage(msg) {
    if (msg.type === "live_transcript" || msg.type === "live_assist") { transcript.onMessage(msg); return; }
    if (msg.type === "screen_pop") { popShow(msg); return; }
    if (msg.event === "OutboundAnswered" || msg.event === "OutboundEnded") { onCallback(msg); return; }
    // a department brought into a callback dialled from here (no pop: the call is not a queue call's)
    if (msg.event === "CallConferenced" && msg.call_id === transcriptCall && !(call && call.call_id === msg.call_id)) {
      notice(msg.parties >= 3 ? "三方通话已接通" : "正在接通三方…"); return;
    }
    if (msg.type === "call_update") { onCallUpdate(msg); return; }
    if (msg.type === "seat_update") {
      if (msg.event === "ApprovalChanged") { showApproval({state: msg.state, kind: msg.kind, reason: msg.reason, decided_by: msg.decided_by, note: msg.note}); loadSeat(); return; }
      if (msg.event === "SeatStateChanged" && seat && msg.seat === seat.seat) { seat.state = msg.state; renderSeat(msg.state, msg.reason, msg.wrapup_until ? msg.wrapup_until - Date.now() / 1000 : null); }
      else if (msg.event === "SeatStateChanged") loadSeat();
      else if (msg.event === "SeatPhoneChanged" && seat && msg.seat === seat.seat) loadSeat();
    }
  }
  // 今日接听 · 平均通话: the operator's own answered calls since local midnight (the call log)
  async function loadToday() {
    const midnight = new Date(); midnight.setHours(0, 0, 0, 0);
    const rows = (await run(() => api(`/api/calls?since=${encodeURIComponent(midnight.toISOString())}&limit=1000`))) || [];
    const talked = rows.filter((r) => r.talk_s > 0);
    $("today-count").textContent = talked.length;
    $("today-avg").textContent = talked.length ? mmss(talked.reduce((a, r) => a + r.talk_s, 0) / talked.length) : "0:00";
  }
  // 网络来件: how many web/WeChat/SMS submissions wait (the link opens the queue), live on intake_update
  async function loadIntake() {
    const got = await run(() => api("/api/intake/queue"));
    if (got) $("intake-count").textContent = got.items.length;
  }
  function resync() { loadSeat(); loadCallbacks(); loadToday(); loadIntake(); }
  window.__live = window.HotlineLive({onMessage: (msg) => (msg.type === "intake_update" ? loadIntake() : onMessage(msg)),
                                      onResync: resync, onStatus: (up) => { $("link").className = up ? "dot on" : "dot off"; }});

  renderScripts();
  loadSeat();
  loadDirectory();
  loadCallbacks();
  loadToday();
})();
