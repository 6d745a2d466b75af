// Shared by the desk's pages (工单中心, 回访): the API helper of console/live.js (CSRF header, Chinese
// errors), escaping, times in the centre's zone, the notice line and the run() error helper.
"use strict";
window.desk = (() => {
  const {esc, notice, run} = window.hotlineUi;
  const pad = (n) => String(n).padStart(2, "0");
  function when(iso) {  // 2026-11-22 08:05
    if (!iso) return "";
    const d = new Date(iso);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
  }
  // working days to a deadline, told the way the centre says it
  const daysLeft = (n) => n == null ? "" : n < 0 ? `超期 ${-n} 个工作日` : n === 0 ? "今日到期" : `剩 ${n} 个工作日`;
  const post = (path, body) => window.hotlineApi(path, {method: "POST", body: JSON.stringify(body || {})});
  // a page reloads its data when tickets change, once per burst of messages
  function debounced(fn, ms = 300) {
    let t = null;
    return () => { clearTimeout(t); t = setTimeout(fn, ms); };
  }
  // who was told, how and when: the notification log's rows, shortest form
  const notified = (rows) => (rows || []).map((n) => `<div class="told told-${esc(n.status)}">${esc(n.channel_label)}
    ${esc(n.recipient)} <small>${when(n.sent_at || n.created_at)} · ${esc(n.status_label)}</small></div>`).join("")
    || `<span class="hint">未通知</span>`;
  return {api: window.hotlineApi, post, esc, when, notice, run, daysLeft, debounced, notified};
})();
