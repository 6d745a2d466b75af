// 审计日志: filter by day, person, target and action; page through; export what is filtered.
"use strict";
(() => {
  const {esc, run} = window.hotlineUi;
  const $ = (s) => document.querySelector(s);
  const form = $("#filter"), PER = 100;
  let offset = 0;
  const pad = (n) => String(n).padStart(2, "0");
  const when = (iso) => { const d = new Date(iso);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`; };
  function params() {
    const p = new URLSearchParams();
    for (const el of form.elements) if (el.name && el.value.trim()) p.set(el.name, el.value.trim());
    return p;
  }
  async function load() {
    const p = params(); p.set("limit", PER); p.set("offset", offset);
    const got = await run(() => window.hotlineApi(`/api/admin/audit?${p}`));
    if (!got) return;
    $("#events tbody").innerHTML = got.items.map((e) => `<tr><td>${when(e.at)}</td><td>${esc(e.actor)}</td>
      <td>${esc(e.action_label)}</td><td>${esc(e.target)}</td><td>${esc(e.detail)}</td><td>${esc(e.client)}</td></tr>`).join("");
    $("#no-events").hidden = got.items.length > 0;
    $("#page-info").textContent = got.total ? `${offset + 1}–${offset + got.items.length} / 共 ${got.total} 条` : "";
    $("#prev").disabled = offset === 0;
    $("#next").disabled = offset + PER >= got.total;
  }
  form.addEventListener("submit", (ev) => { ev.preventDefault(); offset = 0; load(); });
  $("#prev").addEventListener("click", () => { offset = Math.max(0, offset - PER); load(); });
  $("#next").addEventListener("click", () => { offset += PER; load(); });
  for (const b of document.querySelectorAll("[data-export]")) {
    b.addEventListener("click", () => { const p = params(); p.set("fmt", b.dataset.export);
      location.href = `/api/admin/audit/export?${p}`; });
  }
  load();
})();
