// agentsession playground: microphone -> WebRTC -> agent; agent audio and events back.
// No build step. window.playground exposes what happened (for people in the console, and for tests).
"use strict";

const $ = (id) => document.getElementById(id);
const query = new URLSearchParams(location.search);
const token = query.get("token");
// how long the browser may take to reach the agent (ICE) before the page gives up; ?connect_timeout=S
const CONNECT_TIMEOUT_MS = 1000 * (Number(query.get("connect_timeout")) || 15);
const playground = (window.playground = {
  connected: false, id: null, events: [], agentStates: [], userStates: [], transcripts: [], tools: [],
  metrics: [], errors: [], notices: [], conversation: 0, timings: {}, stats: { bytesReceived: 0, bytesSent: 0, outputPeak: 0, micPeak: 0 },
});
let pc = null, channel = null, mic = null, audioCtx = null, statsTimer = null, meterTimer = null;
let connectTimer = null, connecting = false;
let agentLine = null, userLine = null, turnAgentLines = [], lastAgentLine = null, lastRow = null;

function authHeaders() {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

function setConnection(text, on) {
  $("connection").textContent = text;
  $("connection").className = `badge ${on ? "on" : "off"}`;
}

function setControls(state) {  // "idle", "connecting" or "connected"
  $("connect").disabled = state !== "idle";
  $("disconnect").disabled = state === "idle";  // also cancels a connection that does not come up
  for (const id of ["interrupt", "text", "send"]) $(id).disabled = state !== "connected";
}

function setBadge(id, state) {
  $(id).textContent = state || "-";
  $(id).className = state ? `badge ${state}` : "badge";
}

let noticeTimer = null;

function showError(message) {  // the session cannot go on: stays until the next Connect
  playground.errors.push(message);
  $("errors").textContent = message;
  clearTimeout(noticeTimer);
  $("notice").textContent = message;
  $("notice").className = "notice";
  $("notice").hidden = false;
}

// something went wrong and the session recovered (an STT fallback, a reconnect): said for a while, then gone
const NOTICE_MS = 1000 * (Number(query.get("notice_seconds")) || 8);
function showNotice(message) {
  playground.notices.push(message);
  if (!$("notice").hidden && $("notice").className === "notice") return;  // an error stays in front
  clearTimeout(noticeTimer);
  $("notice").textContent = message;
  $("notice").className = "notice transient";
  $("notice").hidden = false;
  noticeTimer = setTimeout(() => { $("notice").hidden = true; }, NOTICE_MS);
}

// a new conversation after an earlier one on this page: a separator in the transcript, the tool calls and the
// latency table (turn numbers start again at 1 in each conversation)
function startConversation() {
  playground.conversation += 1;
  if (playground.conversation === 1) return;
  const label = `conversation ${playground.conversation} (${new Date().toLocaleTimeString()})`;
  for (const id of ["transcript", "tools"]) {
    const li = document.createElement("li");
    li.className = "separator";
    li.textContent = label;
    $(id).appendChild(li);
  }
  const row = document.createElement("tr");
  row.className = "separator";
  const cell = document.createElement("td");
  cell.colSpan = 99;
  cell.textContent = label;
  row.appendChild(cell);
  $("metrics").querySelector("tbody").appendChild(row);
}

function line(cls, text) {
  const li = document.createElement("li");
  li.className = cls;
  li.textContent = text;
  $("transcript").appendChild(li);
  li.scrollIntoView({ block: "nearest" });
  return li;
}

// an interrupted answer: its line in the transcript and its row in the latency table. Its text is often complete
// (models send the text before the audio has played), so the line may be final already
function markInterrupted(row) {
  const running = agentLine || turnAgentLines[turnAgentLines.length - 1];
  const cut = running || lastAgentLine;
  if (cut) {
    cut.classList.remove("partial");
    cut.classList.add("interrupted");
  }
  agentLine = null;
  if (row === undefined) row = running ? null : lastRow;  // a turn still running gets its row later
  if (row && !row.classList.contains("interrupted")) {
    row.classList.add("interrupted");
    const trigger = row.children[1];
    if (!trigger.textContent.includes("cut at")) trigger.textContent += " (interrupted)";  // the metrics say where
  }
}

const ms = (s) => (s === null || s === undefined ? "-" : `${Math.round(s * 1000)} ms`);

// Latency per turn (ms): a stage's column appears once a turn measured it; '-' is "not measured". The columns
// are named as everywhere else (core's STAGE_LABELS; a test holds index.html to them).
// ttfa is shown only while no stage (stt, ttft, llm, tts, model) explains it.
const LATENCY_COLUMNS = ["eou_delay", "stt_latency", "llm_ttft", "llm_duration", "tts_ttfb", "realtime_ttfa", "ttfa",
                         "e2e"];
const STAGES = ["stt_latency", "llm_ttft", "llm_duration", "tts_ttfb", "realtime_ttfa"];
const measured = new Set();
const num = (s) => (s === null || s === undefined ? "-" : String(Math.round(s * 1000)));
const secs = (s) => (s === null || s === undefined ? "-" : s.toFixed(1));

function latencyCells(msg) {
  let trigger = msg.trigger;
  if (msg.interrupted) trigger += msg.interrupted_at == null ? " (cut)" : ` (cut at ${secs(msg.interrupted_at)} s)`;
  const heard = msg.audio_played ?? msg.audio_duration;
  const cells = { turn: String(msg.turn), trigger,
                  heard: msg.audio_generated == null ? secs(heard) : `${secs(heard)}/${secs(msg.audio_generated)}` };
  for (const key of LATENCY_COLUMNS) cells[key] = num(msg[key]);
  return cells;
}

function latencyDetails(msg) {
  const parts = [];
  if (msg.end_of_turn_reason) parts.push(`turn ended by ${msg.end_of_turn_reason}`);
  for (const t of msg.tools || []) parts.push(`tool ${t.name} ${num(t.duration)} ms${t.is_error ? " (error)" : ""}`);
  if (msg.input_tokens != null || msg.output_tokens != null)
    parts.push(`tokens ${msg.input_tokens ?? "-"} in, ${msg.output_tokens ?? "-"} out`);
  return parts.join("; ");
}

function addLatencyRow(msg) {
  for (const key of LATENCY_COLUMNS) if (msg[key] !== null && msg[key] !== undefined) measured.add(key);
  const staged = STAGES.some((k) => measured.has(k));
  const visible = (key) => measured.has(key) && !(key === "ttfa" && staged);
  const table = $("metrics");
  const cells = latencyCells(msg);
  const row = document.createElement("tr");
  row.title = latencyDetails(msg);
  for (const th of table.querySelectorAll("thead th")) {
    const key = th.dataset.key;
    const td = document.createElement("td");
    td.textContent = cells[key];
    td.dataset.key = key;
    row.appendChild(td);
  }
  table.querySelector("tbody").appendChild(row);
  for (const cell of table.querySelectorAll("th, td")) {
    if (LATENCY_COLUMNS.includes(cell.dataset.key)) cell.hidden = !visible(cell.dataset.key);
  }
  return row;
}

function onMessage(raw) {
  let msg;
  try { msg = JSON.parse(raw); } catch { return; }
  playground.events.push(msg);
  switch (msg.type) {
    case "agent_state_changed":
      playground.agentStates.push(msg.state);
      setBadge("agent-state", msg.state);
      break;
    case "user_state_changed":
      playground.userStates.push(msg.state);
      setBadge("user-state", msg.state);
      break;
    case "user_transcript":
      if (!userLine) userLine = line("user partial", "");
      userLine.textContent = msg.text;
      if (msg.final) {
        userLine.classList.remove("partial");
        playground.transcripts.push({ role: "user", text: msg.text });
        userLine = null;
      }
      break;
    case "agent_transcript":
      if (!agentLine) { agentLine = line("agent partial", ""); turnAgentLines.push(agentLine); }
      agentLine.textContent = msg.final ? msg.text : agentLine.textContent + msg.text;
      if (msg.final) {
        agentLine.classList.remove("partial");
        playground.transcripts.push({ role: "agent", text: msg.text });
        agentLine = null;
      }
      break;
    case "function_tool_called": {
      playground.tools.push(msg);
      const li = document.createElement("li");
      const code = document.createElement("code");
      code.textContent = `${msg.name}(${msg.arguments})`;
      li.append(code, ` → ${msg.result}${msg.is_error ? " (error)" : ""} in ${ms(msg.duration)}`);
      $("tools").appendChild(li);
      break;
    }
    case "metrics_collected": {
      playground.metrics.push(msg);
      const row = addLatencyRow(msg);
      if (msg.interrupted) markInterrupted(row);
      lastRow = row;
      lastAgentLine = agentLine || turnAgentLines[turnAgentLines.length - 1] || lastAgentLine;
      turnAgentLines = [];
      break;
    }
    case "interrupted":  // the agent's audio was cut: the answer being heard, even if its turn already ended
      playground.interruptions = (playground.interruptions || 0) + 1;
      markInterrupted();
      break;
    case "error":
      if (msg.recoverable === false) showError(`the agent failed: ${msg.message}`);
      else showNotice(`the agent recovered from a problem: ${msg.message}`);
      break;
    case "closed":
      if (pc) hangUp(`session closed: ${msg.reason}`);  // not after the user hung up: their reason stands
      break;
  }
}

function send(message) {
  if (channel && channel.readyState === "open") channel.send(JSON.stringify(message));
}

function meter(stream, target, key) {
  const source = audioCtx.createMediaStreamSource(stream);
  const analyser = audioCtx.createAnalyser();
  analyser.fftSize = 1024;
  source.connect(analyser);
  const buf = new Float32Array(analyser.fftSize);
  return () => {
    analyser.getFloatTimeDomainData(buf);
    let peak = 0;
    for (const v of buf) peak = Math.max(peak, Math.abs(v));
    $(target).value = peak;
    playground.stats[key] = Math.max(playground.stats[key], peak);
  };
}

async function pollStats() {
  if (!pc) return;
  const report = await pc.getStats();

  report.forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "audio") playground.stats.bytesReceived = s.bytesReceived;
    if (s.type === "outbound-rtp" && s.kind === "audio") playground.stats.bytesSent = s.bytesSent;
  });
  const st = playground.stats;
  $("stats").textContent = `sent ${Math.round(st.bytesSent / 1024)} KiB, received ${Math.round(st.bytesReceived / 1024)} KiB`;
}

function waitForIce(peer, timeoutMs) {
  if (peer.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { peer.removeEventListener("icegatheringstatechange", check); resolve(); };
    const check = () => { if (peer.iceGatheringState === "complete") done(); };
    peer.addEventListener("icegatheringstatechange", check);
    setTimeout(done, timeoutMs);
  });
}

async function connect() {
  connecting = true;
  setControls("connecting");
  clearTimeout(noticeTimer);
  $("notice").hidden = true;
  $("errors").textContent = "";  // an earlier conversation's error is not this one's
  startConversation();
  setConnection("connecting…", false);
  const t0 = performance.now();
  const mark = (name) => { playground.timings[name] = Math.round(performance.now() - t0); };
  try {
    mic = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
    mark("microphone");
    audioCtx = new AudioContext();
    pc = new RTCPeerConnection({ iceServers: [] });
    for (const track of mic.getAudioTracks()) pc.addTrack(track, mic);
    channel = pc.createDataChannel("agentsession");
    channel.onmessage = (e) => onMessage(e.data);
    channel.onclose = () => hangUp("the agent closed the connection");
    const meters = [meter(mic, "mic-level", "micPeak")];
    pc.ontrack = (e) => {
      const stream = e.streams[0] || new MediaStream([e.track]);
      $("agent-audio").srcObject = stream;
      $("agent-audio").play().catch(() => {});
      meters.push(meter(stream, "agent-level", "outputPeak"));
    };
    const peer = pc;
    peer.onconnectionstatechange = () => {
      if (peer !== pc) return;
      const state = peer.connectionState;
      if (state === "connected") {
        mark("connected");
        clearTimeout(connectTimer);
        connecting = false;
        playground.connected = true;
        setConnection("connected", true);
        setControls("connected");
      }
      if (state === "failed" || state === "closed") {
        if (connecting) showError(`could not connect: no network path to the agent (ICE ${state}); a firewall or VPN?`);
        hangUp(`connection ${state}`);
      }
    };
    connectTimer = setTimeout(() => {
      if (peer !== pc || !connecting) return;
      showError(`could not connect: the agent was not reachable within ${CONNECT_TIMEOUT_MS / 1000} s ` +
                `(ICE ${peer.iceConnectionState}); a firewall or VPN?`);
      hangUp("not connected");
    }, CONNECT_TIMEOUT_MS);
    await pc.setLocalDescription(await pc.createOffer());
    mark("offer");
    await waitForIce(pc, 3000);
    mark("gathered");
    const response = await fetch("offer", {
      method: "POST",
      headers: { "Content-Type": "application/json", ...authHeaders() },
      body: JSON.stringify({ type: "offer", sdp: pc.localDescription.sdp }),
    });
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
    mark("answered");
    playground.id = answer.id;
    await pc.setRemoteDescription({ type: answer.type, sdp: answer.sdp });
    statsTimer = setInterval(pollStats, 500);
    meterTimer = setInterval(() => meters.forEach((m) => m()), 50);
  } catch (err) {
    showError(`could not connect: ${err.message || err}`);
    hangUp("not connected");
  }
}

function hangUp(reason) {
  // whatever state the page was in (connecting, connected, a failed getUserMedia): back to usable
  clearInterval(statsTimer);
  clearInterval(meterTimer);
  clearTimeout(connectTimer);
  connecting = false;
  const peer = pc;
  pc = null;
  if (peer) {
    send({ type: "disconnect" });
    if (channel) channel.onclose = channel.onmessage = null;
    peer.close();
  }
  if (mic) mic.getTracks().forEach((t) => t.stop());
  if (audioCtx) audioCtx.close();
  channel = mic = audioCtx = null;
  agentLine = userLine = lastAgentLine = lastRow = null;
  turnAgentLines = [];
  playground.connected = false;
  setControls("idle");
  setBadge("user-state", null);
  setBadge("agent-state", null);
  $("mic-level").value = 0;
  $("agent-level").value = 0;
  setConnection(reason, false);
}

$("connect").addEventListener("click", connect);
$("interrupt").addEventListener("click", () => send({ type: "interrupt" }));
$("disconnect").addEventListener("click", () => hangUp(connecting ? "connection cancelled" : "disconnected"));
$("text-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("text").value.trim();
  if (!text) return;
  send({ type: "text", text });
  $("text").value = "";
});
window.addEventListener("pagehide", () => {
  if (playground.id) navigator.sendBeacon(`sessions/${playground.id}/close${token ? `?token=${encodeURIComponent(token)}` : ""}`);
  send({ type: "disconnect" });
});
