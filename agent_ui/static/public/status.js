// 工单查询: number + query code → the state in plain words, the reply, the dates; a rating once
// the department has replied. A wrong code and an unknown number read the same.
"use strict";
(() => {
  const {post, when, notice, hold} = window.citizen;
  const $ = (id) => document.getElementById(id);
  const form = $("lookup");
  let asked = null;  // {number, code} of the ticket shown: the rating needs them again

  function show(t) {
    $("r-state").textContent = t.state;
    $("r-number").textContent = t.number;
    $("r-title").textContent = t.title;
    $("r-received").textContent = when(t.received);
    for (const [id, value] of [["r-due", t.due], ["r-replied", t.replied], ["r-closed", t.closed]]) {
      $(id).textContent = when(value);
      $(id).hidden = !value;
      document.querySelector(`dt[data-for="${id}"]`).hidden = !value;
    }
    $("r-reply").textContent = t.reply;
    $("reply-box").hidden = !t.reply;
    $("rate-box").hidden = !t.may_rate;
    $("rated").textContent = t.rating ? `您的评价：${t.rating}，感谢您的反馈` : "";
    $("rated").hidden = !t.rating;
    $("result").hidden = false;
  }

  // too many tries: the button says how long to wait and comes back by itself
  function refused(e) {
    notice($("notice"), e.message, true);
    if (e.status === 429 && e.wait) hold($("ask"), e.wait, "查询"); else $("ask").disabled = false;
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = {number: form.number.value.replace(/\s/g, ""), code: form.code.value.replace(/\s/g, "")};
    if (!body.number || !body.code) { notice($("notice"), "请输入工单编号和查询码", true); return; }
    $("result").hidden = true;
    $("ask").disabled = true;
    try {
      show(await post("/api/public/status", body));
      asked = body;
      notice($("notice"), "");
      $("ask").disabled = false;
    } catch (e) {
      asked = null;
      refused(e);
    }
  });

  $("rate-box").addEventListener("click", async (ev) => {
    const b = ev.target.closest("button[data-rating]");
    if (!b || !asked) return;
    try {
      show(await post("/api/public/rate", Object.assign({rating: b.dataset.rating}, asked)));
      notice($("notice"), "评价已提交，感谢您的反馈");
    } catch (e) {
      refused(e);
    }
  });
})();
