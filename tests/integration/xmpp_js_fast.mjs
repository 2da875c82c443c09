// xmpp_js_fast.mjs - a real client library, @xmpp/client (xmpp.js 0.14),
// logging in with SASL2 + Bind 2, then reconnecting with the FAST token it
// got; used by test_sasl2.py when VN_XMPP_JS_DIR names a directory where
// `npm install @xmpp/client` ran.
//
// Usage: node --experimental-websocket xmpp_js_fast.mjs SERVICE DOMAIN USER
//        PASSWORD. Prints one JSON line per login: {"login": n, "jid",
// "mechanism", "sent": [top-level elements the client sent from the
// stream's features until it was online], "token": bool (it holds a FAST
// token)}, then exits 0.
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(process.env.VN_XMPP_JS_DIR, "package.json"));
const { client } = require("@xmpp/client");

const [service, domain, username, password] = process.argv.slice(2);
const xmpp = client({ service, domain, username, password, resource: "fastjs" });
xmpp.reconnect.stop(); // this script reconnects itself

let sent = [];
let mechanism = null;
let counting = false;
xmpp.on("element", (el) => {
  if (el.is("features", "http://etherx.jabber.org/streams") && !mechanism) counting = true;
});
xmpp.on("send", (el) => {
  if (!counting) return;
  sent.push(el.name);
  if (el.name === "authenticate") mechanism = el.attrs.mechanism;
});
xmpp.on("error", (err) => {
  console.error("xmpp.js error:", err.message);
  process.exit(1);
});

async function login(n) {
  sent = [];
  mechanism = null;
  counting = false;
  const online = new Promise((resolve) => xmpp.once("online", resolve));
  await xmpp.start();
  const jid = await online;
  counting = false;
  const token = await xmpp.fast.fetch();
  console.log(JSON.stringify({ login: n, jid: jid.toString(), mechanism, sent, token: !!token }));
}

try {
  await login(1);
  await xmpp.stop();
  await login(2);
  await xmpp.stop();
  process.exit(0);
} catch (err) {
  console.error("xmpp.js:", err.message);
  process.exit(1);
}
