// 分机密码: every seat's and department line's SIP password, shown only when asked (audited),
// rotated after a confirmation; the new password is shown once, with a copy button.
// Keyboard: Tab to a row's 查看 / 更换密码, Enter presses it; in the password box C copies, Enter or Esc closes;
// ↑/↓ move between the rows' buttons.
"use strict";
(() => {
  const {esc, notice, run} = window.hotlineUi;
  const api = window.hotlineApi;
  const post = (path) => api(path, {method: "POST", body: "{}"});
  const $ = (s) => document.querySelector(s);
  const pad = (n) => String(n).padStart(2, "0");
  const when = (iso) => { if (!iso) return "—"; const d = new Date(iso);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`; };
  let lines = [], back = null;  // back: the button to return focus to when the password box closes

  async function load() {
    const got = await run(() => api("/api/admin/sip"));
    if (!got) return;
    lines = got.lines;
    render();
    const box = $("#problems");
    box.querySelector("ul").innerHTML = got.problems.map((p) => `<li>${esc(p)}</li>`).join("");
    box.hidden = got.problems.length === 0;
  }

  function render() {
    $("#lines tbody").innerHTML = lines.map((l) => `<tr data-line="${esc(l.line)}">
      <td><b>${esc(l.line)}</b></td><td>${l.kind === "seat" ? "坐席" : "部门线路"}</td>
      <td>${l.has_password ? "••••••••" : `<span class="tag urgent">未生成</span>`}</td>
      <td>${when(l.changed_at)}</td>
      <td class="actions">
        <button type="button" class="small quiet" data-do="reveal" ${l.has_password ? "" : "disabled"}
                aria-label="查看${esc(l.label)}的密码">查看</button>
        <button type="button" class="small" data-do="rotate" aria-label="更换${esc(l.label)}的密码">更换密码</button></td>
    </tr>`).join("");
    $("#no-lines").hidden = lines.length > 0;
  }

  function showSecret(got, fresh, note) {
    $("#secret-title").textContent = fresh ? "新的分机密码" : "分机密码";
    $("#secret-line").textContent = got.label;
    $("#secret-value").textContent = got.password;
    $("#secret-once").hidden = !fresh;
    $("#secret-note").textContent = note || "请通过可靠渠道交给使用该话机的人，不要写在话机上。";
    $("#secret").showModal();
    $("#secret-close").focus();
  }
  async function copy() {
    try { await navigator.clipboard.writeText($("#secret-value").textContent); notice("已复制到剪贴板"); }
    catch (e) { notice("无法访问剪贴板，请手动抄写", true); }
  }
  $("#secret-copy").addEventListener("click", copy);
  // The password leaves the page with the box, and focus goes back to the row's button. "close"
  // fires a task later, so the close button does both at once; the listener covers Esc.
  function closed() {
    $("#secret-value").textContent = "";
    if (back && document.contains(back) && document.activeElement !== back) back.focus();
  }
  $("#secret-close").addEventListener("click", () => { $("#secret").close(); closed(); });
  $("#secret").addEventListener("close", closed);
  $("#secret").addEventListener("keydown", (ev) => {
    if ((ev.key === "c" || ev.key === "C") && !ev.ctrlKey && !ev.metaKey) { ev.preventDefault(); copy(); }
  });

  $("#lines").addEventListener("click", async (ev) => {
    const btn = ev.target.closest("button[data-do]");
    if (!btn) return;
    const line = btn.closest("tr").dataset.line, sip = lines.find((l) => l.line === line);
    const path = `/api/admin/sip/${encodeURIComponent(line)}`;
    back = btn;
    if (btn.dataset.do === "reveal") {
      const got = await run(() => post(`${path}/reveal`));
      if (got) showSecret(got, false, "");
    } else if (btn.dataset.do === "rotate") {
      if (!confirm(`更换${sip.label}的 SIP 密码？旧密码立即失效，该话机须用新密码重新注册（进行中的通话不受影响）。`)) return;
      btn.disabled = true;
      const got = await run(() => post(`${path}/rotate`));
      btn.disabled = false;
      if (!got) return;
      await load();
      back = document.querySelector(`#lines tr[data-line="${CSS.escape(line)}"] button[data-do=rotate]`);
      notice(got.reloaded ? `${got.label} 的密码已更换，Asterisk 已重新加载` : `${got.label} 的密码已更换`);
      showSecret(got, true, got.note);
    }
  });
  $("#lines").addEventListener("keydown", (ev) => {  // ↑/↓: the same button of the row above or below
    if (ev.key !== "ArrowDown" && ev.key !== "ArrowUp") return;
    const btn = ev.target.closest("button[data-do]");
    if (!btn) return;
    const row = ev.key === "ArrowDown" ? btn.closest("tr").nextElementSibling : btn.closest("tr").previousElementSibling;
    const to = row && row.querySelector(`button[data-do=${btn.dataset.do}]:not(:disabled)`);
    if (to) { ev.preventDefault(); to.focus(); }
  });
  load();
})();
