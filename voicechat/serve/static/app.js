// voicechat browser client: microphone -> 16 kHz int16 PCM frames, reply PCM -> speakers, transcript on screen.
// The protocol is in docs/protocol.md. ?token=... passes a server token; ?say=TEXT fills in a typed turn.
// Nothing is sent and the microphone never starts but from the user's own click or key press: a link to
// this page must not be able to speak for the user or listen to the room.
"use strict";

const RATE = 16000;
const FRAME = 512; // samples per frame sent: 32 ms
const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);

let socket = null;
let player = null; // {context, next, sources}
let mic = null; // {context, stream, node, resampler}
let replyLine = null;
let audioBytes = 0;
let ready = false;

function line(kind, who, text) {
  const p = document.createElement("p");
  p.className = kind;
  if (who) { const b = document.createElement("b"); b.textContent = who + ": "; p.append(b); }
  const span = document.createElement("span");
  span.textContent = text;
  p.append(span);
  $("log").append(p);
  $("log").scrollTop = $("log").scrollHeight;
  return span;
}

function setStatus(text, state) { $("status").textContent = text; $("status").dataset.state = state; }

function enable(on) { for (const id of ["mic", "text", "send", "interrupt", "reset"]) $(id).disabled = !on; }

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const token = params.get("token");
  socket = new WebSocket(`${scheme}://${location.host}/ws${token ? "?token=" + encodeURIComponent(token) : ""}`);
  socket.binaryType = "arraybuffer";
  socket.onmessage = (message) => (typeof message.data === "string" ? onEvent(JSON.parse(message.data)) : onAudio(message.data));
  socket.onclose = (event) => {
    enable(false);
    stopMic();
    const hint = ready ? "" : token ? ": is the token right?" : ": if the server needs a token, add ?token=... to this page's address";
    setStatus(`disconnected (${event.code}${event.reason ? " " + event.reason : ""})${hint}`, "error");
  };
}

function onEvent(event) {
  switch (event.type) {
    case "ready":
      ready = true;
      setStatus(`connected: ${event.characters.join(", ")} via ${event.llm}`, "ready");
      enable(true);
      if (params.get("say") && !$("text").value) { $("text").value = params.get("say"); $("text").focus(); }
      break;
    case "listening": line("note", "", "listening"); break;
    case "speech_started": stopPlayback(); break;
    case "transcript_update": $("partial").textContent = event.text; break;
    case "transcript_final": $("partial").textContent = ""; line("user", "you", event.text); break;
    case "turn_start": stopPlayback(); replyLine = null; break;
    case "reply_text":
      if (!replyLine || replyLine.dataset.character !== event.character) {
        replyLine = line("reply", event.character, "");
        replyLine.dataset.character = event.character;
      }
      replyLine.textContent += event.text;
      break;
    case "audio_start": startPlayer(event.sample_rate); break;
    case "audio_complete": if (event.interrupted) stopPlayback(); break;
    case "turn_metrics": {
      const m = event.metrics;
      const first = m.first_audio == null ? "no audio" : `first audio ${(m.first_audio * 1000).toFixed(0)} ms`;
      line("note", "", `${event.interrupted ? "interrupted; " : ""}${event.error ? event.error + "; " : ""}${first}`);
      break;
    }
    case "error": line("error", "error", event.message); break;
    case "reset": $("log").replaceChildren(); line("note", "", "a new conversation begins"); break;
    case "config": line("note", "", `now talking with ${event.characters.join(", ")}`); break;
  }
}

function send(message) { if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message)); }

// One output context, made (and resumed) on the first click or key press where possible: browsers keep
// audio started without a user gesture silent. Reply buffers carry their own rate; the context resamples.
function ensurePlayer() {
  if (!player) player = { context: new AudioContext(), rate: 22050, next: 0, sources: [] };
  player.context.resume().catch(() => {});
  return player;
}

function startPlayer(rate) {
  stopPlayback();
  ensurePlayer().rate = rate;
}

function onAudio(buffer) {
  audioBytes += buffer.byteLength;
  $("audio").textContent = `audio: ${audioBytes} bytes`;
  $("audio").dataset.bytes = String(audioBytes);
  if (!player) ensurePlayer();
  const pcm = new Int16Array(buffer);
  const samples = new Float32Array(pcm.length);
  for (let i = 0; i < pcm.length; i++) samples[i] = pcm[i] / 32768;
  const clip = player.context.createBuffer(1, samples.length, player.rate);
  clip.copyToChannel(samples, 0);
  const source = player.context.createBufferSource();
  source.buffer = clip;
  source.connect(player.context.destination);
  const at = Math.max(player.context.currentTime + 0.05, player.next);
  source.start(at);
  player.next = at + clip.duration;
  player.sources.push(source);
  source.onended = () => { player && (player.sources = player.sources.filter((s) => s !== source)); };
}

function stopPlayback() {
  if (!player) return;
  for (const source of player.sources) { try { source.stop(); } catch (e) { /* already ended */ } }
  player.sources = [];
  player.next = 0;
}

// Box-filtered resampling to 16 kHz (a no-op when the context already runs at 16 kHz), then int16 frames.
function makeResampler(fromRate) {
  const step = fromRate / RATE;
  let carry = new Float32Array(0);
  let position = 0;
  let frame = new Int16Array(FRAME);
  let filled = 0;
  return (input) => {
    const data = new Float32Array(carry.length + input.length);
    data.set(carry); data.set(input, carry.length);
    while (position + step <= data.length) {
      const start = Math.floor(position), end = Math.max(start + 1, Math.floor(position + step));
      let sum = 0;
      for (let i = start; i < end; i++) sum += data[i];
      const value = Math.max(-1, Math.min(1, sum / (end - start)));
      frame[filled++] = value < 0 ? value * 32768 : value * 32767;
      if (filled === FRAME) { if (socket && socket.readyState === WebSocket.OPEN) socket.send(frame.buffer); frame = new Int16Array(FRAME); filled = 0; }
      position += step;
    }
    const used = Math.floor(position);
    carry = data.slice(used);
    position -= used;
  };
}

// A 16 kHz context lets the browser resample the microphone itself (Chrome); where a context at another
// rate than the microphone's cannot take it (Firefox), the page resamples from the device rate instead.
function micInput(stream) {
  let context = null;
  try {
    context = new AudioContext({ sampleRate: RATE });
    return { context, source: context.createMediaStreamSource(stream) };
  } catch (error) {
    if (context) context.close();
    context = new AudioContext();
    return { context, source: context.createMediaStreamSource(stream) };
  }
}

async function startMic() {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true } });
  const { context, source } = micInput(stream);
  const resampler = makeResampler(context.sampleRate);
  let node;
  if (context.audioWorklet) {
    await context.audioWorklet.addModule("/static/mic-worklet.js");
    node = new AudioWorkletNode(context, "mic-tap");
    node.port.onmessage = (message) => resampler(message.data);
  } else {
    node = context.createScriptProcessor(2048, 1, 1);
    node.onaudioprocess = (event) => resampler(event.inputBuffer.getChannelData(0));
  }
  source.connect(node);
  node.connect(context.destination); // silent: the tap outputs nothing, but the graph must be pulled
  mic = { context, stream, node };
  $("mic").textContent = "Stop microphone";
  $("mic").dataset.on = "true";
}

function stopMic() {
  if (!mic) return;
  mic.stream.getTracks().forEach((track) => track.stop());
  mic.context.close();
  mic = null;
  $("mic").textContent = "Start microphone";
  $("mic").dataset.on = "false";
}

// Page actions run only right after the user's own click or key press. isTrusted alone is not enough: a
// script's button.click() submits the form with a trusted submit event.
let gestureAt = -Infinity;
for (const kind of ["pointerdown", "keydown"]) {
  document.addEventListener(kind, (event) => { if (event.isTrusted) gestureAt = performance.now(); }, true);
}
const byUser = (event) => event.isTrusted && performance.now() - gestureAt < 2000;

$("mic").onclick = (event) => {
  if (!byUser(event)) return;
  ensurePlayer();
  if (mic) stopMic(); else startMic().catch((error) => line("error", "error", `microphone: ${error.message}`));
};
$("typed").onsubmit = (event) => {
  event.preventDefault();
  if (!byUser(event)) return;
  const text = $("text").value.trim();
  if (text) { ensurePlayer(); send({ type: "text", text }); $("text").value = ""; }
};
$("interrupt").onclick = (event) => { if (byUser(event)) send({ type: "interrupt" }); };
$("reset").onclick = (event) => { if (byUser(event)) send({ type: "reset" }); };
connect();
