// xmpp_js_client.mjs - a real web client library, @xmpp/client (xmpp.js),
// logging in over WebSocket; used by test_web_transports.py when
// VN_XMPP_JS_DIR names a directory where `npm install @xmpp/client` ran.
//
// Usage: node --experimental-websocket xmpp_js_client.mjs URL DOMAIN USER
//        PASSWORD PEER. Prints one JSON line per event: {"online": jid},
// {"message": {from, body}}; sends "hello from xmpp.js" to PEER once
// online, and exits 0 after the first message it receives.
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(process.env.VN_XMPP_JS_DIR, "package.json"));
const { client, xml } = require("@xmpp/client");

const [service, domain, username, password, peer] = process.argv.slice(2);
const xmpp = client({ service, domain, username, password, resource: "xmppjs" });

xmpp.on("error", (err) => {
  console.error("xmpp.js error:", err.message);
  process.exit(1);
});
xmpp.on("online", async (address) => {
  console.log(JSON.stringify({ online: address.toString() }));
  await xmpp.send(
    xml("message", { to: peer, type: "chat" }, xml("body", {}, "hello from xmpp.js")),
  );
});
xmpp.on("stanza", async (stanza) => {
  if (!stanza.is("message") || !stanza.getChildText("body")) return;
  console.log(
    JSON.stringify({ message: { from: stanza.attrs.from, body: stanza.getChildText("body") } }),
  );
  await xmpp.stop();
  process.exit(0);
});
xmpp.start().catch((err) => {
  console.error("xmpp.js start:", err.message);
  process.exit(1);
});
