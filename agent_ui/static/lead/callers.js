// 特殊号码: the numbers a lead marked (/api/callers); ticking a box saves that flag at once.
"use strict";
(() => {
  const {api, esc, when} = window.lead;
  const $ = (s) => document.querySelector(s);
  const FLAGS = ["elderly", "vip", "blacklisted"];
  const LABELS = {elderly: "老年人", vip: "重点单位", blacklisted: "骚扰号码"};
  const showError = (msg) => { $("#flag-error").textContent = msg; $("#flag-error").hidden = !msg; };
  const save = (number, body) => api(`/api/callers/${encodeURIComponent(number)}/flags`,
                                      {method: "PUT", body: JSON.stringify(body)});
  async function load() {
    try {
      const rows = await api("/api/callers");
      $("#callers tbody").innerHTML = rows.map((c) => `<tr data-number="${esc(c.number)}">
        <td>${esc(c.number)}</td><td>${esc(c.location)}</td>
        ${FLAGS.map((f) => `<td><input type="checkbox" data-flag="${f}" aria-label="${LABELS[f]}"${c[f] ? " checked" : ""}></td>`).join("")}
        <td>${esc(c.note)}</td><td>${esc(c.flags_by)}</td><td>${when(c.flags_at)}</td><td>${when(c.last_seen)}</td></tr>`).join("");
      $("#no-callers").hidden = rows.length > 0;
    } catch (err) { showError(err.message); }
  }
  $("#callers").addEventListener("change", async (e) => {
    const flag = e.target.dataset.flag;
    if (!flag) return;
    e.target.disabled = true;
    try { await save(e.target.closest("tr").dataset.number, {[flag]: e.target.checked}); showError(""); }
    catch (err) { e.target.checked = !e.target.checked; showError(err.message); }
    e.target.disabled = false;
    load();
  });
  $("#flag-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const form = e.target, body = form.note.value.trim() ? {note: form.note.value.trim()} : {};
    FLAGS.forEach((f) => { body[f] = form[f].checked; });
    try { await save(form.number.value.trim(), body); form.reset(); showError(""); form.number.focus(); load(); }
    catch (err) { showError(err.message); }
  });
  load();
})();
