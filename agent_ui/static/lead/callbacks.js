// 未接来电回拨: the list from /api/callbacks; "已回拨" records who called back and when.
"use strict";
(() => {
  const {api, esc, when} = window.lead;
  const $ = (s) => document.querySelector(s);
  async function load() {
    try {
      const rows = await api(`/api/callbacks?days=${$("#days").value}&include_done=${$("#show-done").checked}`);
      $("#callbacks tbody").innerHTML = rows.map((r) => `<tr data-id="${esc(r.id)}">
        <td>${when(r.offered)}</td><td>${esc(r.caller)}</td><td>${esc(r.location)}</td>
        <td>${r.wait_s === null ? "" : Math.round(r.wait_s) + " s"}</td>
        <td>${r.message ? "留言" : r.callback_requested ? "申请回拨" : "放弃"}${r.answered_later ? "（之后已接通）" : ""}${r.reconstructed
          ? '<span class="tag-rebuilt" title="话务桥中断期间的来电，已据 Asterisk 通话事件记录补录">补录</span>' : ""}
          ${r.message_recording ? `<a href="/qa/${r.message_recording}" target="_blank">▶ 收听</a>` : ""}</td>
        <td class="by">${esc(r.called_back_by)}</td><td class="at">${when(r.called_back_at)}</td><td>${esc(r.callback_note)}</td>
        <td>${r.called_back_at ? "" : `<input class="note" placeholder="回拨结果" maxlength="200"> <button type="button" class="small done">已回拨</button>`}</td></tr>`).join("");
      $("#no-callbacks").hidden = rows.length > 0;
      $("#cb-error").hidden = true;
    } catch (err) { $("#cb-error").textContent = err.message; $("#cb-error").hidden = false; }
  }
  $("#callbacks").addEventListener("click", async (e) => {
    if (!e.target.classList.contains("done")) return;
    const tr = e.target.closest("tr");
    e.target.disabled = true;
    try {
      await api(`/api/callbacks/${encodeURIComponent(tr.dataset.id)}/done`,
                {method: "POST", body: JSON.stringify({note: tr.querySelector(".note").value})});
      load();
    } catch (err) { e.target.disabled = false; $("#cb-error").textContent = err.message; $("#cb-error").hidden = false; }
  });
  $("#show-done").addEventListener("change", load);
  $("#days").addEventListener("change", load);
  load();
  setInterval(load, 30000);
})();
