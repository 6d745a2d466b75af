// 账号管理: list, find, create, change, disable/enable, reset a password (shown once), end sessions.
// Keyboard: / finds, N creates, Enter saves, Esc closes a form.
"use strict";
(() => {
  const {esc, notice, run} = window.hotlineUi;
  const api = window.hotlineApi;
  const post = (path, body) => api(path, {method: "POST", body: JSON.stringify(body || {})});
  const $ = (s) => document.querySelector(s);
  const me = $("#accounts-card").dataset.me;
  const ROLES = {operator: "话务员", lead: "值班长", qa: "质检员", department: "承办单位", admin: "管理员"};
  const pad = (n) => String(n).padStart(2, "0");
  const when = (iso) => { if (!iso) return "—"; const d = new Date(iso);
    return `${d.getMonth() + 1}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`; };
  let all = [], departments = [], editing = null;

  async function load() {
    const got = await run(() => api("/api/admin/accounts"));
    if (got) { all = got; render(); }
  }
  async function loadDepartments() {
    departments = (await run(() => api("/api/departments"))) || [];
    $("#edit-form").department_id.innerHTML = `<option value="">（无）</option>` +
      departments.map((d) => `<option value="${d.id}">${esc(d.name)}</option>`).join("");
  }
  const deptName = (id) => (departments.find((d) => d.id === id) || {}).name || (id ? `#${id}` : "");

  function render() {
    const q = $("#q").value.trim().toLowerCase(), role = $("#f-role").value, disabled = $("#f-disabled").checked;
    const rows = all.filter((a) => (disabled || a.active) && (!role || a.role === role) &&
      (!q || [a.username, a.display_name, a.job_number].some((v) => (v || "").toLowerCase().includes(q))));
    $("#accounts tbody").innerHTML = rows.map((a) => `<tr data-user="${esc(a.username)}" class="${a.active ? "" : "off"}">
      <td><b>${esc(a.username)}</b></td><td>${esc(a.display_name)}</td><td>${esc(a.role_label)}</td>
      <td>${esc(a.job_number)}</td><td>${esc(deptName(a.department_id))}${a.dept_lead ? " · 负责人" : ""}</td>
      <td>${esc(a.centre || "全部")}</td>
      <td>${a.active ? "启用" : `<span class="tag">已停用</span>`}${a.must_change_password ? ` <span class="tag">待改密码</span>` : ""}${a.demo ? ` <span class="tag urgent">演示账号</span>` : ""}</td>
      <td>${when(a.last_login_at)}</td>
      <td><button type="button" class="small quiet" data-do="sessions">${a.open_sessions}</button></td>
      <td class="actions"><button type="button" class="small" data-do="edit">修改</button>
        <button type="button" class="small" data-do="reset">重置密码</button>
        ${a.username === me ? "" : a.active ? `<button type="button" class="small refuse" data-do="disable">停用</button>`
                                             : `<button type="button" class="small" data-do="enable">启用</button>`}
        ${a.open_sessions && a.username !== me ? `<button type="button" class="small quiet" data-do="logout">强制下线</button>` : ""}</td>
    </tr>`).join("");
    $("#no-accounts").hidden = rows.length > 0;
  }

  function openForm(account) {
    editing = account;
    const f = $("#edit-form");
    f.reset();
    $("#edit-title").textContent = account ? `修改账号 ${account.username}` : "新建账号";
    f.username.disabled = !!account;
    for (const k of ["username", "display_name", "role", "job_number", "centre"]) f[k].value = account ? (account[k] ?? "") : "";
    if (!account) f.role.value = "operator";
    f.department_id.value = account && account.department_id ? String(account.department_id) : "";
    f.dept_lead.checked = !!(account && account.dept_lead);
    $("#edit-error").hidden = true;
    syncRole();
    $("#edit").showModal();
    (account ? f.display_name : f.username).focus();
  }
  function syncRole() {  // only departments have a department and a 负责人; operators need a 工号
    const f = $("#edit-form"), dept = f.role.value === "department";
    f.department_id.disabled = f.dept_lead.disabled = !dept;
    f.department_id.required = dept;
    f.job_number.required = f.role.value === "operator";
  }
  $("#edit-form").role.addEventListener("change", syncRole);
  $("#edit-cancel").addEventListener("click", () => $("#edit").close());

  $("#edit-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target, dept = f.role.value === "department";
    const body = {display_name: f.display_name.value.trim(), role: f.role.value, job_number: f.job_number.value.trim(),
                  centre: f.centre.value.trim(), department_id: dept && f.department_id.value ? Number(f.department_id.value) : null,
                  dept_lead: dept && f.dept_lead.checked};
    try {
      if (editing) {
        await api(`/api/admin/accounts/${encodeURIComponent(editing.username)}`, {method: "PATCH", body: JSON.stringify(body)});
        notice(`已保存 ${editing.username}`);
      } else {
        const got = await post("/api/admin/accounts", Object.assign({username: f.username.value.trim()}, body));
        showSecret(got.account.username, got.temporary_password);
      }
      $("#edit").close();
      load();
    } catch (e) {
      $("#edit-error").textContent = e.message; $("#edit-error").hidden = false;
    }
  });

  function showSecret(username, password) {
    $("#secret-user").textContent = username;
    $("#secret-value").textContent = password;
    $("#secret").showModal();
    $("#secret-close").focus();
  }
  $("#secret-copy").addEventListener("click", async () => {
    try { await navigator.clipboard.writeText($("#secret-value").textContent); notice("已复制"); }
    catch (e) { notice("无法访问剪贴板，请手动抄写", true); }
  });
  $("#secret-close").addEventListener("click", () => { $("#secret-value").textContent = ""; $("#secret").close(); });
  $("#secret").addEventListener("close", () => { $("#secret-value").textContent = ""; });  // Esc as well
  $("#sessions-close").addEventListener("click", () => $("#sessions").close());

  async function showSessions(username) {
    const rows = (await run(() => api(`/api/admin/accounts/${encodeURIComponent(username)}/sessions`))) || [];
    $("#sessions-title").textContent = `${username} 的登录会话`;
    $("#sessions tbody").innerHTML = rows.map((s) => `<tr><td>${when(s.created_at)}</td><td>${when(s.last_seen_at)}</td>
      <td>${esc(s.client)}</td><td>${esc(s.user_agent.slice(0, 60))}</td>
      <td>${s.revoked_at ? `已结束（${esc(REASONS[s.revoked_reason] || s.revoked_reason)}）` : new Date(s.expires_at) < new Date() ? "已过期" : "在线"}</td></tr>`).join("")
      || `<tr><td colspan="5" class="empty">没有会话</td></tr>`;
    $("#sessions").showModal();
  }
  const REASONS = {logout: "退出", idle: "长时间未操作", disabled: "账号停用", account_change: "权限变更", password_reset: "密码重置",
                   password_change: "修改密码", admin: "管理员强制下线", demo_off: "演示关闭"};

  $("#accounts").addEventListener("click", async (ev) => {
    const btn = ev.target.closest("button[data-do]");
    if (!btn) return;
    const username = btn.closest("tr").dataset.user, account = all.find((a) => a.username === username);
    const path = `/api/admin/accounts/${encodeURIComponent(username)}`;
    const act = btn.dataset.do;
    if (act === "edit") return openForm(account);
    if (act === "sessions") return showSessions(username);
    if (act === "reset") {
      if (!confirm(`重置 ${username} 的密码？该账号的登录会立即失效。`)) return;
      const got = await run(() => post(`${path}/reset-password`));
      if (got) { showSecret(username, got.temporary_password); load(); }
    } else if (act === "disable") {
      if (!confirm(`停用 ${username}？该账号的登录会立即失效。`)) return;
      if (await run(() => post(`${path}/disable`))) { notice(`已停用 ${username}`); load(); }
    } else if (act === "enable") {
      if (await run(() => post(`${path}/enable`))) { notice(`已启用 ${username}`); load(); }
    } else if (act === "logout") {
      const got = await run(() => post(`${path}/logout`));
      if (got) { notice(`${username} 的 ${got.revoked} 个会话已结束`); load(); }
    }
  });

  for (const id of ["#q", "#f-role", "#f-disabled"]) $(id).addEventListener("input", render);
  $("#new").addEventListener("click", () => openForm(null));
  document.addEventListener("keydown", (ev) => {
    if (ev.target.closest("input, select, textarea, dialog")) return;
    if (ev.key === "/") { ev.preventDefault(); $("#q").focus(); }
    if (ev.key === "n" || ev.key === "N") { ev.preventDefault(); openForm(null); }
  });
  loadDepartments().then(load);
})();
