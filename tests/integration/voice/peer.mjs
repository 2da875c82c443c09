// peer.mjs - one call participant: a headless Chromium (its own process, so
// that it has its own fake microphone) running page.js, driven over
// stdin/stdout by calls.py.
//
// Usage: node peer.mjs SETTINGS_JSON, with
//   playwright  the directory where `npm install playwright-core` ran
//   chromium    the browser binary
//   bundle      page.js bundled for the browser (calls.bundle() makes it)
//   wav         the WAV file the fake microphone plays (looped)
// Then one JSON command per line on stdin, {"id", "method", "args"}, where
// method is one of window.vn's (connect, call, answer, listen, stats,
// hangup, sendJmi); each gets one line {"id", "ok", "result"|"error"} on
// stdout. Events from the page are lines {"event", ...}. End of stdin
// closes the browser.
import { createRequire } from "node:module";
import path from "node:path";
import readline from "node:readline";

const settings = JSON.parse(process.argv[2]);
const require = createRequire(path.join(settings.playwright, "package.json"));
const { chromium } = require("playwright-core");

// A page on an https origin (a secure context, for getUserMedia), served
// by the browser context itself: no web server needed.
const ORIGIN = "https://voice-harness.test";

function out(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

const browser = await chromium.launch({
  executablePath: settings.chromium,
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--ignore-certificate-errors",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    `--use-file-for-fake-audio-capture=${settings.wav}`,
    // Candidates on loopback addresses, which coturn relays to in tests.
    "--allow-loopback-in-peer-connection",
    // The page's made-up origin may open WebSockets to the loopback server.
    "--disable-features=LocalNetworkAccessChecks,PrivateNetworkAccessPermissionPrompt",
  ],
});
const context = await browser.newContext({ ignoreHTTPSErrors: true });
await context.grantPermissions(["microphone"], { origin: ORIGIN });
await context.route(`${ORIGIN}/**`, (route) => {
  const url = new URL(route.request().url());
  if (url.pathname === "/page.js") return route.fulfill({ path: settings.bundle, contentType: "text/javascript" });
  return route.fulfill({
    contentType: "text/html",
    body: '<!doctype html><html><head><script src="/page.js"></script></head><body></body></html>',
  });
});
const page = await context.newPage();
await page.exposeFunction("vnEvent", (text) => out(JSON.parse(text)));
page.on("pageerror", (e) => out({ event: "log", text: `page error: ${e.message}` }));
page.on("console", (m) => {
  if (m.type() === "error" || m.type() === "warning") out({ event: "log", text: `console ${m.type()}: ${m.text()}` });
});
await page.goto(`${ORIGIN}/`);
await page.waitForFunction(() => !!window.vn);
out({ event: "ready" });

const lines = readline.createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  const { id, method, args } = JSON.parse(line);
  // Commands run concurrently: a long listen() does not hold up stats().
  page
    .evaluate(([m, a]) => window.vn[m](...a), [method, args || []])
    .then((result) => out({ id, ok: true, result: result === undefined ? null : result }))
    .catch((e) => out({ id, ok: false, error: e.message }));
}
await browser.close();
