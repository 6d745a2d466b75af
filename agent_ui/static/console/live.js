// The one live link: reconnects by itself (back-off 0.5 s → 10 s), catches up from the last seq
// it saw (?since=&epoch=), answers the server's ping, and shows the offline banner while down.
// On "resync" (too far behind, or the server restarted) the page reloads its state by REST.
"use strict";

window.HotlineLive = function HotlineLive({onMessage, onResync, onStatus}) {
  let lastSeq = null, epoch = null, delay = 500, ws = null, stopped = false;
  const banner = document.getElementById("offline");

  function status(up) {
    if (banner) {
      banner.textContent = "实时连接已断开，正在重连…";
      banner.hidden = up;
    }
    onStatus && onStatus(up);
  }

  function connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const q = lastSeq !== null ? `?since=${lastSeq}&epoch=${encodeURIComponent(epoch)}` : "";
    ws = new WebSocket(`${proto}//${location.host}/ws${q}`);
    ws.onopen = () => { delay = 500; status(true); };
    ws.onmessage = (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      if (msg.type === "ping") { ws.send(JSON.stringify({type: "pong"})); return; }
      if (msg.type === "hello") {
        const fresh = epoch !== null && msg.epoch !== epoch;
        epoch = msg.epoch;
        if (lastSeq === null || fresh) { lastSeq = msg.last_seq; onResync && onResync(); }
        return;
      }
      if (msg.type === "resync") {
        lastSeq = msg.seq; epoch = msg.epoch || epoch;
        onResync && onResync();
        return;
      }
      if (typeof msg.seq === "number") lastSeq = Math.max(lastSeq || 0, msg.seq);
      onMessage(msg);
    };
    ws.onclose = (ev) => {
      status(false);
      if (stopped) return;
      if (ev.code === 4401) { location.href = `/login?next=${encodeURIComponent(location.pathname)}`; return; }
      window.hotlineSessionCheck();  // a refused reconnect says nothing: ask whether we are still signed in
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 10000);
    };
  }
  connect();
  return {close() { stopped = true; ws && ws.close(); }, get lastSeq() { return lastSeq; }};
};

// fetch with the CSRF header and Chinese errors (detail from the server, or what to do next)
window.hotlineApi = async function hotlineApi(path, opts = {}) {
  const headers = Object.assign({"X-Requested-With": "hotline"}, opts.body ? {"Content-Type": "application/json"} : {});
  let res;
  try {
    res = await fetch(path, Object.assign({}, opts, {headers}));
  } catch (e) {
    throw Object.assign(new Error("无法连接服务器，请检查网络后重试"), {status: 0});
  }
  let body = null;
  try { body = await res.json(); } catch (e) { body = null; }
  if (res.status === 401) { location.href = `/login?next=${encodeURIComponent(location.pathname)}`; }
  if (!res.ok) {
    const detail = body && body.detail;
    throw Object.assign(new Error(typeof detail === "string" ? detail : `请求失败（${res.status}），请重试`),
                        {status: res.status, body});
  }
  return body;
};

// 回拨: POST /api/seat/callback (a missed call's call_id, or a ticket_id). The server claims each dial
// before the switch rings anyone, so a second click, another operator or a restart gets 409 with the
// dial that stands (agent_ui/dialing.py); only when the operator confirms 再拨一次 does it dial again,
// naming the attempt it has seen. Returns the answer, or null when the operator declines.
window.hotlineCallBack = async function hotlineCallBack(body) {
  const post = (b) => window.hotlineApi("/api/seat/callback", {method: "POST", body: JSON.stringify(b)});
  // the seat's ring that comes first is this operator's own dial: a browser phone (in the console,
  // maybe another tab) answers it by itself (phone.js)
  if (window.BroadcastChannel) new BroadcastChannel("hotline-phone").postMessage({type: "callback"});
  try {
    return await post(body);
  } catch (e) {
    const dial = e.body && e.body.dial;
    if (e.status !== 409 || !dial || dial.state === "dialing") throw e;  // someone is dialling it right now
    if (!window.confirm(`${e.message}\n\n再拨一次？`)) return null;
    return post(Object.assign({}, body, {after: dial.redial_after}));
  }
};

// What every page shows the same way: escaping for HTML, the notice line (#notice: errors stay,
// news fades after a few seconds), and an action whose error becomes that notice.
window.hotlineUi = (() => {
  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"})[c]);
  function notice(text, bad) {
    const n = document.getElementById("notice");
    if (!n) return;
    n.textContent = text; n.className = bad ? "notice bad" : "notice"; n.hidden = !text;
    clearTimeout(notice.t);
    if (text && !bad) notice.t = setTimeout(() => { n.hidden = true; }, 6000);
  }
  async function run(fn) {
    try { return await fn(); } catch (e) { notice(e.message, true); return null; }
  }
  return {esc, notice, run};
})();
