// 交接班: the outgoing lead signs a handover; another lead countersigns it (both names kept).
"use strict";
(() => {
  const {api, esc, when} = window.lead;
  const $ = (s) => document.querySelector(s);
  const fail = (err) => { $("#ho-error").textContent = err.message; $("#ho-error").hidden = false; };
  async function load() {
    const rows = await api("/api/lead/handovers");
    $("#handovers").innerHTML = rows.map((h) => `<li data-id="${h.id}"><b>${esc(h.shift)}</b> · 交班 ${esc(h.from_lead)} ${when(h.created_at)}
      · ${h.to_signed_at ? `接班 ${esc(h.to_lead)} ${when(h.to_signed_at)}` : `<button type="button" class="small sign">接班签字</button>`}
      ${h.tickets ? `<div>未办结工单：${esc(h.tickets)}</div>` : ""}<div class="notes">${esc(h.notes)}</div></li>`).join("");
    $("#no-handovers").hidden = rows.length > 0;
  }
  $("#handover-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    const tickets = String(f.get("tickets") || "").split(/[,，\s]+/).filter(Boolean).map(Number);
    if (tickets.some((n) => !Number.isInteger(n) || n <= 0)) return fail(new Error("工单编号应为数字，用逗号分隔"));
    try {
      await api("/api/lead/handovers", {method: "POST", body: JSON.stringify({shift: f.get("shift"), notes: f.get("notes"), tickets})});
      e.target.reset(); $("#ho-error").hidden = true; load();
    } catch (err) { fail(err); }
  });
  $("#handovers").addEventListener("click", async (e) => {
    if (!e.target.classList.contains("sign")) return;
    try { await api(`/api/lead/handovers/${e.target.closest("li").dataset.id}/sign`, {method: "POST", body: "{}"}); load(); }
    catch (err) { fail(err); }
  });
  // 排班
  const rform = $("#roster-form");
  const today = new Date(), p2 = (n) => String(n).padStart(2, "0");
  rform.day.value = `${today.getFullYear()}-${p2(today.getMonth() + 1)}-${p2(today.getDate())}`;
  async function loadRoster() {
    const rows = await api(`/api/lead/roster?day=${rform.day.value}`);
    $("#roster tbody").innerHTML = rows.map((r) => `<tr data-id="${r.id}"><td>${esc(r.shift)}</td><td>${esc(r.duty)}</td>
      <td>${esc(r.username)}</td><td>${esc(r.seat)}</td><td>${esc(r.created_by)}</td>
      <td><button type="button" class="small refuse remove">移除</button></td></tr>`).join("");
    $("#no-roster").hidden = rows.length > 0;
  }
  rform.day.addEventListener("change", () => loadRoster().catch(fail));
  rform.addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = Object.fromEntries(new FormData(rform));
    try { await api("/api/lead/roster", {method: "POST", body: JSON.stringify(f)}); rform.username.value = ""; rform.seat.value = ""; loadRoster(); }
    catch (err) { fail(err); }
  });
  $("#roster").addEventListener("click", async (e) => {
    if (!e.target.classList.contains("remove")) return;
    try { await api(`/api/lead/roster/${e.target.closest("tr").dataset.id}`, {method: "DELETE"}); loadRoster(); }
    catch (err) { fail(err); }
  });
  load().catch(fail);
  loadRoster().catch(fail);
})();
