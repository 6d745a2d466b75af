// 班长监控: the board is loaded by REST, then kept fresh over the websocket. Every bus message
// schedules a re-read of /api/lead/board (debounced), so figures are never older than ~0.3 s;
// waits and durations count up here between messages, so nothing has to be pushed every second.
"use strict";
(() => {
  const $ = (s) => document.querySelector(s);
  const STATE = {ready: "空闲", ringing: "振铃", on_call: "通话", wrap_up: "话后", busy: "示忙", signed_out: "未签入"};
  const CALL = {offered: "进线", queued: "排队", ringing: "振铃", answered: "通话", transferred: "已转接", conference: "三方"};
  const QUEUE = {hotline: "热线", hotline_expert: "专业席"};
  let board = null;          // last /api/lead/board
  let loadedAt = 0;          // performance.now() when it arrived; waits count up from there
  let offset = 0;            // server epoch - client epoch, for "since" durations
  let soundOn = false, audio = null;
  const heard = new Set();   // alert ids already beeped for
  window.leadBoard = () => board;

  const api = async (path, opts = {}) => {
    const headers = Object.assign({"X-Requested-With": "hotline"}, opts.body ? {"Content-Type": "application/json"} : {});
    const res = await fetch(path, Object.assign({headers, credentials: "same-origin"}, opts));
    if (res.status === 401) { location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search); }
    if (!res.ok) throw new Error((await res.json().catch(() => ({}))).detail || "请求失败，请稍后重试");
    return res.json();
  };
  const esc = (s) => String(s ?? "").replace(/[&<>"]/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]));
  const pct = (v) => (v === null || v === undefined) ? "—" : `${v.toFixed(1)} %`;
  const mmss = (s) => { s = Math.max(0, Math.floor(s)); return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`; };
  const dayTime = (iso) => {  // 2026-11-22 08:05, local
    const d = new Date(iso), p = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
  };
  const hhmm = (epoch) => new Date(epoch * 1000).toLocaleTimeString("zh-CN", {hour12: false});
  const elapsed = () => (performance.now() - loadedAt) / 1000;
  const serverNow = () => Date.now() / 1000 + offset;

  // ---------------------------------------------------------------- figures
  function renderFigures() {
    const t = board.targets;
    const fig = (label, value, cls, target) => `<div class="fig ${cls}"><span class="v">${value}</span>
      <span class="l">${label}</span>${target ? `<span class="t">目标 ${target}</span>` : ""}</div>`;
    const under = (v, target) => (v !== null && v !== undefined && v < target) ? "under" : "";
    $("#figures").innerHTML = board.queues.map((q) => {
      const waits = board.calls.filter((c) => c.queue === q.queue && c.waiting_s !== null);
      const longest = Math.max(0, ...waits.map((c) => c.waiting_s + elapsed()));
      return `<div class="queue-figs" data-queue="${esc(q.queue)}"><h2>${esc(QUEUE[q.queue] || q.queue)}</h2>
        ${fig("排队", waits.length, waits.length ? "warn" : "")}
        ${fig("最长等待", `<span class="longest">${mmss(longest)}</span>`, longest > board.rule_s ? "under" : "")}
        ${fig("15 秒接通率 今日", `<span class="within-today">${pct(q.pct_within_rule_today)}</span>`,
              under(q.pct_within_rule_today, t.within_rule), `${t.within_rule} %`)}
        ${fig("15 秒接通率 24 小时", `<span class="within-24h">${pct(q.pct_within_rule_24h)}</span>`,
              under(q.pct_within_rule_24h, t.within_rule), `${t.within_rule} %`)}
        ${fig("接通率 24 小时", `<span class="completion">${pct(q.completion_24h)}</span>`,
              under(q.completion_24h, t.completion), `${t.completion} %`)}
        ${fig("今日接听", `<span class="answered">${q.answered}</span>`, "")}
        ${fig("放弃", `<span class="abandoned">${q.abandoned}</span>`, q.abandoned ? "warn" : "")}
        ${fig("坐席 空闲/示忙/通话/话后", `${q.seats_ready}/${q.seats_busy}/${q.seats_on_call + q.seats_ringing}/${q.seats_wrap_up}`, "")}
      </div>`;
    }).join("") || `<p class="empty">尚无队列数据 — 请检查实时话务服务（CTI）是否运行</p>`;
  }

  // ---------------------------------------------------------------- 网络来件 (web, WeChat, SMS)
  // the 3-minute response beside the 15 s figures: red under the target today, or as soon as
  // anything waits past its 3 minutes (the longest wait counts up here between messages)
  function renderIntake() {
    const f = board.intake, el = $("#intake-figures");
    el.hidden = !f;
    if (!f) return;
    const box = (label, value, cls, note) => `<div class="fig ${cls}"><span class="v">${value}</span>
      <span class="l">${label}</span>${note ? `<span class="t">${note}</span>` : ""}</div>`;
    el.innerHTML = `<div class="queue-figs intake-figs"><h2><a href="/intake">网络来件</a></h2>
      ${box("待受理", `<span class="intake-pending">${f.pending}</span>`, f.pending ? "warn" : "")}
      ${box("最长等待", `<span class="intake-oldest">—</span>`, "", `${mmss(f.target_s)} 内响应`)}
      ${box("3 分钟响应率 今日", `<span class="intake-pct">${pct(f.pct_on_time)}</span>`, "", `目标 ${board.targets.intake} %`)}
      ${box("今日收到", `<span class="intake-received">${f.received}</span>`, "")}
      ${box("按时 / 超时", `<span class="intake-on-time">${f.on_time}</span> / <span class="intake-late">${f.late}</span>`,
            f.late ? "warn" : "")}</div>`;
    tickIntake();
  }

  function tickIntake() {
    const f = board && board.intake, oldest = document.querySelector(".intake-oldest");
    if (!f || !oldest) return;
    const wait = f.oldest_wait_s === null ? null : f.oldest_wait_s + elapsed();
    const overdue = wait !== null && wait > f.target_s;
    oldest.textContent = wait === null ? "—" : mmss(wait);
    oldest.closest(".fig").classList.toggle("under", overdue);
    const under = f.pct_on_time !== null && f.pct_on_time < board.targets.intake;
    document.querySelector(".intake-pct").closest(".fig").classList.toggle("under", under || overdue);
  }
  setInterval(tickIntake, 250);

  // ---------------------------------------------------------------- waiting calls
  function renderWaiting() {
    const rows = board.calls.filter((c) => c.waiting_s !== null)
      .sort((a, b) => b.waiting_s - a.waiting_s);
    $("#waiting tbody").innerHTML = rows.map((c) => `<tr data-call="${esc(c.call_id)}" data-wait="${c.waiting_s}">
      <td>${esc(c.caller_num)}</td><td>${esc(QUEUE[c.queue] || c.queue)}</td><td>${esc(CALL[c.state] || c.state)}</td>
      <td>${esc(c.seat)}</td><td class="wait"></td></tr>`).join("");
    $("#no-waiting").hidden = rows.length > 0;
    tickWaits();
  }

  function tickWaits() {
    if (!board) return;
    for (const tr of document.querySelectorAll("#waiting tbody tr")) {
      const w = parseFloat(tr.dataset.wait) + elapsed();
      tr.querySelector(".wait").textContent = `${Math.floor(w)} s`;
      tr.classList.toggle("late", w > board.rule_s);
    }
    for (const el of document.querySelectorAll(".queue-figs")) {
      const q = el.dataset.queue;
      const waits = board.calls.filter((c) => c.queue === q && c.waiting_s !== null).map((c) => c.waiting_s + elapsed());
      const longest = Math.max(0, ...waits);
      const cell = el.querySelector(".longest");
      if (cell) { cell.textContent = mmss(longest); cell.closest(".fig").classList.toggle("under", longest > board.rule_s); }
    }
    for (const tile of document.querySelectorAll(".seat")) {
      const since = parseFloat(tile.dataset.since);
      const d = since ? serverNow() - since : 0;
      tile.querySelector(".dur").textContent = since ? mmss(d) : "";
      const st = tile.dataset.state;
      const slow = (st === "ringing" && d > board.limits.ring_s) || (st === "busy" && d > board.limits.busy_s)
        || tile.dataset.alerted === "1";
      tile.classList.toggle("flag-slow", slow);
    }
  }

  // ---------------------------------------------------------------- seat wall
  function renderSeats() {
    const queueSel = $("#seat-queue");
    const queues = [...new Set(board.seats.flatMap((s) => s.queues))].sort();
    if (queueSel.options.length - 1 !== queues.length) {
      queueSel.innerHTML = `<option value="">全部</option>` + queues.map((q) => `<option value="${esc(q)}">${esc(QUEUE[q] || q)}</option>`).join("");
    }
    const open = new Set(board.alerts.filter((a) => !a.acked_at && (a.kind === "no_answer" || a.kind === "busy_long"))
      .map((a) => a.subject_seat));
    const fq = queueSel.value, fs = $("#seat-state").value, sort = $("#seat-sort").value;
    const order = Object.keys(STATE);
    const seats = board.seats.filter((s) => (!fq || s.queues.includes(fq)) && (!fs || s.state === fs));
    seats.sort((a, b) => sort === "state" ? order.indexOf(a.state) - order.indexOf(b.state) || a.seat.localeCompare(b.seat)
      : sort === "since" ? (a.since || Infinity) - (b.since || Infinity)
      : sort === "calls" ? b.calls_today - a.calls_today : a.seat.localeCompare(b.seat));
    const held = new Set(board.calls.filter((c) => c.on_hold).map((c) => c.seat));  // the citizen hears music
    $("#seats").innerHTML = seats.map((s) => `<div class="seat st-${s.state}" data-seat="${esc(s.seat)}" data-state="${s.state}"
        data-since="${s.since || 0}" data-alerted="${open.has(s.seat) ? 1 : 0}">
      <div class="seat-top"><b>${esc(s.seat)}</b><span class="op">${esc(s.operator || "—")}</span></div>
      <div class="seat-state">${STATE[s.state] || s.state}${s.callback && s.state === "on_call" ? " · 回拨" : ""}${s.reason ? ` · ${esc(s.reason)}` : ""}${held.has(s.seat) ? " · 保持中" : ""}
        ${s.signed_in && s.phone_reachable === false ? `<span class="phone-off" title="话机未注册：来电不会分配到该坐席">话机离线</span>` : ""}
        <span class="flag">振铃未接</span></div>
      <div class="seat-since">${s.signed_in ? "已签入" : "未签入"}${s.since ? ` · 自 ${hhmm(s.since)}` : ""} · <span class="dur"></span></div>
      <div class="seat-calls">接听 ${s.calls_today} · 通话 ${mmss(s.talk_s_today)}
        ${s.state === "on_call" && s.call_id ? `<button type="button" class="small live-open" data-call="${esc(s.call_id)}"
          data-seat="${esc(s.seat)}" title="查看该通话的实时转写（访问将被记录）">实时转写</button>` : ""}</div></div>`).join("");
    $("#no-seats").hidden = board.seats.some((s) => s.signed_in);
  }

  // ---------------------------------------------------------------- alerts
  let alertsHtml = null;
  function renderAlerts() {
    const open = board.alerts.filter((a) => !a.acked_at);
    $("#alert-count").textContent = open.length ? `${open.length} 条待确认` : "";
    const html = board.alerts.slice(0, 50).map((a) => `<li class="alert k-${a.kind}${a.acked_at ? " acked" : ""}" data-id="${a.id}">
      <span class="when">${hhmm(a.at)}</span><b>${esc(a.title)}</b> <span>${esc(a.detail)}</span>
      ${a.kind.startsWith("live_") && a.call_id ? `<button type="button" class="small live-open" data-call="${esc(a.call_id)}"
        data-seat="${esc(a.subject_seat || "")}">实时转写</button>` : ""}
      ${a.acked_at ? `<span class="ack-by">已确认 ${esc(a.acked_by)} ${hhmm(a.acked_at)}</span>`
                   : `<button type="button" class="ack small" data-id="${a.id}">确认</button>`}</li>`).join("");
    // the board refreshes every second: rebuilding an unchanged list would swallow a click
    // in progress and drop the keyboard focus from the button the lead is on
    if (html !== alertsHtml) { $("#alerts").innerHTML = html; alertsHtml = html; }
    $("#no-alerts").hidden = board.alerts.length > 0;
    const fresh = open.filter((a) => !heard.has(a.id));
    fresh.forEach((a) => heard.add(a.id));
    if (fresh.length) beep();
  }

  function beep() {
    // a short two-tone chime made here: no audio file to ship, no autoplay of media
    if (!soundOn || !audio) return;
    const t = audio.currentTime;
    for (const [f, at] of [[880, 0], [660, 0.18]]) {
      const o = audio.createOscillator(), g = audio.createGain();
      o.frequency.value = f; o.connect(g); g.connect(audio.destination);
      g.gain.setValueAtTime(0.0001, t + at); g.gain.exponentialRampToValueAtTime(0.3, t + at + 0.02);
      g.gain.exponentialRampToValueAtTime(0.0001, t + at + 0.16);
      o.start(t + at); o.stop(t + at + 0.17);
    }
    window.leadBeeps = (window.leadBeeps || 0) + 1;
  }

  $("#sound").addEventListener("click", async () => {
    audio = audio || new (window.AudioContext || window.webkitAudioContext)();
    await audio.resume();
    soundOn = !soundOn;
    $("#sound").textContent = soundOn ? "关闭提示音" : "开启提示音";
    $("#sound").setAttribute("aria-pressed", String(soundOn));
    if (soundOn) beep();
  });

  // ---------------------------------------------------------------- a call's live transcript
  // asked every second while open; the server logs the lead's access (the recordings' access log)
  let liveCall = null, liveTimer = null;
  const SPEAKER = {citizen: "来电人", operator: "话务员", operator2: "转接后话务员", department: "承办单位（三方）"};
  async function liveLoad() {
    if (!liveCall) return;
    try {
      const got = await api(`/api/lead/live/${encodeURIComponent(liveCall)}`);
      const legs = Object.entries(got.legs).map(([sp, l]) => `${SPEAKER[sp] || sp}：${esc(l.label)}`).join(" · ");
      $("#live-state").innerHTML = legs;
      const list = $("#live-lines");
      const atEnd = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
      list.innerHTML = got.lines.map((l) => `<li class="tr-${l.speaker}"><b>${SPEAKER[l.speaker] || esc(l.speaker)}${l.speaker === "operator" && l.seat ? " " + esc(l.seat) : ""}</b>
        <span>${esc(l.text)}</span></li>`).join("") || `<li class="empty">尚无识别结果</li>`;
      if (atEnd) list.scrollTop = list.scrollHeight;
      if (Object.values(got.legs).every((l) => l.state !== "listening")) { clearInterval(liveTimer); liveTimer = null; }
    } catch (err) {
      $("#live-state").textContent = err.message;
    }
  }
  function liveOpen(callId, seatNo) {
    liveCall = callId;
    $("#live-title").textContent = `坐席 ${seatNo || ""} · 通话 ${callId}`;
    $("#live-lines").innerHTML = "";
    $("#live").hidden = false;
    clearInterval(liveTimer);
    liveTimer = setInterval(liveLoad, 1000);
    liveLoad();
  }
  function liveClose() { liveCall = null; clearInterval(liveTimer); liveTimer = null; $("#live").hidden = true; }
  document.addEventListener("click", (e) => {
    const btn = e.target.closest("button.live-open");
    if (btn) { e.preventDefault(); liveOpen(btn.dataset.call, btn.dataset.seat); }
  });
  $("#live-close").addEventListener("click", liveClose);
  document.addEventListener("keydown", (e) => { if (e.key === "Escape" && liveCall) liveClose(); });

  $("#alerts").addEventListener("click", async (e) => {
    const btn = e.target.closest("button.ack");
    if (!btn) return;
    btn.disabled = true;
    try { await api(`/api/lead/alerts/${btn.dataset.id}/ack`, {method: "POST", body: "{}"}); schedule(); }
    catch (err) { btn.disabled = false; alert(err.message); }
  });

  // ---------------------------------------------------------------- approvals
  // loads may overlap (a click's own reload, a ticket event's, the 15 s timer) and answer out of
  // order on a busy server: only the newest load may paint, or an answer read before a decision
  // would paint over one read after it
  let approvalsGen = 0;
  async function loadApprovals() {
    const gen = ++approvalsGen;
    const li = (html) => `<li>${html}</li>`;
    try {
      const seats = await api("/api/approvals?state=pending");
      if (gen !== approvalsGen) return;
      $("#seat-approvals").innerHTML = seats.map((a) => li(`<span>${esc(a.kind_label)} · 坐席 ${esc(a.seat)} · ${esc(a.requested_by)}
        ${a.reason ? `（${esc(a.reason)}）` : ""}</span>
        <button type="button" class="small" data-approve="${a.id}">同意</button>
        <button type="button" class="small refuse" data-refuse="${a.id}">拒绝</button>`)).join("") || li(`<span class="empty">无待审批申请</span>`);
    } catch (err) {
      if (gen !== approvalsGen) return;
      $("#seat-approvals").innerHTML = li(`<span class="empty">签出/示忙审批暂不可用：${esc(err.message)}</span>`);
    }
    try {
      const t = await api("/api/lead/tickets");
      const tl = (rows, extra) => rows.map((r) => li(`<b>${esc(r.number || r.id)}</b> ${esc(r.title)} · ${esc(r.status)}${extra(r)}`)).join("")
        || li(`<span class="empty">无</span>`);
      const btn = (action, label, id, cls = "") => `<button type="button" class="small ${cls}" data-ticket="${id}" data-action="${action}">${label}</button>`;
      if (!departments) departments = await api("/api/departments").catch(() => []);
      if (gen !== approvalsGen) return;
      const pick = departments.map((d) => `<option value="${d.id}">${esc(d.name)}</option>`).join("");
      $("#t-extensions").innerHTML = tl(t.extensions, (r) => ` · 申请延期 ${r.extension_days} 天
        ${btn("approve_extension", "批准", r.id)} ${btn("refuse_extension", "驳回", r.id, "refuse")}`);
      $("#t-returned").innerHTML = tl(t.returned, (r) => `${r.return_reason ? ` · ${esc(r.return_reason)}` : ""}
        <select class="dept" aria-label="改派单位">${pick}</select> ${btn("transfer", "改派", r.id)}`);
      $("#t-emergencies").innerHTML = tl(t.emergencies, (r) => `${r.due ? ` · 期限 ${dayTime(r.due)}` : ""}
        ${r.supervised ? ` · 已督办 ${r.supervised} 次` : ""} ${btn("supervise", "督办", r.id, "refuse")}`);
    } catch (err) { /* the ticket queue shows again on the next refresh */ }
  }

  let departments = null;
  // ticket decisions go through the ticket store's own workflow route (its rules and its log)
  document.querySelector(".approvals").addEventListener("click", async (e) => {
    const action = e.target.dataset.action;
    if (!action) return;
    const body = {};
    if (action === "refuse_extension") { body.reason = prompt("驳回理由") || ""; if (!body.reason) return; }
    if (action === "supervise") body.reason = prompt("督办意见", "重大紧急事项，请立即处置并反馈") || "重大紧急事项督办";
    if (action === "transfer") {
      body.department_id = Number(e.target.closest("li").querySelector(".dept").value);
      body.opinion = prompt("改派意见", "请按职责办理") || "请按职责办理";
    }
    e.target.disabled = true;
    try { await api(`/api/tickets/${e.target.dataset.ticket}/${action}`, {method: "POST", body: JSON.stringify(body)}); }
    catch (err) { alert(err.message); }
    loadApprovals();
  });

  document.querySelector(".approvals").addEventListener("click", async (e) => {
    const id = e.target.dataset.approve || e.target.dataset.refuse;
    if (!id) return;
    const verdict = e.target.dataset.approve ? "approve" : "refuse";
    const note = verdict === "refuse" ? (prompt("拒绝理由（可不填）") || "") : "";
    e.target.disabled = true;
    try { await api(`/api/approvals/${id}/${verdict}`, {method: "POST", body: JSON.stringify({note})}); }
    catch (err) { alert(err.message); }
    loadApprovals();
  });

  // ---------------------------------------------------------------- load + live
  let pending = null;
  function schedule(ms = 250) {
    if (pending) return;
    pending = setTimeout(async () => { pending = null; await load(); }, ms);
  }

  async function load() {
    try {
      const got = await api("/api/lead/board");
      board = got; loadedAt = performance.now(); offset = got.now - Date.now() / 1000;
      document.querySelectorAll(".rule-s").forEach((el) => { el.textContent = got.rule_s; });
      renderFigures(); renderIntake(); renderWaiting(); renderSeats(); renderAlerts();
      tickWaits();  // the new tiles get their flags before the browser paints (no flicker)
    } catch (err) {
      $("#figures").innerHTML = `<p class="error">${esc(err.message)}</p>`;
    }
  }

  let approvalsTimer = null;  // a burst of ticket changes reloads the panel once
  function soonApprovals() { clearTimeout(approvalsTimer); approvalsTimer = setTimeout(loadApprovals, 300); }

  let since = null, epoch = null, retry = 500;
  function connect() {
    const q = since !== null ? `?since=${since}&epoch=${encodeURIComponent(epoch)}` : "";
    const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws${q}`);
    ws.onopen = () => { retry = 500; $("#offline").hidden = true; };
    ws.onmessage = (e) => {
      const m = JSON.parse(e.data);
      if (m.type === "ping") { ws.send(JSON.stringify({type: "pong"})); return; }
      if (m.type === "hello") { epoch = m.epoch; if (since === null) since = m.last_seq; schedule(0); return; }
      if (m.seq) since = m.seq;
      if (m.type === "resync") { epoch = m.epoch || epoch; schedule(0); return; }
      // a seat's request, or a ticket's (an extension asked, a ticket returned): the approvals panel at once
      if (m.type === "approval_update" || m.event === "ApprovalChanged" || m.type === "ticket_update") soonApprovals();
      schedule();
    };
    ws.onclose = (ev) => {
      $("#offline").hidden = false;
      if (ev.code === 4401) { location.href = `/login?next=${encodeURIComponent(location.pathname)}`; return; }
      window.hotlineSessionCheck();
      setTimeout(connect, retry); retry = Math.min(retry * 2, 8000);
    };
  }

  for (const id of ["#seat-sort", "#seat-queue", "#seat-state"]) $(id).addEventListener("change", () => { renderSeats(); tickWaits(); });
  setInterval(tickWaits, 250);
  setInterval(loadApprovals, 15000);
  load(); loadApprovals(); connect();
})();
