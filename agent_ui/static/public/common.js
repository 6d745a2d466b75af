// What the citizens' pages share: a JSON POST that sends no cookie (these routes need no session)
// and turns refusals into plain Chinese, with the wait a rate limit asks for; escaping; dates.
"use strict";
window.citizen = {
  async post(path, body) {
    let res;
    try {
      res = await fetch(path, {method: "POST", credentials: "omit", body: JSON.stringify(body),
                               headers: {"Content-Type": "application/json", "X-Requested-With": "hotline"}});
    } catch (e) {
      throw Object.assign(new Error("无法连接服务器，请检查网络后重试"), {status: 0});
    }
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (!res.ok) {
      const detail = data && typeof data.detail === "string" ? data.detail : `请求失败（${res.status}），请稍后重试`;
      throw Object.assign(new Error(detail), {status: res.status, wait: Number(res.headers.get("Retry-After")) || 0});
    }
    return data;
  },
  // 2026-11-16 09:30 in the phone's own time zone
  when(iso) {
    if (!iso) return "";
    const d = new Date(iso), p = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
  },
  notice(el, text, bad) {
    el.textContent = text; el.className = bad ? "notice bad" : "notice"; el.hidden = !text;
  },
  // a button that says how long to wait, and comes back by itself
  hold(button, seconds, label) {
    let left = seconds;
    button.disabled = true;
    const tick = () => {
      if (left <= 0) { clearInterval(timer); button.disabled = false; button.textContent = label; return; }
      button.textContent = `请等待 ${left} 秒`; left -= 1;
    };
    const timer = setInterval(tick, 1000);
    tick();
  },
};
