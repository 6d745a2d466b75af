// 访问记录: two registers (recording access, confidential reads), each filtered by day, person and
// what; paged; exported as filtered. Keys 1 and 2 switch between them.
"use strict";
(() => {
  const {esc, run} = window.hotlineUi;
  const PER = 100;
  const pad = (n) => String(n).padStart(2, "0");
  const when = (iso) => { const d = new Date(iso);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`; };
  const ROLE = {operator: "坐席", lead: "班长", qa: "质检", admin: "管理员", department: "承办单位", system: "系统"};
  const LEG = {mixed: "混音", citizen: "市民", operator: "话务员", peaks: "波形"};
  const ROWS = {
    recordings: (e) => `<tr class="${e.allowed ? "" : "bad"}"><td>${when(e.at)}</td><td>${esc(e.username)}</td>
      <td>${esc(ROLE[e.role] || e.role)}</td><td>${esc(e.action_label)}</td>
      <td>${e.recording_id ? `<a href="/qa/${e.recording_id}">#${e.recording_id}</a>` : "—"}</td>
      <td>${esc(LEG[e.leg] || e.leg)}</td><td>${e.allowed ? "允许" : "拒绝"}</td><td>${esc(e.detail)}</td><td>${esc(e.client)}</td></tr>`,
    reads: (e) => `<tr><td>${when(e.at)}</td><td>${esc(e.ticket_number)}</td>
      <td>${esc(e.username)}</td><td>${esc(ROLE[e.role] || e.role)}</td><td>${esc(e.purpose_label)}</td>
      <td>${e.masked ? "已遮蔽" : "可见"}</td></tr>`,
  };
  function register(section) {
    const form = section.querySelector("form"), api = form.dataset.api, row = ROWS[section.id];
    let offset = 0;
    const params = () => {
      const p = new URLSearchParams();
      for (const el of form.elements) if (el.name && el.value.trim()) p.set(el.name, el.value.trim());
      return p;
    };
    async function load() {
      const p = params(); p.set("limit", PER); p.set("offset", offset);
      const got = await run(() => window.hotlineApi(`${api}?${p}`));
      if (!got) return;
      section.querySelector("tbody").innerHTML = got.items.map(row).join("");
      section.querySelector(".empty").hidden = got.items.length > 0;
      section.querySelector(".page-info").textContent =
        got.total ? `${offset + 1}–${offset + got.items.length} / 共 ${got.total} 条` : "";
      section.querySelector("[data-page='-1']").disabled = offset === 0;
      section.querySelector("[data-page='1']").disabled = offset + PER >= got.total;
    }
    form.addEventListener("submit", (ev) => { ev.preventDefault(); offset = 0; load(); });
    for (const b of section.querySelectorAll("[data-page]")) {
      b.addEventListener("click", () => { offset = Math.max(0, offset + PER * +b.dataset.page); load(); });
    }
    for (const b of section.querySelectorAll("[data-export]")) {
      b.addEventListener("click", () => { const p = params(); p.set("fmt", b.dataset.export);
        location.href = `${api}/export?${p}`; });
    }
    return load;
  }
  const loaders = Object.fromEntries([...document.querySelectorAll("section.audit")].map((s) => [s.id, register(s)]));
  function show(id) {
    for (const t of document.querySelectorAll("[role=tab]")) {
      const on = t.dataset.tab === id;
      t.setAttribute("aria-selected", String(on)); t.classList.toggle("on", on);
      document.getElementById(t.dataset.tab).hidden = !on;
    }
    loaders[id]();
  }
  for (const t of document.querySelectorAll("[role=tab]")) t.addEventListener("click", () => show(t.dataset.tab));
  document.addEventListener("keydown", (e) => {
    if (/^(INPUT|TEXTAREA|SELECT)$/.test(e.target.tagName) || e.ctrlKey || e.altKey || e.metaKey) return;
    if (e.key === "1") show("recordings");
    if (e.key === "2") show("reads");
  });
  show(new URLSearchParams(location.search).get("tab") === "reads" ? "reads" : "recordings");
})();
