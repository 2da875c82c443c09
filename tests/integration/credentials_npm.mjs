// credentials_npm.mjs - the independent SD-JWT implementation for
// test_credentials_interop.py: npm @sd-jwt/sd-jwt-vc, @sd-jwt/core and
// @sd-jwt/crypto-nodejs 0.19.0 with jose, from VN_SD_JWT_DIR (where
// `npm install` of those ran).
//
// Usage: node credentials_npm.mjs OP < request.json; one JSON answer on
// stdout.
//   keygen  {alg}                                   -> {private_pem, jwk}
//   issue   {issuer_pem, alg, kid, payload, frame}  -> {sdjwt}
//   present {sdjwt, frame, holder_pem, alg, aud, nonce, iat} -> {presentation}
//   bind    {body, holder_pem, alg, aud, nonce, iat} -> {presentation}
//           (body "<jwt>~<disclosures>~" as given, with a KB-JWT made by
//           jose: what a dishonest holder does after altering disclosures)
//   statuslist {jwt, jwk, uri, idx} -> {ok, error, bits, status}: jose checks the
//           signature, @sd-jwt/jwt-status-list reads entry idx
//   verify  {presentation, issuer_jwk, aud, nonce, now, status_lists: {uri: jwt}}
//           -> {npm: {ok, error, payload}, independent: {ok, error, claims}}
//
// "npm" is @sd-jwt's own verify(). It is not a complete verifier (it takes
// a disclosure whose digest the issuer never signed once the KB-JWT is
// signed again, and checks neither aud nor the KB-JWT's iat), so "independent"
// is a second verification written here on jose and node:crypto alone:
// the issuer signature, every disclosure's digest reachable from the signed
// _sd arrays (no duplicates), the KB-JWT's signature with cnf.jwk, typ,
// sd_hash, aud, nonce and iat.
import crypto from "node:crypto";
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(process.env.VN_SD_JWT_DIR, "package.json"));
const { SDJwtVcInstance } = require("@sd-jwt/sd-jwt-vc");
const { digest, generateSalt } = require("@sd-jwt/crypto-nodejs");
const { getListFromStatusListJWT } = require("@sd-jwt/jwt-status-list");
const jose = require("jose");

const b64url = (buf) => Buffer.from(buf).toString("base64url");
const sha256 = (text) => b64url(crypto.createHash("sha256").update(text).digest());

function signer(pem, alg) {
  const key = crypto.createPrivateKey(pem);
  return (data) =>
    b64url(
      alg === "EdDSA"
        ? crypto.sign(null, Buffer.from(data), key)
        : crypto.sign("sha256", Buffer.from(data), { key, dsaEncoding: "ieee-p1363" }),
    );
}

function verifier(jwk) {
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

function algOf(jwk) {
  return jwk.kty === "OKP" ? "EdDSA" : "ES256";
}

async function keygen(req) {
  const { privateKey, publicKey } =
    req.alg === "EdDSA"
      ? crypto.generateKeyPairSync("ed25519")
      : crypto.generateKeyPairSync("ec", { namedCurve: "P-256" });
  return {
    private_pem: privateKey.export({ format: "pem", type: "pkcs8" }),
    jwk: publicKey.export({ format: "jwk" }),
  };
}

async function issue(req) {
  const sdjwt = new SDJwtVcInstance({
    signer: signer(req.issuer_pem, req.alg),
    signAlg: req.alg,
    hasher: digest,
    hashAlg: "sha-256",
    saltGenerator: generateSalt,
  });
  return { sdjwt: await sdjwt.issue(req.payload, req.frame, { header: { kid: req.kid } }) };
}

async function present(req) {
  const sdjwt = new SDJwtVcInstance({
    hasher: digest,
    kbSigner: signer(req.holder_pem, req.alg),
    kbSignAlg: req.alg,
  });
  const kb = req.aud ? { kb: { payload: { iat: req.iat, aud: req.aud, nonce: req.nonce } } } : {};
  return { presentation: await sdjwt.present(req.sdjwt, req.frame, kb) };
}

async function bind(req) {
  const key = crypto.createPrivateKey(req.holder_pem);
  const kb = await new jose.SignJWT({ iat: req.iat, aud: req.aud, nonce: req.nonce, sd_hash: sha256(req.body) })
    .setProtectedHeader({ alg: req.alg, typ: "kb+jwt" })
    .sign(key);
  return { presentation: req.body + kb };
}

async function statuslist(req) {
  try {
    const key = await jose.importJWK(req.jwk, algOf(req.jwk));
    const { protectedHeader, payload } = await jose.compactVerify(req.jwt, key);
    const claims = JSON.parse(new TextDecoder().decode(payload));
    if (protectedHeader.typ !== "statuslist+jwt") return { ok: false, error: "typ" };
    if (claims.sub !== req.uri) return { ok: false, error: "sub" };
    const list = getListFromStatusListJWT(req.jwt);
    return { ok: true, bits: list.getBitsPerStatus(), status: list.getStatus(req.idx) };
  } catch (e) {
    return { ok: false, error: String(e && e.message) };
  }
}

async function npmVerify(req) {
  const issuerVerifier = verifier(req.issuer_jwk);
  const sdjwt = new SDJwtVcInstance({
    hasher: digest,
    verifier: issuerVerifier,
    kbVerifier: (data, sig, payload) => verifier(payload.cnf.jwk)(data, sig),
    statusVerifier: issuerVerifier,
    statusListFetcher: async (uri) => {
      const jwt = (req.status_lists || {})[uri];
      if (!jwt) throw new Error("no status list " + uri);
      return jwt;
    },
  });
  try {
    const result = await sdjwt.verify(req.presentation, {
      keyBindingNonce: req.nonce,
      currentDate: req.now,
    });
    return { ok: true, payload: result.payload, kb: result.kb && result.kb.payload };
  } catch (e) {
    return { ok: false, error: String(e && e.message) };
  }
}

// Every digest in _sd arrays and {"...": digest} array elements of value.
function digestsIn(value, out) {
  if (Array.isArray(value)) {
    for (const el of value) {
      if (el && typeof el === "object" && !Array.isArray(el) && "..." in el) out.push(el["..."]);
      else digestsIn(el, out);
    }
  } else if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      if (k === "_sd") out.push(...v);
      else digestsIn(v, out);
    }
  }
  return out;
}

// The claims with the disclosures applied, _sd and digests removed.
function resolve(value, byDigest) {
  if (Array.isArray(value)) {
    const out = [];
    for (const el of value) {
      if (el && typeof el === "object" && !Array.isArray(el) && "..." in el) {
        const d = byDigest.get(el["..."]);
        if (d) out.push(resolve(d[1], byDigest));
      } else out.push(resolve(el, byDigest));
    }
    return out;
  }
  if (value && typeof value === "object") {
    const out = {};
    for (const [k, v] of Object.entries(value)) {
      if (k === "_sd" || k === "_sd_alg") continue;
      out[k] = resolve(v, byDigest);
    }
    for (const dg of value._sd || []) {
      const d = byDigest.get(dg);
      if (d) out[d[1]] = resolve(d[2], byDigest);
    }
    return out;
  }
  return value;
}

async function independentVerify(req) {
  const parts = req.presentation.split("~");
  const kbJwt = parts.pop();
  const [jwt, ...disclosures] = parts;
  const issuerKey = await jose.importJWK(req.issuer_jwk, algOf(req.issuer_jwk));
  let payload;
  try {
    const { payload: raw, protectedHeader } = await jose.compactVerify(jwt, issuerKey);
    if (protectedHeader.typ !== "dc+sd-jwt") return { ok: false, error: "typ" };
    payload = JSON.parse(new TextDecoder().decode(raw));
  } catch (e) {
    return { ok: false, error: "issuer signature: " + e.message };
  }
  if (payload.exp !== undefined && payload.exp < req.now) return { ok: false, error: "expired" };
  // Digests reachable from the signed payload, then from disclosed values.
  const byDigest = new Map();
  for (const enc of disclosures) {
    const dg = sha256(enc);
    if (byDigest.has(dg)) return { ok: false, error: "duplicate disclosure" };
    byDigest.set(dg, JSON.parse(Buffer.from(enc, "base64url").toString()));
  }
  const reachable = new Set();
  let frontier = digestsIn(payload, []);
  while (frontier.length) {
    const next = [];
    for (const dg of frontier) {
      if (reachable.has(dg)) return { ok: false, error: "digest twice: " + dg };
      reachable.add(dg);
      const d = byDigest.get(dg);
      if (d) digestsIn(d[d.length - 1], next);
    }
    frontier = next;
  }
  for (const dg of byDigest.keys())
    if (!reachable.has(dg)) return { ok: false, error: "unsigned disclosure " + dg };
  if (req.aud) {
    if (!kbJwt) return { ok: false, error: "no KB-JWT" };
    const holderKey = await jose.importJWK(payload.cnf.jwk, algOf(payload.cnf.jwk));
    let kb;
    try {
      const { payload: raw, protectedHeader } = await jose.compactVerify(kbJwt, holderKey);
      if (protectedHeader.typ !== "kb+jwt") return { ok: false, error: "kb typ" };
      kb = JSON.parse(new TextDecoder().decode(raw));
    } catch (e) {
      return { ok: false, error: "KB-JWT signature: " + e.message };
    }
    const presented = req.presentation.slice(0, req.presentation.length - kbJwt.length);
    if (kb.sd_hash !== sha256(presented)) return { ok: false, error: "sd_hash" };
    if (kb.aud !== req.aud) return { ok: false, error: "aud" };
    if (kb.nonce !== req.nonce) return { ok: false, error: "nonce" };
    if (!(kb.iat <= req.now + 30 && kb.iat >= req.now - 300)) return { ok: false, error: "iat" };
  }
  return { ok: true, claims: resolve(payload, new Map([...byDigest].filter(([k]) => reachable.has(k)))) };
}

async function verify(req) {
  return { npm: await npmVerify(req), independent: await independentVerify(req) };
}

const ops = { keygen, issue, present, bind, statuslist, verify };
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const op = ops[process.argv[2]];
if (!op) {
  console.error("usage: node credentials_npm.mjs keygen|issue|present|bind|statuslist|verify < request.json");
  process.exit(2);
}
console.log(JSON.stringify(await op(JSON.parse(Buffer.concat(chunks).toString()))));
