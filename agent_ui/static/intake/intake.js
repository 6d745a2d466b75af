// 网络来件: the queue (oldest first) with a live countdown to each submission's 3-minute mark, the
// ticket form filled from the chosen one, 受理 / 不受理. Refreshed over the websocket (intake_update),
// never by reloading. Keyboard: Alt+N takes the oldest, Ctrl+Enter confirms; Esc never clears text.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const api = window.hotlineApi;
  const form = $("ticket");
  const NEAR_S = 60;         // amber in the last minute before the mark
  let items = [];            // the queue as last read
  let offset = 0;            // server clock - browser clock (the store's clock measures the 3 minutes)
  let target = 180;
  let chosen = null;         // the submission the form was filled from
  const mine = new Set();      // submissions this page just handled (their vanishing is no news)

  const {esc, notice, run} = window.hotlineUi;
  const now = () => Date.now() / 1000 + offset;
  const epoch = (iso) => new Date(iso).getTime() / 1000;
  function mmss(s) { s = Math.max(0, Math.floor(s)); return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`; }
  function hhmm(iso) { return new Date(iso).toLocaleTimeString("zh-CN", {hour12: false}); }

  // ------------------------------------------------------------------ queue
  async function load() {
    const got = await run(() => api("/api/intake/queue"));
    if (!got) return;
    offset = got.now - Date.now() / 1000;
    target = got.target_s;
    items = got.items;
    if (chosen && !items.some((s) => s.id === chosen.id)) {
      if (!mine.has(chosen.id)) notice(`来件 ${chosen.id} 已由其他人处理`, true);
      close();
    }
    render();
  }
  function render() {
    $("queue").innerHTML = items.map((s) => {
      const taken = s.status === "handling";
      return `<li tabindex="0" data-id="${s.id}" data-due="${epoch(s.respond_by)}" class="${chosen && chosen.id === s.id ? "on" : ""}">
        <div class="top"><span class="chan">${esc(s.channel_label)}</span><span class="when">${hhmm(s.received_at)} 收到</span>
          <span class="who">${esc(s.name || "未留姓名")} · ${esc(s.contact)}${s.confidential ? " · 保密" : ""}</span>
          <span class="left"></span></div>
        ${s.place ? `<div class="who">地点：${esc(s.place)}</div>` : ""}
        <p class="text">${esc(s.text)}</p>
        ${taken ? `<span class="taken">${esc(s.handled_by)} 正在处理…</span>` : ""}</li>`;
    }).join("");
    $("empty").hidden = items.length > 0;
    $("count").textContent = items.length;
    tick();
  }
  function tick() {
    const t = now();
    for (const li of $("queue").children) {
      const left = parseFloat(li.dataset.due) - t;
      li.querySelector(".left").textContent = left >= 0 ? `剩余 ${mmss(left)}` : `超时 ${mmss(-left)}`;
      li.classList.toggle("late", left < 0);
      li.classList.toggle("near", left >= 0 && left <= NEAR_S);
    }
    const oldest = items.length ? t - epoch(items[0].received_at) : null;
    $("oldest").textContent = oldest === null ? "—" : mmss(oldest);
    $("oldest").style.color = oldest !== null && oldest > target ? "var(--bad)" : "";
  }
  setInterval(tick, 250);

  // ------------------------------------------------------------------ the form
  function choose(id) {
    const s = items.find((x) => x.id === id);
    if (!s) return;
    if (s.status === "handling") { notice(`该来件正由 ${s.handled_by} 处理`, true); return; }
    if (!chosen || chosen.id !== s.id) fill(s);
    chosen = s;
    $("pick").hidden = true;
    form.hidden = false;
    $("form-src").textContent = `来件 ${s.id} · ${s.channel_label} · ${hhmm(s.received_at)} 收到`;
    render();
    form.title.focus();
    form.title.select();
  }
  function fill(s) {
    form.reset();
    const phone = s.contact.replace(/[\s-]/g, "");
    form.caller_number.value = /^\+?\d{5,20}$/.test(phone) ? phone : "";
    form.caller_name.value = s.name;
    form.contact.value = s.contact;
    form.matter_place.value = s.place;
    form.matter_course.value = s.text;
    form.title.value = s.text.split(/[。！？!?\n]/)[0].slice(0, 40);
    form.confidential.checked = s.confidential;
  }
  function close() {
    chosen = null;
    form.hidden = true;
    $("pick").hidden = false;
    $("form-src").textContent = "";
  }
  function ticketBody() {
    const d = {};
    for (const el of form.elements) {
      if (!el.name || el.name === "reason") continue;
      d[el.name] = el.type === "checkbox" ? el.checked : el.value.trim();
    }
    return d;
  }
  function remember(html) {
    const done = $("done");
    if (done.querySelector(".empty")) done.innerHTML = "";
    done.insertAdjacentHTML("afterbegin", `<li>${html}</li>`);
  }
  async function confirmChosen() {
    if (!chosen) return;
    const s = chosen, body = ticketBody();
    if (!body.title) { notice("请填写标题", true); form.title.focus(); return; }
    $("confirm").disabled = true;
    mine.add(s.id);
    const t = await run(() => api(`/api/intake/queue/${s.id}/confirm`, {method: "POST", body: JSON.stringify(body)}));
    $("confirm").disabled = false;
    if (!t) { mine.delete(s.id); return; }
    notice(`已受理为工单 ${t.number}，查询码 ${t.query_code}：请告知市民（${s.contact}）`);
    remember(`工单 <b class="number">${esc(t.number)}</b> · 查询码 <span class="code">${esc(t.query_code)}</span>
      · ${esc(s.channel_label)} · ${esc(s.contact)} · ${esc(t.title)}`);
    close();
    load();
  }
  async function rejectChosen() {
    if (!chosen) return;
    const s = chosen, reason = form.reason.value.trim();
    if (!reason) { notice("请填写不受理的原因", true); form.reason.focus(); return; }
    mine.add(s.id);
    const done = await run(() => api(`/api/intake/queue/${s.id}/reject`, {method: "POST", body: JSON.stringify({reason})}));
    if (!done) { mine.delete(s.id); return; }
    notice(`来件 ${s.id} 不受理：${reason}`);
    remember(`来件 ${s.id} 不受理 · ${esc(s.channel_label)} · ${esc(s.contact)} · ${esc(reason)}`);
    close();
    load();
  }

  $("queue").addEventListener("click", (ev) => {
    const li = ev.target.closest("li[data-id]");
    if (li) choose(Number(li.dataset.id));
  });
  $("queue").addEventListener("keydown", (ev) => {
    const li = ev.target.closest("li[data-id]");
    if (li && ev.key === "Enter") { ev.preventDefault(); choose(Number(li.dataset.id)); }
  });
  form.addEventListener("submit", (ev) => { ev.preventDefault(); confirmChosen(); });
  $("reject").addEventListener("click", rejectChosen);
  form.reason.addEventListener("keydown", (ev) => { if (ev.key === "Enter") { ev.preventDefault(); rejectChosen(); } });
  document.addEventListener("keydown", (ev) => {
    const k = ev.key.toLowerCase();
    if (ev.altKey && k === "n") {
      ev.preventDefault();
      const first = items.find((s) => s.status === "pending");
      if (first) choose(first.id); else notice("暂无待受理来件");
    } else if (ev.ctrlKey && k === "enter") { ev.preventDefault(); confirmChosen(); }
    else if (k === "escape") { ev.preventDefault(); if (document.activeElement) document.activeElement.blur(); }
  });

  // ------------------------------------------------------------------ live
  window.__live = window.HotlineLive({
    onMessage: (msg) => { if (msg.type === "intake_update") load(); },
    onResync: load,
    onStatus: (up) => { $("link").className = up ? "dot on" : "dot off"; },
  });
})();
