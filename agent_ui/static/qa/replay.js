/* QA replay: both legs' waveforms on one player (the mixed file), the transcript following the
   audio with the current word highlighted, clicking a word or a finding seeks, the scoring form. */
"use strict";
(async () => {
  const root = document.getElementById("qa"), id = root.dataset.id, role = root.dataset.role;
  const player = document.getElementById("player"), box = document.getElementById("transcript");
  const timeEl = document.getElementById("time"), playBtn = document.getElementById("play");
  const SPEAKER = {citizen: "来电人", operator: "话务员", "": "双方"};
  const COLOR = {error: "rgba(224,49,49,.22)", warn: "rgba(240,140,0,.22)", info: "rgba(24,100,171,.16)"};
  const CJK = /[\u3400-\u9fff\uf900-\ufaff]/;
  let rec, spans = [], current = [], words = [];

  try { rec = await QA.api(`/api/recordings/${id}`); } catch (e) {
    document.getElementById("meta").replaceChildren(QA.el("span", {class: "error"}, e.message));
    return;
  }
  window.qaRecording = rec;  // for people debugging in the console, and the browser test
  words = rec.transcript ? rec.transcript.words : [];

  // ---- metadata
  const meta = [["时间", QA.date(rec.started_at)], ["坐席", rec.seat || "—"], ["工号", rec.operator || "—"],
    ["来电号码", rec.caller_num || "—"], ["时长", QA.clock(rec.duration_s)], ["工单", rec.ticket_id ? `#${rec.ticket_id}` : "—"],
    ["满意度", QA.SURVEY[rec.survey] || "未评价"], ["状态", QA.STATUS[rec.status] || rec.status]];
  document.getElementById("meta").replaceChildren(...meta.map(([k, v]) => QA.el("span", {}, `${k} `, QA.el("b", {}, v))));
  if (rec.problem) document.getElementById("meta").append(QA.el("span", {class: "error"}, rec.problem));

  // ---- transcript: turns of one speaker, words as clickable spans
  const flagged = new Map();
  for (const f of rec.findings) {
    if (f.first_word == null) continue;
    for (let i = f.first_word; i <= f.last_word; i++) flagged.set(i, f.title);
  }
  let turn = null, prev = null;
  for (const [i, w] of words.entries()) {
    if (!turn || turn.dataset.speaker !== w.speaker) {
      turn = QA.el("div", {class: `turn ${w.speaker}`, dataset: {speaker: w.speaker}},
        QA.el("span", {class: "who"}, `${SPEAKER[w.speaker] || w.speaker}`), QA.el("span", {class: "muted"}, `${QA.clock(w.start)} `));
      box.append(turn);
      prev = null;
    }
    if (prev && !CJK.test(prev.slice(-1)) && !CJK.test(w.word[0])) turn.append(" ");  // no spaces in Chinese
    const s = QA.el("span", {class: "w" + (flagged.has(i) ? " flagged" : ""), dataset: {i, start: w.start, end: w.end},
      title: `${QA.clock(w.start)}${flagged.has(i) ? " · " + flagged.get(i) : ""}`}, w.word);
    s.addEventListener("click", () => seek(w.start));
    spans.push(s);
    turn.append(s);
    prev = w.word;
  }
  const job = rec.transcription;
  document.getElementById("transcription-state").textContent = rec.transcript ? `（模型 ${rec.transcript.model.split("/").filter(Boolean).slice(-2).join("/")}）`
    : job ? `（${QA.JOB[job.state] || job.state}${job.error ? "：" + job.error : ""}）` : "（未转写）";
  if (!words.length) box.append(QA.el("p", {class: "muted"}, rec.transcript ? "未识别出语音" : "转写完成后显示文本"));

  // ---- findings
  const list = document.getElementById("findings");
  list.replaceChildren(...(rec.findings.length ? rec.findings.map((f) => QA.el("li", {},
    QA.el("button", {type: "button", class: `sev-${f.severity}`, onclick: () => seek(f.start),
      title: f.detail}, `${QA.clock(f.start)} ${f.title}${f.detail ? "：" + f.detail : ""}`)))
    : [QA.el("li", {class: "muted"}, rec.transcript ? "未发现问题" : "转写完成后自动检查")]));

  // ---- audio, only when allowed (the server decides and logs; the page only asks)
  function seek(t) {
    player.currentTime = Math.max(0, t);
    tick();
  }
  function highlight(t) {
    for (const s of current) s.classList.remove("current");
    current = [];
    for (const s of spans) {
      if (+s.dataset.start <= t && t < +s.dataset.end + 0.05) { s.classList.add("current"); current.push(s); }
    }
    const last = current[current.length - 1];
    if (last) {
      const top = last.offsetTop - box.offsetTop;
      if (top < box.scrollTop || top > box.scrollTop + box.clientHeight - 30) box.scrollTop = top - box.clientHeight / 3;
    }
  }
  function tick() {
    const t = player.currentTime || 0;
    timeEl.textContent = `${QA.clock(t)} / ${QA.clock(player.duration || rec.duration_s)}`;
    highlight(t);
  }
  function loop() { tick(); if (!player.paused) requestAnimationFrame(loop); }

  async function setupAudio() {
    let peaks;
    try { peaks = await QA.api(`/api/recordings/${id}/peaks`); } catch (e) {
      document.getElementById("no-audio").hidden = false;
      document.getElementById("no-audio-reason").textContent = e.message;
      if (role === "department") document.getElementById("request-form").hidden = true;
      return;
    }
    document.getElementById("player-box").hidden = false;
    player.src = `/api/recordings/${id}/audio/mixed`;
    document.getElementById("download").href = `/api/recordings/${id}/audio/mixed?download=1`;
    const dur = peaks.duration_s || rec.duration_s;
    const make = (sel, p, color) => {
      const ws = WaveSurfer.create({container: sel, media: player, peaks: [p.length ? p : [0, 0]], duration: dur,
        height: 64, waveColor: color, progressColor: "#495057", cursorColor: "#e03131", cursorWidth: 2, normalize: true});
      return [ws, ws.registerPlugin(WaveSurfer.Regions.create())];
    };
    const legs = {citizen: make("#wave-citizen", peaks.citizen, "#a5b4c4"), operator: make("#wave-operator", peaks.operator, "#74c0fc")};
    window.qaWaves = legs;
    // regions need the duration, known once the peaks are decoded
    for (const [leg, [ws, regions]] of Object.entries(legs)) ws.once("decode", () => {
      for (const f of rec.findings) {
        if (f.speaker && f.speaker !== leg) continue;
        regions.addRegion({start: f.start, end: Math.max(f.end, f.start + 0.2), color: COLOR[f.severity] || COLOR.info,
          content: f.title, drag: false, resize: false});
      }
    });
    for (const [, regions] of Object.values(legs)) regions.on("region-clicked", (r, e) => { e.stopPropagation(); seek(r.start); });
    player.addEventListener("play", () => { playBtn.textContent = "⏸ 暂停"; requestAnimationFrame(loop); });
    player.addEventListener("pause", () => { playBtn.textContent = "▶ 播放"; tick(); });
    for (const ev of ["seeked", "timeupdate", "loadedmetadata"]) player.addEventListener(ev, tick);
    playBtn.addEventListener("click", toggle);
    document.getElementById("back").addEventListener("click", () => seek(player.currentTime - 5));
    document.getElementById("fwd").addEventListener("click", () => seek(player.currentTime + 5));
    document.getElementById("speed").addEventListener("change", (e) => { player.playbackRate = +e.target.value; });
  }
  function toggle() { if (player.paused) player.play().catch(() => {}); else player.pause(); }
  function speed(step) {
    const sel = document.getElementById("speed");
    sel.selectedIndex = Math.min(sel.options.length - 1, Math.max(0, sel.selectedIndex + step));
    player.playbackRate = +sel.value;
  }
  document.getElementById("request-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const state = document.getElementById("request-state");
    try {
      const r = await QA.api("/api/recordings/access-requests", {method: "POST",
        body: JSON.stringify({recording_id: +id, reason: new FormData(e.target).get("reason")})});
      state.textContent = r.state === "approved" ? "已批准，正在加载…" : "已提交，等待班长或管理员审批";
      if (r.state === "approved") { document.getElementById("no-audio").hidden = true; setupAudio(); }
    } catch (err) { state.textContent = err.message; }
  });
  document.addEventListener("keydown", (e) => {
    const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(e.target.tagName);
    if (e.ctrlKey && e.key === "Enter") { e.preventDefault(); document.getElementById("score-form").requestSubmit(); return; }
    if (typing || document.getElementById("player-box").hidden) return;
    if (e.key === " ") { e.preventDefault(); toggle(); }
    else if (e.key === "ArrowLeft") seek(player.currentTime - 5);
    else if (e.key === "ArrowRight") seek(player.currentTime + 5);
    else if (e.key === "[") speed(-1);
    else if (e.key === "]") speed(1);
  });
  await setupAudio();

  // ---- the scoring form
  const form = document.getElementById("score-form");
  let items = [];
  try { items = await QA.api("/api/qa/check-items"); } catch (e) { form.append(QA.el("p", {class: "error"}, e.message)); }
  const canScore = role === "qa" || role === "admin";
  const totalEl = QA.el("div", {class: "score-total"});
  const recount = () => {
    let t = 0, m = 0;
    for (const it of items) { t += +form.elements[it.code].value || 0; m += it.weight; }
    totalEl.textContent = `合计 ${t} / ${m}`;
  };
  for (const it of items) {
    form.append(QA.el("label", {}, `${it.name}（${it.weight} 分）`,
      QA.el("input", {type: "number", name: it.code, min: "0", max: String(it.weight), step: "0.5", value: String(it.weight),
        required: "", oninput: recount}), QA.el("small", {}, it.guidance)));
  }
  const live = () => rec.scores.find((s) => !s.superseded);
  form.append(QA.el("label", {style: "display:block"}, "评语", QA.el("textarea", {name: "comment", rows: "2", style: "width:100%"})),
    QA.el("label", {style: "display:block", id: "reason-box", hidden: ""}, "更正原因（必填）",
      QA.el("input", {name: "reason", style: "width:100%"})),
    totalEl, QA.el("button", {type: "submit"}, "提交评分"), QA.el("p", {id: "score-msg", class: "muted"}));
  recount();
  if (!canScore) for (const el of form.elements) el.disabled = true;
  if (!canScore) document.getElementById("score-msg").textContent = "仅质检员可评分";

  function showScores() {
    document.getElementById("reason-box").hidden = !live();
    const div = document.getElementById("scores");
    div.replaceChildren(QA.el("h1", {}, "评分记录"), ...(rec.scores.length ? rec.scores.slice().reverse().map((s) =>
      QA.el("p", {class: s.superseded ? "muted" : ""}, `第 ${s.version} 版 · ${s.total}/${s.max_total} 分 · ${s.scorer} · ${QA.date(s.filed_at)}`
        + (s.superseded ? " · 已被更正" : "") + (s.reason ? ` · 更正原因：${s.reason}` : ""))) : [QA.el("p", {class: "muted"}, "尚未评分")]));
  }
  showScores();
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const marks = {};
    for (const it of items) marks[it.code] = {points: +form.elements[it.code].value};
    const cur = live();
    const body = {recording_id: +id, marks, comment: form.elements.comment.value,
      supersedes: cur ? cur.id : null, reason: form.elements.reason.value};
    const msg = document.getElementById("score-msg");
    try {
      const s = await QA.api("/api/qa/scores", {method: "POST", body: JSON.stringify(body)});
      msg.textContent = `已提交：第 ${s.version} 版，${s.total} 分（提交后不可修改，如需更正请填写原因再次提交）`;
      rec.scores = await QA.api(`/api/qa/scores?recording_id=${id}`);
      form.elements.reason.value = "";
      showScores();
    } catch (err) { msg.textContent = err.message; }
  });
})();
