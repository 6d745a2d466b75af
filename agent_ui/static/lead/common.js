// Shared by the lead's pages: fetch with the CSRF header, escaping, number and time formats.
"use strict";
window.lead = {
  async api(path, opts = {}) {
    const headers = Object.assign({"X-Requested-With": "hotline"}, opts.body ? {"Content-Type": "application/json"} : {});
    const res = await fetch(path, Object.assign({headers, credentials: "same-origin"}, opts));
    if (res.status === 401) location.href = "/login?next=" + encodeURIComponent(location.pathname);
    if (!res.ok) throw new Error((await res.json().catch(() => ({}))).detail || "请求失败，请稍后重试");
    return res.json();
  },
  esc: (s) => String(s ?? "").replace(/[&<>"]/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c])),
  pct: (v) => (v === null || v === undefined) ? "—" : `${v.toFixed(1)} %`,
  num: (v, unit = "") => (v === null || v === undefined) ? "—" : `${typeof v === "number" && !Number.isInteger(v) ? v.toFixed(1) : v}${unit}`,
  // 2026-11-22 08:05 in the browser's (the centre's) time zone
  when(iso) {
    if (!iso) return "";
    const d = new Date(iso), p = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
  },
};
