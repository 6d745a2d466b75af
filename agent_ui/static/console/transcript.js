// 实时转写: the call's words under the pop while it is spoken (issue #16). Partials in grey,
// replaced by the settled sentence; 来电人 and 话务员 in their own colours; scrolls with the call.
// 知识推送: articles pushed from what the citizen said (click: opens it in the 知识库 card).
// 建议填单: ticket fields proposed from the transcript, never written by themselves: Alt+1…9
// (or a click) puts one into the form, which then shows it was taken. Only what the page's own
// form has a field for is offered: the console's ticket, or the 回访 page's verdicts (智能回访).
"use strict";
// The 回访 page passes its result form, articles: false (no knowledge card there) and its own name
// for the citizen (市民, who is called there, not calling).
window.ConsoleTranscript = function ConsoleTranscript({form, esc, showArticle, articles: withArticles = true,
                                                       speakers = {}}) {
  const $ = (id) => document.getElementById(id);
  const box = $("transcript"), list = $("tr-lines"), props = $("tr-props"), arts = $("tr-articles");
  const SPEAKER = {citizen: "来电人", operator: "话务员", department: "承办单位", ...speakers};  // department: 三方
  const FIELD_OF = {lead_department_id: "department_id"};  // the assistant's ticket field → the form's
  let callId = null, proposals = [], articles = new Map(), lines = new Map();
  // what a test reads (partials are replaced within a second: counted as they come)
  const seen = window.__transcript = {partials: {citizen: 0, operator: 0}, finals: {citizen: 0, operator: 0}, states: []};

  function reset(id) {
    callId = id; proposals = []; articles = new Map(); lines = new Map();
    list.innerHTML = ""; props.innerHTML = ""; arts.innerHTML = "";
    $("tr-state").textContent = "";
    $("tr-assist").hidden = true;
    box.hidden = true;  // shown by the call's first word of it: a centre without listening nodes sees nothing
  }
  function state(msg) {
    const s = {listening: "转写中", unavailable: "不可用", degraded: "部分中断", moved: "已转接", left: "已离开通话", ended: "通话结束，转写已保存"}[msg.state] || msg.state;
    seen.states.push(msg.state);
    const el = $("tr-state");
    el.textContent = s + (msg.detail && msg.state !== "listening" ? `：${msg.detail}` : "");
    el.className = `tr-state tr-${msg.state}`;
  }
  function line(msg) {
    const key = `${msg.speaker}:${msg.line}`;
    let li = lines.get(key);
    if (!li) {
      li = document.createElement("li");
      li.className = `tr-${msg.speaker}`;
      li.innerHTML = `<b>${SPEAKER[msg.speaker] || esc(msg.speaker)}</b> <span></span>`;
      lines.set(key, li);
      list.appendChild(li);
    }
    li.classList.toggle("partial", !msg.final);
    const count = msg.final ? seen.finals : seen.partials;
    count[msg.speaker] = (count[msg.speaker] || 0) + 1;
    li.dataset.final = msg.final ? "1" : "";
    li.querySelector("span").textContent = msg.text;
    list.scrollTop = list.scrollHeight;
  }
  const fieldOf = (p) => form && form.elements[FIELD_OF[p.field] || p.field];
  function assist(msg) {
    for (const p of (msg.proposals || []).filter(fieldOf)) {
      const i = proposals.findIndex((x) => x.field === p.field);
      if (i >= 0) proposals[i] = {...p, taken: false}; else proposals.push({...p, taken: false});
    }
    for (const a of withArticles ? msg.articles || [] : []) articles.set(a.id, a);
    render();
  }
  function render() {
    $("tr-assist").hidden = !proposals.length && !articles.size;
    props.innerHTML = proposals.map((p, i) =>
      `<button type="button" class="tr-prop${p.taken ? " taken" : ""}" data-i="${i}" title="${esc(p.source || "")}">` +
      `${i < 9 ? `<kbd>Alt+${i + 1}</kbd> ` : ""}${esc(p.label)}：<b>${esc(p.display || p.value)}</b>${p.taken ? " ✓" : ""}</button>`).join("");
    arts.innerHTML = [...articles.values()].map((a) =>
      `<li><a href="#" data-id="${a.id}">${esc(a.title)}</a> <small>${esc((a.hits || []).join("、"))}</small></li>`).join("");
  }
  function take(i) {
    const p = proposals[i];
    const el = p && fieldOf(p);
    if (!el) return false;
    if (el instanceof RadioNodeList) {  // the 回访 verdicts: one of a group of radio buttons
      const radio = [...el].find((r) => r.value === p.value);
      if (!radio) return false;
      radio.checked = true;
      radio.dispatchEvent(new Event("change", {bubbles: true}));
      p.taken = true;
      render();
      return true;
    }
    if (el.tagName === "SELECT" && ![...el.options].some((o) => o.value === p.value || o.text === p.value)) return false;
    if (el.tagName === "SELECT") {
      const o = [...el.options].find((x) => x.value === p.value) || [...el.options].find((x) => x.text === p.value);
      el.value = o.value;
    } else {
      el.value = p.value;
    }
    el.dispatchEvent(new Event("input", {bubbles: true}));
    el.dispatchEvent(new Event("change", {bubbles: true}));
    p.taken = true;
    render();
    return true;
  }
  props.addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-i]");
    if (b) take(Number(b.dataset.i));
  });
  arts.addEventListener("click", (ev) => {
    const a = ev.target.closest("a[data-id]");
    if (!a) return;
    ev.preventDefault();
    const art = articles.get(Number(a.dataset.id));
    if (art) showArticle(art);
  });
  document.addEventListener("keydown", (ev) => {
    if (!ev.altKey || ev.ctrlKey || box.hidden) return;
    const n = Number(ev.key);
    if (n >= 1 && n <= 9 && proposals[n - 1]) { ev.preventDefault(); take(n - 1); }
  });

  function onMessage(msg) {
    if (!msg.call_id) return;
    if (msg.call_id !== callId) return;  // another call's (a pop that moved on): not this screen's
    box.hidden = false;
    if (msg.type === "live_assist") { assist(msg); return; }
    if (msg.event === "LiveState") { state(msg); return; }
    if (msg.event === "TranscriptLine") line(msg);
  }
  window.__transcriptProposals = () => proposals.map((p) => ({field: p.field, value: p.value, taken: p.taken}));
  reset(null);
  return {reset, onMessage, take, get proposals() { return proposals; }};
};
