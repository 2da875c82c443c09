// hotel_verifier.mjs - the hotel's verifier (examples/hotel_verifier.c) in
// JavaScript, on off-the-shelf SD-JWT libraries from npm: @sd-jwt/sd-jwt-vc,
// @sd-jwt/core and @sd-jwt/crypto-nodejs 0.19.0, with jose. It needs no
// XMPP and nothing of vestnik's: only the issuer's published key and
// status list, over HTTPS (doc/documents.md).
//
// Usage: node hotel_verifier.mjs PRESENTATION_FILE AUDIENCE NONCE [--insecure]
//   AUDIENCE  "xmpp:" and the verifier's bare JID (what it asked as)
//   NONCE     the nonce of its request
//   --insecure  accept a self-signed certificate (a test server only)
// The packages are looked up from VN_SD_JWT_DIR (a directory where
// `npm install @sd-jwt/sd-jwt-vc@0.19.0 @sd-jwt/core@0.19.0
// @sd-jwt/crypto-nodejs@0.19.0 jose` ran), else the current directory.
//
// Prints one JSON line, {"ok": true, "vct", "iss", "claims": {...}} with
// only the disclosed claims, exit 0; or {"ok": false, "error"}, exit 1.
import crypto from "node:crypto";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(process.env.VN_SD_JWT_DIR || process.cwd(), "package.json"));
const { SDJwtVcInstance } = require("@sd-jwt/sd-jwt-vc");
const { digest } = require("@sd-jwt/crypto-nodejs");
const jose = require("jose");

const [file, audience, nonce, ...flags] = process.argv.slice(2);
if (flags.includes("--insecure")) process.env.NODE_TLS_REJECT_UNAUTHORIZED = "0";
const MAX_AGE = 300; // seconds a key binding stays fresh
const RESERVED = new Set(["iss", "vct", "iat", "nbf", "exp", "cnf", "status", "_sd_alg"]);

function fail(error) {
  console.log(JSON.stringify({ ok: false, error }));
  process.exit(1);
}

// An ES256 or EdDSA signature check over a public JWK.
function verifierFor(jwk) {
  const key = crypto.createPublicKey({ key: jwk, format: "jwk" });
  const ed = key.asymmetricKeyType === "ed25519";
  return (data, sig) =>
    crypto.verify(
      ed ? null : "sha256",
      Buffer.from(data),
      ed ? key : { key, dsaEncoding: "ieee-p1363" },
      Buffer.from(sig, "base64url"),
    );
}

async function getText(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.text();
}

// The issuer's key from its SD-JWT VC issuer metadata (/.well-known/jwt-vc-issuer).
async function issuerKey(iss, kid) {
  const url = new URL(iss);
  const suffix = url.pathname === "/" ? "" : url.pathname;
  const meta = JSON.parse(await getText(`${url.origin}/.well-known/jwt-vc-issuer${suffix}`));
  if (meta.issuer !== iss) throw new Error("the metadata names another issuer");
  const key = meta.jwks.keys.find((k) => !kid || k.kid === kid);
  if (!key) throw new Error("no key of the issuer has kid " + kid);
  return key;
}

async function main() {
  if (!file || !audience || !nonce) fail("usage: hotel_verifier.mjs FILE AUDIENCE NONCE");
  const presentation = fs.readFileSync(file, "utf8").trim();
  const [jwt, ...rest] = presentation.split("~");
  let header, unverified;
  try {
    header = jose.decodeProtectedHeader(jwt);
    unverified = jose.decodeJwt(jwt);
  } catch (e) {
    fail("not an SD-JWT: " + e.message);
  }
  const verify = verifierFor(await issuerKey(unverified.iss, header.kid));
  const sdjwt = new SDJwtVcInstance({
    hasher: digest,
    verifier: verify,
    kbVerifier: (data, sig, payload) => verifierFor(payload.cnf.jwk)(data, sig),
    statusVerifier: verify,
    statusListFetcher: getText,
  });
  let result;
  try {
    result = await sdjwt.verify(presentation, { keyBindingNonce: nonce });
  } catch (e) {
    fail(String(e && e.message));
  }
  // What the library leaves to its caller: the audience, the freshness,
  // and that every disclosure presented is one the issuer signed.
  const kb = result.kb && result.kb.payload;
  if (!kb) fail("no key binding");
  if (kb.aud !== audience) fail("the presentation is for " + kb.aud);
  const now = Math.floor(Date.now() / 1000);
  if (kb.iat > now + 30 || kb.iat < now - MAX_AGE) fail("the key binding is not fresh");
  const signed = new Set(unverified._sd || []);
  for (const disclosure of rest.slice(0, -1)) {
    const dg = crypto.createHash("sha256").update(disclosure).digest("base64url");
    if (!signed.has(dg)) fail("a disclosure the issuer did not sign");
  }
  const claims = {};
  for (const [name, value] of Object.entries(result.payload))
    if (!RESERVED.has(name) && name !== "_sd") claims[name] = value;
  console.log(JSON.stringify({ ok: true, vct: result.payload.vct, iss: result.payload.iss, claims }));
}

main().catch((e) => fail(String(e && e.message)));
