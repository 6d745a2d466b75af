// 导入历史工单: the admin chooses a .jsonl file (uploaded at once, with its progress), runs 检查 (the
// dry run: every line validated, nothing written), then 导入. Both run on the server in the
// background; the page polls their progress (bytes and lines read, the counts, the first 100 bad
// lines) and picks a running job up again after a reload.
// Keyboard: Tab moves between 选择文件 / 检查 / 导入 / 放弃此文件, Enter (or Space) presses; after each
// step the focus is on the next one (上传 → 检查 → 导入).
"use strict";
(() => {
  const {esc, notice, run} = window.hotlineUi;
  const api = window.hotlineApi;
  const $ = (s) => document.querySelector(s);
  const card = $("#imports-card"), MAX = Number(card.dataset.max);
  const BASE = "/api/admin/imports";
  let current = null;  // the upload shown, as last answered by the server
  let watching = false, timer = null;

  const num = (n) => Number(n || 0).toLocaleString("zh-CN");
  const size = (n) => n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(1)} MB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KB` : `${n} 字节`;
  const pad = (n) => String(n).padStart(2, "0");
  const when = (iso) => { const d = new Date(iso); return `${d.getMonth() + 1}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`; };
  // the job last started on the upload (a check after a failed import is the one to show)
  const latest = (u) => [u && u.check, u && u.import].filter(Boolean)
    .sort((a, b) => a.started_at.localeCompare(b.started_at)).pop() || null;
  const running = (u) => !!(latest(u) && latest(u).state === "running");

  function buttons(uploading) {
    const ready = !!current && !current.removed && !running(current) && !uploading;
    for (const id of ["#check", "#run", "#drop"]) $(id).disabled = !ready;
    $("#file").disabled = uploading || running(current);
  }

  function bar(title, done, total) {
    $("#progress").hidden = false;
    $("#job-title").textContent = title;
    const part = total ? Math.min(1, done / total) : 0;
    $("#bar").value = Math.round(part * 1000);
    $("#pct").textContent = `${Math.floor(part * 100)}%：${size(done)} / ${size(total)}`;
  }

  function render() {
    buttons(false);
    const u = current, job = latest(u);
    if (!u) { $("#upload-info").textContent = ""; $("#progress").hidden = $("#errors-box").hidden = true; return; }
    const state = u.removed ? "已导入，文件已删除" : u.checked ? `已检查（${when(u.check.finished_at)}）` : "尚未检查";
    $("#upload-info").innerHTML = `文件 <b>${esc(u.name)}</b>（${size(u.size)}，${esc(u.uploaded_by)} 上传于 ${when(u.uploaded_at)}）：${state}`;
    if (!job) { $("#progress").hidden = $("#errors-box").hidden = true; return; }
    const what = job.kind === "import" ? "导入" : "检查";
    const title = {running: `${what}中…`, done: `${what}完成`, failed: `${what}中断`}[job.state];
    bar(title, job.state === "done" ? job.size : job.bytes_read, job.size);
    $("#n-lines").textContent = num(job.lines);
    $("#n-imported").textContent = num(job.imported);
    $("#l-imported").textContent = job.kind === "import" ? "已导入" : "可导入";
    $("#n-present").textContent = num(job.already_present);
    $("#n-rejected").textContent = num(job.rejected);
    $("#f-rejected").classList.toggle("under", job.rejected > 0);
    $("#summary").className = job.state === "failed" ? "error" : "";
    $("#summary").textContent = job.state === "failed" ? job.failure : job.state === "running" ? "" : summary(job);
    $("#errors-box").hidden = job.errors.length === 0;
    $("#errors tbody").innerHTML = job.errors.map((e) => `<tr><td>第 ${e.line} 行</td><td>${esc(e.reason)}</td></tr>`).join("");
    $("#errors-more").textContent = job.more_errors ? `共 ${num(job.rejected)} 行，只列出前 ${job.errors.length} 行` : `共 ${num(job.rejected)} 行`;
  }

  function summary(job) {
    const rest = `已存在 ${num(job.already_present)} 张，有误 ${num(job.rejected)} 行`;
    return job.kind === "import" ? `导入完成：共 ${num(job.read)} 行，已导入 ${num(job.imported)} 张，${rest}。`
                                 : `检查完成：共 ${num(job.read)} 行，可导入 ${num(job.imported)} 张，${rest}。`;
  }

  async function poll() {
    clearTimeout(timer);
    if (!current) return;
    let got;
    try {
      got = await api(`${BASE}/${current.id}`);
    } catch (e) {
      notice(e.message, true);
      if (e.status === 404) { current = null; watching = false; render(); } else timer = setTimeout(poll, 3000);
      return;
    }
    current = got;
    render();
    if (running(got)) { watching = true; timer = setTimeout(poll, 1000); return; }
    if (!watching) return;
    watching = false;
    const job = latest(got);
    if (job.state === "failed") { notice(job.failure, true); return; }
    notice(summary(job));
    (job.kind === "check" ? $("#run") : $("#file")).focus();
  }

  function send(file) {  // XMLHttpRequest, not fetch: it tells how much of a large file has gone up
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", `${BASE}?name=${encodeURIComponent(file.name)}`);
      xhr.setRequestHeader("X-Requested-With", "hotline");
      xhr.setRequestHeader("Content-Type", "application/octet-stream");
      xhr.upload.onprogress = (ev) => bar("上传中…", ev.loaded, ev.lengthComputable ? ev.total : file.size);
      xhr.onload = () => {
        let body = null;
        try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
        if (xhr.status === 401) location.href = `/login?next=${encodeURIComponent(location.pathname)}`;
        if (xhr.status >= 200 && xhr.status < 300) return resolve(body);
        const detail = body && body.detail;
        reject(new Error(typeof detail === "string" ? detail : `上传失败（${xhr.status}），请重试`));
      };
      xhr.onerror = () => reject(new Error("上传中断：无法连接服务器，请检查网络后重试"));
      xhr.send(file);
    });
  }

  $("#file").addEventListener("change", async () => {
    const file = $("#file").files[0];
    if (!file) return;
    if (!/\.jsonl$/i.test(file.name)) return notice("只能导入 .jsonl 文件（JSON lines：每行一张工单的 JSON 对象）", true);
    if (file.size > MAX) return notice(`文件过大：不能超过 ${card.dataset.maxLabel}，请拆成几个文件分别导入`, true);
    if (current && !current.removed && !running(current)) {  // the file it replaces leaves the server
      await api(`${BASE}/${current.id}`, {method: "DELETE"}).catch(() => null);
    }
    current = null;
    render();
    $("#errors-box").hidden = true;
    buttons(true);
    bar("上传中…", 0, file.size);
    try {
      current = await send(file);
      notice(`已上传 ${file.name}：请先检查`);
      render();
      $("#check").focus();
    } catch (e) {
      notice(e.message, true);
      $("#progress").hidden = true;
      buttons(false);
    }
  });

  async function start(kind, body) {
    const got = await run(() => api(`${BASE}/${current.id}/${kind}`, {method: "POST", body: JSON.stringify(body || {})}));
    if (!got) return;
    current = got;
    watching = true;
    render();
    poll();
  }

  $("#check").addEventListener("click", () => current && start("check"));
  $("#run").addEventListener("click", () => {
    if (!current) return;
    const c = current.check;
    if (!current.checked) {
      if (!confirm("此文件尚未检查。不检查直接导入？有误的行会跳过，其余工单立即写入。")) return;
      return start("import", {unchecked: true});
    }
    if (c.rejected > 0 && !confirm(`检查发现 ${c.rejected} 行有误，这些行将跳过。导入其余 ${c.imported} 张工单？`)) return;
    start("import");
  });
  $("#drop").addEventListener("click", async () => {
    if (!current || !confirm(`放弃 ${current.name}？文件将从服务器删除。`)) return;
    if (await run(() => api(`${BASE}/${current.id}`, {method: "DELETE"}))) {
      notice(`已删除 ${current.name}`);
      current = null;
      $("#file").value = "";
      render();
      $("#file").focus();
    }
  });

  (async () => {  // back to what was on: the running job first, else the newest upload
    const got = await run(() => api(BASE));
    if (!got || !got.uploads.length) return render();
    current = got.uploads.find((u) => u.id === got.busy) || got.uploads[0];
    render();
    if (running(current)) { watching = true; poll(); }
  })();
})();
