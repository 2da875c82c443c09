// page.js - the browser side of the call harness: one call participant, a
// StanzaJS client in a Chromium page. calls.py bundles it with esbuild (into
// a temporary directory, never committed) and peer.mjs loads it; see the
// usage in calls.py. It sets window.vn:
//
//   connect({url, jid, password, resource, relay, types}) -> full JID
//       logs in over WebSocket (SCRAM without -PLUS: a page cannot bind the
//       channel), asks the server for its STUN/TURN services (XEP-0215) and
//       makes them the ICE servers (none if the server has no XEP-0215);
//       relay: only relayed candidates (iceTransportPolicy "relay");
//       types: only services of these types (["turns"]: TURN over TLS).
//   call(to, {jmi}) -> sid
//       with jmi (default): XEP-0353 propose to `to` (a bare JID; a store
//       hint), and on <proceed/> from a full JID a Jingle session-initiate
//       to it; without: session-initiate to `to` (a full JID) at once.
//   answer(mode)  what to do with the next proposals and session-initiates:
//       "accept" (ringing, accept to our bare JID, proceed to the caller,
//       then session-accept), "reject", "ring" (ringing only), "ignore".
//   listen(seconds, freqs) -> {levels: {freq: dB above the floor}, rms}
//       the averaged spectrum of what the remote audio track carries.
//   stats() -> packets received/lost, jitter, candidate types of the pair.
//   hangup() -> ends the Jingle session and sends <finish/>.
//   sendJmi(to, action, id) -> one bare JMI element (for protocol tests).
//   redirect({ip, port}) -> the remote's ICE candidates in the Jingle that
//       arrives from now on (session-accept, transport-info) are replaced by
//       ip:port, a UDP relay of the test's (impairment tests); each original
//       is reported first as {event: "redirected", ip, port}.
// Events (window.vnEvent, exposed by peer.mjs): {event: "jmi", action,
// from, id}, {event: "session", state, sid}, {event: "ice", state},
// {event: "terminated", reason}, {event: "log", text}.
import { createClient, JXT } from "stanza";

const NS_JMI = "urn:xmpp:jingle-message:0";
const NS_RTP = "urn:xmpp:jingle:apps:rtp:1";
const NS_JINGLE = "urn:xmpp:jingle:1";
const JMI_ACTIONS = ["propose", "retract", "accept", "proceed", "reject", "ringing", "finish"];
const REASONS = ["success", "busy", "decline", "cancel", "gone", "general-error", "connectivity-error", "timeout"];

let client = null;
let localStream = null;
let session = null;
let answerMode = "accept";
let expectedSid = null; // the sid of a proposal we answered with proceed
const outgoing = {}; // sid -> {to, resolve}

function emit(event) {
  if (window.vnEvent) window.vnEvent(JSON.stringify(event));
}

function defineJmi(c) {
  c.stanzas.define(
    JMI_ACTIONS.map((name) => ({
      element: name,
      namespace: NS_JMI,
      path: "message.jmi",
      type: name,
      typeField: "action",
      fields:
        name === "propose"
          ? { id: JXT.attribute("id"), media: JXT.childAttribute(NS_RTP, "description", "media") }
          : { id: JXT.attribute("id") },
    })),
  );
  c.stanzas.define({
    element: "reason",
    namespace: NS_JINGLE,
    path: "message.jmi.reason",
    fields: { condition: JXT.childEnum(NS_JINGLE, REASONS), text: JXT.childText(NS_JINGLE, "text") },
  });
}

// XEP-0215 entries as RTCIceServer: Chromium refuses a stun: URL with a
// ?transport= part, which StanzaJS's own discoverICEServers() produces.
function iceServer(s) {
  const host = s.host.includes(":") ? `[${s.host}]` : s.host;
  if (s.type === "stun" || s.type === "stuns") return { urls: `${s.type}:${host}:${s.port}` };
  const url = `${s.type}:${host}:${s.port}${s.transport ? `?transport=${s.transport}` : ""}`;
  return { urls: url, username: s.username, credential: s.password };
}

function sendJmi(to, action, id, extra) {
  const jmi = { action, id, ...(extra || {}) };
  if (action === "propose") jmi.media = "audio";
  if (action === "finish" && !jmi.reason) jmi.reason = { condition: "success" };
  client.sendMessage({ to, type: "chat", jmi, processingHints: { store: true } });
}

async function microphone() {
  if (!localStream) {
    localStream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
      video: false,
    });
  }
  return localStream;
}

// Opus only, on every transceiver of the session.
function opusOnly(pc) {
  const caps = RTCRtpReceiver.getCapabilities("audio");
  const opus = caps.codecs.filter((c) => c.mimeType.toLowerCase() === "audio/opus");
  for (const t of pc.getTransceivers()) {
    if (t.setCodecPreferences && opus.length) t.setCodecPreferences(opus);
  }
}

function watchSession(s) {
  session = s;
  s.pc.addEventListener("iceconnectionstatechange", () => emit({ event: "ice", state: s.pc.iceConnectionState }));
}

// Chromium delivers remote WebRTC audio to WebAudio only while a media
// element plays it.
const playing = new Set();
function play(track) {
  if (playing.has(track.id)) return;
  playing.add(track.id);
  const audio = document.createElement("audio");
  audio.muted = true;
  audio.autoplay = true;
  audio.srcObject = new MediaStream([track]);
  document.body.appendChild(audio);
}

async function startSession(peer, sid) {
  const stream = await microphone();
  const s = client.jingle.createMediaSession(peer, sid);
  watchSession(s);
  for (const track of stream.getAudioTracks()) s.addTrack(track, stream);
  opusOnly(s.pc);
  await s.start({ offerToReceiveAudio: true, offerToReceiveVideo: false });
  emit({ event: "session", state: "initiated", sid: s.sid, peer });
  return s.sid;
}

function onMessage(msg) {
  if (!msg.jmi) return;
  const { action, id } = msg.jmi;
  const reason = msg.jmi.reason || {};
  emit({ event: "jmi", action, id, from: msg.from, reason: reason.condition || null, text: reason.text || null });
  if (action === "proceed" && outgoing[id]) {
    const pending = outgoing[id];
    delete outgoing[id];
    startSession(msg.from, id).then(pending.resolve, pending.reject);
  } else if ((action === "reject" || action === "retract") && outgoing[id]) {
    delete outgoing[id];
  } else if (action === "propose" && msg.from !== client.jid) {
    if (answerMode === "ignore") return;
    if (answerMode === "reject") {
      sendJmi(msg.from, "reject", id);
      return;
    }
    sendJmi(msg.from, "ringing", id);
    if (answerMode === "accept") {
      expectedSid = id;
      sendJmi(client.jid.split("/")[0], "accept", id);
      sendJmi(msg.from, "proceed", id);
    }
  }
}

async function onIncoming(s) {
  if (answerMode !== "accept" || (expectedSid && s.sid !== expectedSid)) {
    s.decline();
    return;
  }
  watchSession(s);
  const stream = await microphone();
  for (const track of stream.getAudioTracks()) s.addTrack(track, stream);
  opusOnly(s.pc);
  await s.accept();
  emit({ event: "session", state: "accepted", sid: s.sid, peer: s.peerID });
}

window.vn = {
  async connect({ url, jid, password, resource, relay, types }) {
    client = createClient({
      jid,
      password,
      resource: resource || "browser",
      transports: { websocket: url, bosh: false },
      jingle: { iceServers: [], iceTransportPolicy: relay ? "relay" : "all", trickleIce: true },
    });
    defineJmi(client);
    client.sasl.disable("SCRAM-SHA-1-PLUS");
    client.sasl.disable("SCRAM-SHA-256-PLUS");
    client.on("message", onMessage);
    client.on("jingle:incoming", (s) => onIncoming(s).catch((e) => emit({ event: "log", text: `accept: ${e}` })));
    client.on("jingle:terminated", (s, reason) =>
      emit({ event: "terminated", sid: s.sid, reason: reason ? reason.condition : null }),
    );
    const bound = new Promise((resolve, reject) => {
      client.once("session:started", resolve);
      client.once("auth:failed", () => reject(new Error("authentication failed")));
      client.once("disconnected", () => reject(new Error("disconnected before the session started")));
    });
    client.connect();
    await bound;
    client.sendPresence();
    // No XEP-0215 on the server (an error answer): no ICE servers, which a
    // call to a bridge with public candidates does not need.
    const domain = jid.split("@")[1];
    const services = await client.getServices(domain).catch((e) => {
      emit({ event: "log", text: `no external services: ${JSON.stringify(e.error || e)}` });
      return { services: [] };
    });
    const servers = (services.services || [])
      .filter((s) => s.host && s.port && (!types || types.includes(s.type)))
      .map(iceServer);
    if (relay && !servers.some((s) => s.username)) throw new Error("relay-only ICE but no TURN server");
    client.jingle.iceServers = servers;
    emit({ event: "log", text: `ice servers: ${JSON.stringify(servers.map((s) => s.urls))}` });
    return { jid: client.jid, iceServers: servers.length };
  },

  answer(mode) {
    answerMode = mode;
  },

  async call(to, opts = {}) {
    if (opts.jmi === false) return startSession(to, undefined);
    const sid = `c${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
    const started = new Promise((resolve, reject) => {
      outgoing[sid] = { to, resolve, reject };
    });
    sendJmi(to, "propose", sid);
    started.catch((e) => emit({ event: "log", text: `call: ${e}` }));
    return sid;
  },

  sendJmi(to, action, id) {
    sendJmi(to, action, id);
  },

  async listen(seconds, freqs) {
    if (!session) throw new Error("no session");
    const receiver = session.pc.getReceivers().find((r) => r.track && r.track.kind === "audio");
    if (!receiver) throw new Error("no remote audio track");
    play(receiver.track);
    const ctx = new AudioContext();
    await ctx.resume();
    const source = ctx.createMediaStreamSource(new MediaStream([receiver.track]));
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 16384;
    analyser.smoothingTimeConstant = 0;
    source.connect(analyser);
    const bins = new Float32Array(analyser.frequencyBinCount);
    const power = new Float64Array(analyser.frequencyBinCount);
    const wave = new Float32Array(analyser.fftSize);
    let frames = 0;
    let energy = 0;
    const end = performance.now() + seconds * 1000;
    while (performance.now() < end) {
      await new Promise((r) => setTimeout(r, 100));
      analyser.getFloatFrequencyData(bins);
      for (let i = 0; i < bins.length; i++) power[i] += Math.pow(10, bins[i] / 10);
      analyser.getFloatTimeDomainData(wave);
      let sum = 0;
      for (const v of wave) sum += v * v;
      energy += sum / wave.length;
      frames++;
    }
    const hz = ctx.sampleRate / analyser.fftSize;
    const db = (i) => 10 * Math.log10(power[i] / frames + 1e-30);
    // The floor: the median of 100 Hz - 4 kHz.
    const band = [];
    for (let i = Math.ceil(100 / hz); i < Math.floor(4000 / hz); i++) band.push(db(i));
    band.sort((a, b) => a - b);
    const floor = band[Math.floor(band.length / 2)];
    const levels = {};
    for (const f of freqs) {
      const c = Math.round(f / hz);
      let best = -Infinity;
      for (let i = Math.max(0, c - 3); i <= c + 3; i++) best = Math.max(best, db(i));
      levels[f] = Math.round((best - floor) * 10) / 10;
    }
    source.disconnect();
    await ctx.close();
    return { levels, rms: Math.sqrt(energy / Math.max(frames, 1)), floor };
  },

  async stats() {
    if (!session) throw new Error("no session");
    const report = await session.pc.getStats();
    const out = { packetsReceived: 0, packetsLost: 0, jitter: null, packetsSent: 0 };
    const byId = {};
    report.forEach((s) => {
      byId[s.id] = s;
    });
    report.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "audio") {
        out.packetsReceived += s.packetsReceived || 0;
        out.packetsLost += s.packetsLost || 0;
        out.jitter = s.jitter;
        out.concealedSamples = s.concealedSamples;
        out.codec = byId[s.codecId] ? byId[s.codecId].mimeType : null;
      }
      if (s.type === "outbound-rtp" && s.kind === "audio") out.packetsSent += s.packetsSent || 0;
      if (s.type === "transport" && s.selectedCandidatePairId) {
        const pair = byId[s.selectedCandidatePairId];
        if (pair) {
          out.localCandidate = byId[pair.localCandidateId] ? byId[pair.localCandidateId].candidateType : null;
          out.remoteCandidate = byId[pair.remoteCandidateId] ? byId[pair.remoteCandidateId].candidateType : null;
          out.relayProtocol = byId[pair.localCandidateId] ? byId[pair.localCandidateId].relayProtocol : null;
        }
      }
    });
    return out;
  },

  redirect({ ip, port }) {
    const process = client.jingle.process.bind(client.jingle);
    client.jingle.process = (req) => {
      for (const content of (req.jingle && req.jingle.contents) || []) {
        for (const c of (content.transport && content.transport.candidates) || []) {
          emit({ event: "redirected", ip: c.ip, port: c.port });
          c.ip = ip;
          c.port = port;
        }
      }
      return process(req);
    };
  },

  hangup() {
    if (!session) return;
    const peer = session.peerID;
    const sid = session.sid;
    session.end("success");
    sendJmi(peer, "finish", sid);
    session = null;
  },
};
