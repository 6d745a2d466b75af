// 统计报表: one GET of /api/lead/reports; charts first (chart.js, vendored), tables under them,
// this period beside the previous one; the export links carry the same query.
"use strict";
(() => {
  const {api, esc, pct, num} = window.lead;
  const $ = (s) => document.querySelector(s);
  const form = $("#report-form");
  const charts = {};
  Chart.defaults.font.family = getComputedStyle(document.documentElement).fontFamily;
  Chart.defaults.animation = false;  // a report is read, not watched

  function chart(id, type, labels, datasets, opts = {}) {
    charts[id]?.destroy();
    charts[id] = new Chart(document.getElementById(id), {type, data: {labels, datasets},
      options: Object.assign({responsive: true, maintainAspectRatio: false}, opts)});
  }

  const query = () => {
    const f = new FormData(form);
    const q = new URLSearchParams({kind: f.get("kind"), day: f.get("day")});
    if (f.get("kind") === "range") q.set("until", f.get("until"));
    return q.toString();
  };

  function table(el, head, rows) {
    el.innerHTML = `<thead><tr>${head.map((h, i) => `<th class="${i ? "num" : ""}">${h}</th>`).join("")}</tr></thead>
      <tbody>${rows.map((r) => `<tr>${r.map((v, i) => `<td class="${i ? "num" : ""}">${v}</td>`).join("")}</tr>`).join("")}</tbody>`;
  }

  function render(d) {
    const c = d.calls, p = d.calls_previous, t = d.tickets, tp = d.tickets_previous;
    const i = d.intake, ip = d.intake_previous;  // 网站/微信/短信: handled within 3 minutes
    $("#period-label").textContent = `本期 ${d.period.label} · 上期 ${d.previous.label}`;
    const hours = [...Array(24).keys()].map((h) => `${String(h).padStart(2, "0")}时`);
    chart("c-hours", "bar", hours, [{label: "本期", data: c.by_hour, backgroundColor: "#1864ab"},
                                    {label: "上期", data: p.by_hour, backgroundColor: "#adb5bd"}]);
    chart("c-service", "line", c.service_by_day.map((x) => x.day),
          [{label: "15 秒接通率 %", data: c.service_by_day.map((x) => x.pct_within_rule), borderColor: "#2f9e44"},
           {label: "目标 95 %", data: c.service_by_day.map(() => 95), borderColor: "#e03131", borderDash: [6, 4], pointRadius: 0}],
          {scales: {y: {suggestedMin: 50, max: 100}}});
    chart("c-categories", "doughnut", t.by_category.map((x) => x.name),
          [{data: t.by_category.map((x) => x.count)}]);
    chart("c-departments", "bar", t.by_department.slice(0, 12).map((x) => x.name),
          [{label: "工单", data: t.by_department.slice(0, 12).map((x) => x.count), backgroundColor: "#1864ab"}],
          {indexAxis: "y"});
    const row = (label, a, b) => [label, a, `<span class="prev">${b}</span>`];
    table($("#t-summary"), ["指标", "本期", "上期"], [
      row("呼入", c.offered, p.offered), row("接听", c.answered, p.answered), row("放弃", c.abandoned, p.abandoned),
      row("15 秒接通率", pct(c.pct_within_rule), pct(p.pct_within_rule)),
      row("接通率", pct(c.pct_completion), pct(p.pct_completion)), row("放弃率", pct(c.pct_abandoned), pct(p.pct_abandoned)),
      row("平均等待", num(c.avg_wait_s, " s"), num(p.avg_wait_s, " s")), row("平均通话", num(c.avg_talk_s, " s"), num(p.avg_talk_s, " s")),
      row("满意率（IVR 评价）", pct(c.pct_satisfied), pct(p.pct_satisfied)),
      row("工单", t.tickets, tp.tickets), row("按时办结率", pct(t.pct_on_time), pct(tp.pct_on_time)),
      row("回访满意率", pct(t.pct_satisfied), pct(tp.pct_satisfied)),
      row("网络来件", i.received, ip.received),
      row(`网络来件 3 分钟响应率 <small>目标 95 %</small>`, pct(i.pct_on_time), pct(ip.pct_on_time)),
      row("网络来件超时", i.late, ip.late)]);
    const hms = (x) => { x = Math.round(x || 0); return `${Math.floor(x / 3600)}:${String(Math.floor(x / 60) % 60).padStart(2, "0")}:${String(x % 60).padStart(2, "0")}`; };
    table($("#t-operators"), ["话务员", "接听", "通话时长", "平均通话", "示忙", "话后处理", "15 秒接通率", "评价", "满意率", "质检得分"],
      c.per_operator.map((o) => [esc(o.operator), o.calls, hms(o.talk_s), num(o.avg_talk_s, " s"), hms(o.busy_s),
        hms(o.wrap_up_s), pct(o.pct_within_rule), o.surveys, pct(o.pct_satisfied), num(o.qa_score)]));
    const list = (title, rows) => `<div><h2>${title}</h2><ul class="queue-list">${rows.map((r) =>
      `<li>${esc(r.name)} <b>${r.count}</b></li>`).join("") || "<li class='empty'>无</li>"}</ul></div>`;
    $("#t-tickets").innerHTML = list("分类", t.by_category) + list("承办单位", t.by_department)
      + list("区县", t.by_district) + list("办理方式", t.by_mode);
    table($("#t-departments"), ["承办单位", "组织领导", "制度建设", "办理成效", "总分", "扣分", "加分"],
      d.departments.map((x) => [esc(x.department), x.leadership, x.rules, x.results, `<b>${x.score}</b>`,
        x.deductions.map((y) => `${esc(y.item)}×${y.count} ${y.points}`).join("；"),
        x.bonuses.map((y) => `${esc(y.item)}×${y.count} +${y.points}`).join("；")]));
    const words = (ws) => ws.map((w) => `${esc(w.word)} ${w.count}`).join("、") || "—";
    const h = d.hotspots;
    $("#t-hot").innerHTML = `<div><h2>本期热词</h2><p>${words(h.top)}</p></div>
      <div><h2>上升话题</h2><ul class="queue-list">${h.rising.map((r) => `<li>${esc(r.word)} ${r.count}（上期 ${r.previous}）</li>`).join("") || "<li class='empty'>无</li>"}</ul></div>
      <div><h2>按区县</h2><ul class="queue-list">${h.by_place.map((g) => `<li><b>${esc(g.name)}</b> ${words(g.words.slice(0, 5))}</li>`).join("")}</ul></div>
      <div><h2>按周</h2><ul class="queue-list">${h.by_week.map((g) => `<li><b>${esc(g.name)}</b> ${words(g.words.slice(0, 5))}</li>`).join("")}</ul></div>`;
  }

  async function load() {
    const q = query();
    $("#xlsx").href = `/api/lead/reports.xlsx?${q}`;
    $("#pdf").href = `/api/lead/reports.pdf?${q}`;
    try {
      render(await api(`/api/lead/reports?${q}`));
      $("#report").hidden = false; $("#report-error").hidden = true;
      window.leadReportReady = true;
    } catch (err) { $("#report-error").textContent = err.message; $("#report-error").hidden = false; }
  }
  $("#assess-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = Object.fromEntries(new FormData(e.target));
    f.count = Number(f.count);
    try { await api("/api/lead/assessment", {method: "POST", body: JSON.stringify(f)}); e.target.note.value = ""; load(); }
    catch (err) { $("#report-error").textContent = err.message; $("#report-error").hidden = false; }
  });
  form.kind.addEventListener("change", () => { $("#until-box").hidden = form.kind.value !== "range"; });
  form.addEventListener("submit", (e) => { e.preventDefault(); load(); });
  load();
})();
