// webclient_browser.mjs - a user's first session in the web client that
// vestnikd serves (modules/webclient), in Debian's headless Chromium driven
// by playwright-core; run by test_webclient.py.
//
// Usage: node webclient_browser.mjs SETTINGS_JSON, with
//   url        the page, e.g. https://localhost:PORT/
//   jid, password, peer   the user and a contact (a slixmpp client that
//              accepts subscriptions and answers every chat message with
//              "re: <body>")
//   room       a room JID to join; image: a PNG file to upload
//   transport  "websocket" or "bosh": the one the page must use
//   shots      a directory for screenshots of failed steps
//   playwright the directory where `npm install playwright-core` ran
//   chromium   the browser binary
// Prints one JSON line per step, {"step", "ok", "error", "screenshot"},
// in the order of STEPS; a failed step does not stop the later ones.
import { createRequire } from "node:module";
import path from "node:path";

const settings = JSON.parse(process.argv[2]);
const require = createRequire(path.join(settings.playwright, "package.json"));
const { chromium } = require("playwright-core");

const origin = new URL(settings.url).origin;
const STEP_MS = 30000;
const uid = Date.now().toString(36);
const first_text = `hello from the browser ${uid}`;

function report(step, ok, error, screenshot) {
  console.log(JSON.stringify({ step, ok, error: error || null, screenshot: screenshot || null }));
}

// What a page asks for, and what the page's CSP refused.
function watch(page, seen) {
  page.on("request", (r) => seen.requests.push(r.url()));
  page.on("websocket", (ws) => seen.websockets.push(ws.url()));
  page.on("pageerror", (e) => seen.errors.push(e.message));
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy/.test(m.text())) seen.csp.push(m.text());
  });
}

async function newSession(browser, seen) {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, locale: "en-US" });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  watch(page, seen);
  return { context, page };
}

async function login(page) {
  await page.goto(settings.url);
  await page.locator("converse-login-form input[name=jid]").fill(settings.jid);
  await page.locator("converse-login-form input[name=password]").fill(settings.password);
  await page.locator("converse-login-form [type=submit]").click();
  await page.locator("converse-user-profile .username").waitFor();
}

async function openChat(page, jid) {
  const item = page.locator(`converse-roster a.open-chat[data-jid="${jid}"]`);
  await item.waitFor();
  await item.click();
  const chat = page.locator(`converse-chat[jid="${jid}"]`);
  await chat.locator("textarea.chat-textarea").waitFor();
  return chat;
}

async function send(box, text) {
  const area = box.locator("textarea.chat-textarea");
  await area.fill(text);
  await area.press("Enter");
}

function message(box, text) {
  return box.locator(".chat-msg__text", { hasText: text }).first();
}

const steps = [];
function step(name, fn) {
  steps.push({ name, fn });
}

let main, second;
const seen = { requests: [], websockets: [], errors: [], csp: [] };

step("login page shown", async () => {
  main = await newSession(browser, seen);
  await main.page.goto(settings.url);
  await main.page.locator("converse-login-form input[name=jid]").waitFor();
  const title = await main.page.title();
  if (!title) throw new Error("the page has no title");
});

step("log in through the form", async () => {
  await login(main.page);
});

step("add a contact", async () => {
  const page = main.page;
  await page.locator("converse-roster .dropdown--contacts button.dropdown-toggle").click();
  await page.locator("converse-roster a.add-contact").click();
  const modal = page.locator("converse-add-contact-modal");
  await modal.locator("input[name=jid]").fill(settings.peer);
  await modal.locator("input[name=name]").fill("Peer");
  await modal.locator("[type=submit]").click();
  // The peer accepts: the contact becomes a full subscription.
  await page.locator(`converse-roster a.open-chat[data-jid="${settings.peer}"]`).waitFor();
});

step("chat with the contact", async () => {
  const chat = await openChat(main.page, settings.peer);
  await send(chat, first_text);
  await message(chat, `re: ${first_text}`).waitFor();
});

step("history after a reload", async () => {
  const page = main.page;
  await page.reload();
  const chat = page.locator(`converse-chat[jid="${settings.peer}"]`);
  if (!(await chat.count())) {
    await openChat(page, settings.peer);
  }
  await message(chat, first_text).waitFor();
  await message(chat, `re: ${first_text}`).waitFor();
});

step("join a room", async () => {
  const page = main.page;
  await page.locator("converse-rooms-list button.dropdown-toggle").click();
  await page.locator("converse-rooms-list a.show-add-muc-modal").click();
  const modal = page.locator("converse-add-muc-modal");
  await modal.locator("input[name=chatroom]").fill(settings.room);
  const nick = modal.locator("input[name=nickname]");
  if (await nick.count()) await nick.fill("browser");
  await modal.locator("input[type=submit]").click();
  const room = page.locator(`converse-muc[jid="${settings.room}"]`);
  await room.locator("textarea.chat-textarea").waitFor();
  await send(room, `room message ${uid}`);
  await message(room, `room message ${uid}`).waitFor();
});

step("upload a picture", async () => {
  const chat = await openChat(main.page, settings.peer);
  await chat.locator("input.fileupload").setInputFiles(settings.image);
  const img = chat.locator(".chat-msg__media img, .chat-msg__content img").first();
  await img.waitFor();
  await main.page.waitForFunction((el) => el.complete && el.naturalWidth > 0, await img.elementHandle());
  const src = await img.getAttribute("src");
  if (!src.startsWith(origin + "/upload/")) throw new Error(`image from ${src}`);
});

step("a second browser sees the archived chat", async () => {
  second = await newSession(browser, seen);
  await login(second.page);
  const chat = await openChat(second.page, settings.peer);
  await message(chat, first_text).waitFor(); // a new profile: from the archive (MAM)
});

step("the second browser sees the room bookmark", async () => {
  // Converse bookmarks a room it enters, with autojoin: the room is listed
  // (and joined) by itself.
  await second.page.locator(`converse-rooms-list a.open-room[data-room-jid="${settings.room}"]`).waitFor();
});

step(`the ${settings.transport} transport was used`, async () => {
  const ws = seen.websockets.filter((u) => new URL(u).pathname.endsWith("websocket"));
  const bosh = seen.requests.filter((u) => new URL(u).pathname === "/http-bind");
  if (settings.transport === "websocket" && (!ws.length || bosh.length))
    throw new Error(`websockets ${ws.length}, BOSH requests ${bosh.length}`);
  if (settings.transport === "bosh" && (ws.length || !bosh.length))
    throw new Error(`websockets ${ws.length}, BOSH requests ${bosh.length}`);
});

step("every request went to the server's own origin", async () => {
  const foreign = [...seen.requests, ...seen.websockets].filter((u) => {
    const url = new URL(u);
    if (url.protocol === "data:" || url.protocol === "blob:") return false;
    const own = url.origin.replace(/^wss:/, "https:").replace(/^ws:/, "http:");
    return own !== origin;
  });
  if (foreign.length) throw new Error(`requests elsewhere: ${foreign.join(" ")}`);
  if (seen.csp.length) throw new Error(`blocked by the CSP: ${seen.csp.join(" | ")}`);
  if (!seen.requests.length) throw new Error("no request seen at all");
});

const browser = await chromium.launch({
  executablePath: settings.chromium,
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--ignore-certificate-errors",
  ],
});
let n = 0;
for (const { name, fn } of steps) {
  n += 1;
  try {
    await fn();
    report(name, true);
  } catch (e) {
    let shot = null;
    for (const session of [second, main]) {
      if (!session) continue;
      shot = path.join(settings.shots, `${settings.transport}-step${n}-${second === session ? "second" : "main"}.png`);
      await session.page.screenshot({ path: shot, fullPage: true }).catch(() => {});
      break;
    }
    report(name, false, `${e.message}${seen.errors.length ? `; page errors: ${seen.errors.join(" | ")}` : ""}`, shot);
  }
}
await browser.close();
