// 浏览器话机: the console is the seat's phone (JsSIP over Asterisk's SIP WebSocket). It registers
// the seat the operator signed in to when that seat is a browser seat, rings, answers (by hand, or
// by itself once the pop is shown), holds, mutes, sends DTMF and hangs up; transfer and 三方 stay
// the console's (through the CTI). The call's state on screen comes from the CTI's websocket, not
// from here, so a dropped SIP socket loses nothing the console shows.
// Keys: Alt+A 接听, Alt+P 保持/恢复, Alt+M 静音/取消静音 (Alt+H 挂断 is the console's).
"use strict";
window.ConsolePhone = function ({api, notice}) {
  const $ = (id) => document.getElementById(id);
  const bar = $("phone");
  const ICE = {iceServers: [], rtcpMuxPolicy: "require", bundlePolicy: "max-bundle"};
  const LABEL = {
    off: "未启用", connecting: "正在连接交换机…", registered: "就绪", ringing: "来电振铃", talking: "通话中",
    held: "保持中", reconnecting: "与交换机的连接中断，正在重连…", failed: "注册失败",
    elsewhere: "已在本浏览器的另一个工作台窗口中使用（刷新本页可取回）",
    nomic: "未找到麦克风：话机未注册，来电不会分配到本坐席", denied: "麦克风权限被拒绝：话机未注册，来电不会分配到本坐席",
  };
  const S = {state: "off", seat: null, rms: 0, micRms: 0, invites: 0, answeredAt: null, inviteAt: null,
             firstAudioAt: null, answerClickAt: null, calls: [], muted: false, held: false, popFor: null, expectUntil: 0};
  let ua = null, creds = null, session = null, mic = null, ringing = null, retried = false;
  let audioCtx = null, remoteAnalyser = null, micAnalyser = null;
  const remote = new Audio();
  remote.autoplay = true;

  function ctx() {
    if (!audioCtx) audioCtx = new AudioContext();
    if (audioCtx.state === "suspended") audioCtx.resume();
    return audioCtx;
  }
  // the page may only make sound after a click or a key: any of them (sign-in is one) unlocks it
  for (const ev of ["click", "keydown"]) document.addEventListener(ev, () => { if (S.seat) ctx(); }, true);

  function set(state, detail) {
    S.state = state;
    const el = $("phone-state");
    el.textContent = (LABEL[state] || state) + (detail ? `（${detail}）` : "") + (S.muted && session ? " · 已静音" : "");
    el.className = `st ph-${state}`;
    const live = !!session && session.isEstablished();
    $("ph-answer").disabled = !(session && state === "ringing");
    $("ph-hold").disabled = !live;
    $("ph-mute").disabled = !live;
    $("ph-hold").textContent = S.held ? "恢复" : "保持";
    $("ph-mute").textContent = S.muted ? "取消静音" : "静音";
    for (const b of document.querySelectorAll("#ph-dtmf button")) b.disabled = !live;
  }

  // ------------------------------------------------------------------ microphone and speaker
  async function openMic() {
    const id = $("ph-mic").value;
    try {
      const stream = await navigator.mediaDevices.getUserMedia({audio: id ? {deviceId: {exact: id}} : true, video: false});
      if (mic) mic.getTracks().forEach((t) => t.stop());
      mic = stream;
      micAnalyser = ctx().createAnalyser();
      micAnalyser.fftSize = 1024;
      ctx().createMediaStreamSource(mic).connect(micAnalyser);
      await listDevices();
      return true;
    } catch (e) {
      mic = null;
      set(e && (e.name === "NotAllowedError" || e.name === "SecurityError") ? "denied" : "nomic");
      return false;
    }
  }
  async function listDevices() {
    const all = await navigator.mediaDevices.enumerateDevices();
    const fill = (sel, kind, keep) => {
      const rows = all.filter((d) => d.kind === kind);
      sel.innerHTML = rows.map((d, i) => `<option value="${d.deviceId}">${d.label || `${kind === "audioinput" ? "麦克风" : "扬声器"} ${i + 1}`}</option>`).join("");
      if (keep && rows.some((d) => d.deviceId === keep)) sel.value = keep;
    };
    const micId = mic && mic.getAudioTracks()[0] && mic.getAudioTracks()[0].getSettings().deviceId;
    fill($("ph-mic"), "audioinput", micId || $("ph-mic").value);
    fill($("ph-spk"), "audiooutput", localStorage.getItem("hotline.speaker") || $("ph-spk").value);
    $("ph-spk").disabled = !remote.setSinkId || !$("ph-spk").options.length;
  }
  $("ph-mic").onchange = async () => {
    if (!(await openMic())) return;
    // mid-call: the new microphone replaces the old one on the same connection, no re-INVITE
    const pc = session && session.connection;
    if (pc) {
      for (const sender of pc.getSenders()) if (sender.track && sender.track.kind === "audio") await sender.replaceTrack(mic.getAudioTracks()[0]);
      if (S.muted) mic.getAudioTracks().forEach((t) => { t.enabled = false; });
    }
    set(S.state);
  };
  $("ph-spk").onchange = async () => {
    localStorage.setItem("hotline.speaker", $("ph-spk").value);
    if (remote.setSinkId) await remote.setSinkId($("ph-spk").value).catch((e) => notice(`扬声器切换失败：${e.message}`, true));
  };
  if (navigator.mediaDevices) navigator.mediaDevices.addEventListener("devicechange", () => { if (S.seat) listDevices(); });

  function rms(analyser) {
    if (!analyser) return 0;
    const buf = new Float32Array(analyser.fftSize);
    analyser.getFloatTimeDomainData(buf);
    let sum = 0;
    for (const v of buf) sum += v * v;
    return Math.sqrt(sum / buf.length);
  }
  setInterval(() => {
    if (!S.seat) return;
    S.micRms = S.muted ? 0 : rms(micAnalyser);
    S.rms = rms(remoteAnalyser);
    $("ph-mic-level").value = Math.min(1, S.micRms * 4);
    $("ph-spk-level").value = Math.min(1, S.rms * 4);
  }, 100);

  // ------------------------------------------------------------------ ringing sound
  function ring(on) {
    clearInterval(ringing);
    ringing = null;
    if (!on) return;
    const burst = () => {  // two short tones each 2 s: heard over a headset without being shrill
      const c = ctx(), t = c.currentTime;
      for (const [at, hz] of [[0, 660], [0.25, 880]]) {
        const o = c.createOscillator(), g = c.createGain();
        o.frequency.value = hz;
        g.gain.setValueAtTime(0.0001, t + at);
        g.gain.exponentialRampToValueAtTime(0.2, t + at + 0.02);
        g.gain.exponentialRampToValueAtTime(0.0001, t + at + 0.22);
        o.connect(g).connect(c.destination);
        o.start(t + at); o.stop(t + at + 0.25);
      }
    };
    burst();
    ringing = setInterval(burst, 2000);
  }

  // ------------------------------------------------------------------ registration
  async function start(seat) {
    S.seat = seat;
    bar.hidden = false;
    if (channel) channel.postMessage({type: "taken", seat, tab: TAB});
    if (!window.JsSIP) { set("failed", "话机组件未加载"); return; }
    set("connecting");
    if (!(await openMic())) return;
    try { creds = await api("/api/seat/phone"); }
    catch (e) { set("failed", e.message); return; }
    $("ph-auto").checked = localStorage.getItem("hotline.autoAnswer") !== null
      ? localStorage.getItem("hotline.autoAnswer") === "1" : !!creds.auto_answer;
    const socket = new JsSIP.WebSocketInterface(creds.ws_url);
    ua = new JsSIP.UA({
      sockets: [socket], uri: creds.uri, authorization_user: creds.username, password: creds.password,
      register: true, register_expires: 120, session_timers: false, user_agent: "hotline-console",
      connection_recovery_min_interval: 1, connection_recovery_max_interval: 15,
    });
    // a call survives its SIP socket: the media is peer to peer; the line says so and comes back
    ua.on("connected", () => { if (S.state === "reconnecting") set(session ? callState() : "connecting"); });
    ua.on("disconnected", () => { if (S.seat) set("reconnecting"); });
    ua.on("registered", () => { retried = false; set(callState()); });
    ua.on("unregistered", () => { if (S.seat && !session) set("connecting"); });
    ua.on("registrationFailed", async (e) => {
      // a password rotated by the admin (hotline sip rotate): fetch the new one once and try again
      if (!retried && e.cause === JsSIP.C.causes.AUTHENTICATION_ERROR) {
        retried = true;
        try { creds = await api("/api/seat/phone"); ua.set("password", creds.password); ua.register(); return; } catch (_) { /* shown below */ }
      }
      set("failed", e.cause);
    });
    ua.on("newRTCSession", ({session: s, originator}) => { if (originator === "remote") incoming(s); });
    ua.start();
  }
  function stop(elsewhere) {
    ring(false);
    if (session) { try { session.terminate(); } catch (_) { /* already ending */ } }
    if (ua) { ua.stop(); ua = null; }
    if (mic) { mic.getTracks().forEach((t) => t.stop()); mic = null; }
    session = null; creds = null;
    if (elsewhere) { set("elsewhere"); return; }  // the line stays, saying where the phone went
    S.seat = null;
    bar.hidden = true;
    set("off");
  }

  // ------------------------------------------------------------------ a call
  function incoming(s) {
    if (session) { s.terminate({status_code: 486, reason_phrase: "Busy Here"}); return; }  // one call at a time
    session = s;
    S.invites += 1; S.inviteAt = performance.now(); S.answeredAt = null; S.firstAudioAt = null; S.iceAt = null; S.bridgedAt = null; S.muted = false; S.held = false;
    s.on("peerconnection", ({peerconnection: pc}) => {
      pc.addEventListener("iceconnectionstatechange", () => {
        S.ice = pc.iceConnectionState;
        if (S.ice === "connected" && !S.iceAt) S.iceAt = performance.now();
        if (S.ice === "failed") notice("话机：与交换机的媒体连接失败（ICE），双方听不到声音：请检查网络，或挂断后重新接听", true);
      });
      pc.addEventListener("track", (ev) => {
        const stream = ev.streams[0] || new MediaStream([ev.track]);
        remote.srcObject = stream;
        const spk = $("ph-spk").value;
        if (remote.setSinkId && spk) remote.setSinkId(spk).catch(() => {});
        remote.play().catch(() => {});
        const analyser = remoteAnalyser = ctx().createAnalyser();
        analyser.fftSize = 2048;
        ctx().createMediaStreamSource(stream).connect(analyser);
        // when the far end is first heard, to 10 ms (the note's "answer to two-way audio")
        const since = performance.now();
        const first = setInterval(() => {
          if (rms(analyser) > 0.01) S.firstAudioAt = performance.now();
          if (S.firstAudioAt || remoteAnalyser !== analyser || performance.now() - since > 20000) clearInterval(first);
        }, 10);
      });
    });
    // no STUN/TURN: the 200 OK goes with the first candidate instead of after gathering times out
    s.on("icecandidate", (ev) => ev.ready());
    s.on("accepted", () => {
      S.answeredAt = performance.now(); ring(false); set("talking");
      // pjproject offers no loopback address: on a host with no other interface Asterisk has no ICE
      // candidate to give, and the call would be silent with nothing on screen saying why
      const sdp = s.connection && s.connection.remoteDescription ? s.connection.remoteDescription.sdp : "";
      if (sdp && !/a=candidate/.test(sdp)) notice("话机：交换机没有提供媒体地址（ICE 候选），将听不到声音：交换机主机需要一个非回环网络地址", true);
    });
    s.on("hold", () => { S.held = true; set("held"); });
    s.on("unhold", () => { S.held = false; set("talking"); });
    s.on("muted", () => { S.muted = true; set(S.state); });
    s.on("unmuted", () => { S.muted = false; set(S.state); });
    const over = (e) => {
      ring(false);
      if (session !== s) return;
      S.calls.push({inviteAt: S.inviteAt, answerClickAt: S.answerClickAt, answeredAt: S.answeredAt, iceAt: S.iceAt,
                    bridgedAt: S.bridgedAt, firstAudioAt: S.firstAudioAt, endedAt: performance.now()});
      if (S.calls.length > 50) S.calls.shift();
      session = null; remoteAnalyser = null; S.muted = false; S.held = false;
      set(ua && ua.isRegistered() ? "registered" : ua && ua.isConnected() ? "connecting" : "reconnecting");
      if (e && e.cause && e.originator === "remote" && e.cause !== JsSIP.C.causes.BYE && e.cause !== JsSIP.C.causes.CANCELED) {
        notice(`话机：通话结束（${e.cause}）`);
      }
    };
    s.on("ended", over);
    s.on("failed", over);
    set("ringing");
    ring(true);
    maybeAutoAnswer();
  }
  function callState() {
    return !session ? "registered" : !session.isEstablished() ? "ringing" : S.held ? "held" : "talking";
  }
  function answer() {
    if (!session || session.isEstablished() || S.state !== "ringing") return;
    if (!mic) { notice("没有可用的麦克风，无法接听", true); return; }
    S.answerClickAt = performance.now();
    ctx();
    ring(false);
    session.answer({mediaStream: mic, pcConfig: ICE, rtcOfferConstraints: {offerToReceiveAudio: true}});
  }
  function maybeAutoAnswer() {
    if (!session || S.state !== "ringing") return;
    // the seat's ring of a callback the operator just asked for is answered whatever the setting;
    // a citizen's call only with 自动接听 on, and only once its pop is shown
    if (performance.now() < S.expectUntil || (S.popFor && $("ph-auto").checked)) answer();
  }
  function hold() {
    if (!session || !session.isEstablished()) return;
    if (S.held) session.unhold(); else session.hold();
  }
  function mute() {
    if (!session || !session.isEstablished()) return;
    if (S.muted) session.unmute({audio: true}); else session.mute({audio: true});
  }
  function dtmf(tone) {
    if (session && session.isEstablished()) session.sendDTMF(tone, {transportType: "RFC2833", duration: 120});
  }

  $("ph-answer").onclick = answer;
  $("ph-hold").onclick = hold;
  $("ph-mute").onclick = mute;
  $("ph-auto").onchange = () => { localStorage.setItem("hotline.autoAnswer", $("ph-auto").checked ? "1" : "0"); maybeAutoAnswer(); };
  $("ph-dtmf").addEventListener("click", (ev) => { const b = ev.target.closest("button"); if (b) dtmf(b.dataset.tone); });
  document.addEventListener("keydown", (ev) => {
    if (!S.seat || !ev.altKey) return;
    const k = ev.key.toLowerCase();
    if (k === "a") { ev.preventDefault(); answer(); }
    else if (k === "p") { ev.preventDefault(); hold(); }
    else if (k === "m") { ev.preventDefault(); mute(); }
  });
  window.addEventListener("beforeunload", (ev) => {
    // leaving the page ends the call's audio: the browser asks first while a call is up
    if (session && session.isEstablished()) { ev.preventDefault(); ev.returnValue = ""; return; }
    if (ua) ua.stop();
  });
  // one phone per seat in this browser: a console opened in another tab takes the phone over (the
  // seat's registration holds one contact), this one stops and says where it went
  const TAB = Math.random().toString(36).slice(2);
  const channel = window.BroadcastChannel ? new BroadcastChannel("hotline-phone") : null;
  if (channel) {
    channel.onmessage = ({data}) => {
      if (data.type === "callback") phone.expectCall();
      else if (data.type === "taken" && data.tab !== TAB && data.seat === S.seat && !session) { stop(true); }
    };
  }

  // what the tests read (the levels are the analysers' RMS; peakHz the loudest band of the far end)
  window.__phone = {
    get state() { return S.state; },
    get stats() { return {...S, established: !!session && session.isEstablished()}; },
    peakHz() {
      if (!remoteAnalyser) return 0;
      const spec = new Float32Array(remoteAnalyser.frequencyBinCount);
      remoteAnalyser.getFloatFrequencyData(spec);
      let k = 1;
      for (let i = 2; i < spec.length; i++) if (spec[i] > spec[k]) k = i;
      return Math.round(k * ctx().sampleRate / remoteAnalyser.fftSize);
    },
  };

  const phone = {
    // the console tells the phone which seat it is signed in to (null: none or a desk-phone seat)
    seat(seatNo, browser) {
      if (browser && seatNo && S.seat !== seatNo) { if (S.seat) stop(); start(seatNo); }
      else if ((!browser || !seatNo) && S.seat) stop();
    },
    popShown(callId) { S.popFor = callId; maybeAutoAnswer(); },
    popClosed() { S.popFor = null; },
    // the CTI says the seat is connected to the citizen: Asterisk reads the browser's media from now
    // on (before, it plays the job number to the citizen and the seat's leg is not yet in the bridge)
    bridged() { S.bridgedAt = performance.now(); },
    expectCall() { S.expectUntil = performance.now() + 30000; },
    // the CTI says the call is over: a browser leg still up (its BYE lost with a dropped socket) ends too
    callEnded() { if (session && session.isEstablished()) session.terminate(); },
    inCall() { return !!session; },
    hangup() { if (session) session.terminate(); },
  };
  return phone;
};
