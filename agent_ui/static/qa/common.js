/* Small helpers shared by the QA pages (no framework, no build step). */
"use strict";
const QA = {
  ROLE: {operator: "坐席", lead: "班长", qa: "质检", admin: "管理员", department: "承办单位"},
  async api(path, opts = {}) {
    // X-Requested-With: the app's CSRF guard wants it on cookie-borne state changes
    const res = await fetch(path, Object.assign({headers: {"Content-Type": "application/json", "X-Requested-With": "hotline"}}, opts));
    let body = null;
    try { body = await res.json(); } catch (e) { body = null; }
    if (!res.ok) throw Object.assign(new Error((body && body.detail) || `请求失败（${res.status}）`), {status: res.status});
    return body;
  },
  el(tag, attrs = {}, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(e.dataset, v); else e.setAttribute(k, v);
    }
    for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(k ?? ""));
    return e;
  },
  clock(s) {
    s = Math.max(0, s || 0);
    const m = Math.floor(s / 60), r = Math.floor(s % 60);
    return `${m}:${String(r).padStart(2, "0")}`;
  },
  date(iso) {
    if (!iso) return "—";
    const d = new Date(iso), p = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
  },
  async progress() {
    const bar = document.querySelector("#progress > div"), text = document.getElementById("progress-text");
    try {
      const b = await QA.api("/api/qa/progress");
      bar.style.width = `${b.percent}%`;
      document.getElementById("progress").setAttribute("aria-valuenow", b.percent);
      text.textContent = b.total ? `${b.percent}% · 已完成 ${b.done}/${b.total} · 排队 ${b.queued} · 处理中 ${b.running}`
        + (b.parked ? ` · 搁置 ${b.parked}` : "") : "暂无转写任务";
    } catch (e) { text.textContent = e.message; }
  },
  SURVEY: {"1": "满意", "2": "基本满意", "3": "不满意"},
  STATUS: {ok: "正常", pending: "待入库", missing: "缺失", corrupt: "损坏", purged: "已删除"},
  JOB: {queued: "排队中", running: "转写中", done: "已转写", parked: "已搁置", "": "—"},
};
QA.progress();
setInterval(QA.progress, 5000);
