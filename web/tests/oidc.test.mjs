// Deployed sign-in in a real browser: OIDC authorization code + PKCE
// (SPEC §17) against a fake identity provider started here.
//
// Run by tests/tests/console.rs (`the_console_signs_in_by_oidc`), which
// starts the real handlers behind the local gateway, the console configured
// with issuer http://127.0.0.1:<OIDC_PORT> and client OIDC_CLIENT_ID, and
// passes: CONSOLE_URL, CONSOLE_TOKEN (a token the gateway accepts: what the
// provider hands out as access_token), OIDC_PORT, OIDC_CLIENT_ID,
// CONSOLE_OUT (screenshots), CHROMIUM. Every wait is bounded.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { mkdtemp, readFile, rm, mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this through tests/tests/console.rs (cargo test -p artifacts-tests --test console oidc)`);
  return value;
};
const BASE = env('CONSOLE_URL').replace(/\/$/, '');
const TOKEN = env('CONSOLE_TOKEN');
const PORT = Number(env('OIDC_PORT'));
const CLIENT_ID = env('OIDC_CLIENT_ID');
const OUT = env('CONSOLE_OUT');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ISSUER = `http://127.0.0.1:${PORT}`;
const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run',
];
const WAIT = 20_000;

const require = createRequire(import.meta.url);
const AXE = await readFile(require.resolve('axe-core/axe.min.js'), 'utf8');

// ------------------------------------------------------- the fake provider

const b64url = (buf) => buf.toString('base64').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');

/** What the provider saw, and how it answers the next authorization. */
const idp = {
  mode: 'grant', // 'grant' | 'deny' | 'wrong-state'
  authorizations: [], // the authorize requests' parameters
  tokenRequests: [], // the token requests' form fields, with the outcome
  codes: new Map(), // code → the authorization it was issued for
};

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

const server = createServer(async (req, res) => {
  const url = new URL(req.url, ISSUER);
  const json = (status, body) => {
    res.writeHead(status, {
      'content-type': 'application/json',
      'cache-control': 'no-store',
      'access-control-allow-origin': BASE,
    });
    res.end(JSON.stringify(body));
  };
  if (req.method === 'OPTIONS') {
    res.writeHead(204, {
      'access-control-allow-origin': BASE,
      'access-control-allow-methods': 'GET, POST',
      'access-control-allow-headers': 'content-type, accept',
    });
    res.end();
    return;
  }
  if (req.method === 'GET' && url.pathname === '/.well-known/openid-configuration') {
    json(200, {
      issuer: ISSUER,
      authorization_endpoint: `${ISSUER}/authorize`,
      token_endpoint: `${ISSUER}/token`,
      response_types_supported: ['code'],
      code_challenge_methods_supported: ['S256'],
    });
    return;
  }
  if (req.method === 'GET' && url.pathname === '/authorize') {
    const p = Object.fromEntries(url.searchParams);
    idp.authorizations.push(p);
    const back = new URL(p.redirect_uri);
    if (idp.mode === 'deny') {
      back.searchParams.set('error', 'access_denied');
      back.searchParams.set('error_description', 'The user cancelled the sign-in');
      back.searchParams.set('state', p.state);
    } else {
      const code = b64url(randomBytes(18));
      idp.codes.set(code, p);
      back.searchParams.set('code', code);
      back.searchParams.set('state', idp.mode === 'wrong-state' ? 'not-the-state-sent' : p.state);
    }
    res.writeHead(302, { location: back.toString() });
    res.end();
    return;
  }
  if (req.method === 'POST' && url.pathname === '/token') {
    const form = Object.fromEntries(new URLSearchParams(await readBody(req)));
    const issued = idp.codes.get(form.code);
    idp.codes.delete(form.code); // a code is good once
    let error = null;
    if (form.grant_type !== 'authorization_code') error = 'unsupported_grant_type';
    else if (!issued) error = 'invalid_grant';
    else if (form.client_id !== issued.client_id || form.redirect_uri !== issued.redirect_uri) error = 'invalid_grant';
    else if (issued.code_challenge_method !== 'S256') error = 'invalid_request';
    else if (b64url(createHash('sha256').update(form.code_verifier ?? '').digest()) !== issued.code_challenge) error = 'invalid_grant';
    idp.tokenRequests.push({ ...form, error });
    if (error) json(400, { error, error_description: `refused: ${error}` });
    else json(200, { access_token: TOKEN, token_type: 'Bearer', expires_in: 3600, scope: issued.scope });
    return;
  }
  res.writeHead(404);
  res.end();
});

// ---------------------------------------------------------------- browser

const browsers = [];
async function launch() {
  const dir = await mkdtemp(join(tmpdir(), 'console-oidc-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM, args: ARGS, headless: true,
    viewport: { width: 1360, height: 900 }, timeout: WAIT,
  });
  context.setDefaultTimeout(WAIT);
  context.setDefaultNavigationTimeout(WAIT);
  const problems = [];
  const watch = (page) => {
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('console', (msg) => {
      if (/Content Security Policy|Refused to/i.test(msg.text())) problems.push(`CSP: ${msg.text()}`);
    });
  };
  context.pages().forEach(watch);
  context.on('page', watch);
  const b = { context, dir, problems, page: context.pages()[0] || await context.newPage() };
  browsers.push(b);
  return b;
}

async function check(p, name) {
  await p.evaluate(AXE);
  const result = await p.evaluate(async () => window.axe.run(document, { resultTypes: ['violations'] }));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  await p.screenshot({ path: join(OUT, `${name}.png`), fullPage: true });
  assert.deepEqual(bad.map((v) => `${v.id} (${v.impact}): ${v.help}`), [], `axe on ${name}`);
}

async function history(b) {
  const cdp = await b.context.newCDPSession(b.page);
  const { entries } = await cdp.send('Page.getNavigationHistory');
  await cdp.detach();
  return entries.map((e) => e.url);
}

const stored = (p) => p.evaluate(() => ({
  token: sessionStorage.getItem('artifacts.token'),
  state: sessionStorage.getItem('artifacts.oidc.state'),
  verifier: sessionStorage.getItem('artifacts.oidc.verifier'),
}));

before(async () => {
  await mkdir(OUT, { recursive: true });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(PORT, '127.0.0.1', resolve);
  });
});

after(async () => {
  for (const b of browsers) {
    await b.context.close().catch(() => {});
    await rm(b.dir, { recursive: true, force: true }).catch(() => {});
  }
  await new Promise((resolve) => server.close(resolve));
  server.closeAllConnections?.();
});

function noProblems() {
  for (const b of browsers) assert.deepEqual(b.problems, [], 'page errors or CSP violations');
}

// ------------------------------------------------------------------ tests

test('the sign-in page offers the identity provider (axe), and a token behind a disclosure', async () => {
  const b = await launch();
  const p = b.page;
  await p.goto(`${BASE}/console/library`);
  await p.getByRole('heading', { name: 'Sign in' }).waitFor();
  await p.getByRole('button', { name: `Sign in with 127.0.0.1:${PORT}` }).waitFor();
  assert.equal(await p.getByLabel('Bearer token').isVisible(), false, 'the token form is folded away');
  await p.getByText('Use a token instead').click();
  assert.equal(await p.getByLabel('Bearer token').isVisible(), true);
  await check(p, 'oidc-0-sign-in');
  noProblems();
});

test('sign in by code + PKCE lands on the library with the provider\'s token; no code, state or token in the address bar or history', async () => {
  idp.mode = 'grant';
  const before = { auth: idp.authorizations.length, token: idp.tokenRequests.length };
  const b = await launch();
  const p = b.page;
  // Sign-in starts on a page of the app (a bookmark) and returns to it.
  await p.goto(`${BASE}/console/library?sort=createdAt`);
  await p.getByRole('button', { name: /^Sign in with / }).click();
  await p.getByRole('heading', { name: 'Artifact library' }).waitFor();

  // What the provider was asked for.
  assert.equal(idp.authorizations.length, before.auth + 1);
  const auth = idp.authorizations.at(-1);
  assert.equal(auth.response_type, 'code');
  assert.equal(auth.client_id, CLIENT_ID);
  assert.equal(auth.redirect_uri, `${BASE}/`);
  assert.equal(auth.scope, 'openid artifacts:read artifacts:write');
  assert.equal(auth.code_challenge_method, 'S256');
  assert.match(auth.code_challenge, /^[A-Za-z0-9_-]{43}$/);
  assert.ok(auth.state && auth.state.length >= 16, auth.state);

  // One exchange, with a verifier matching the challenge (the provider
  // checked SHA-256; checked again here), and it succeeded.
  assert.equal(idp.tokenRequests.length, before.token + 1);
  const exchange = idp.tokenRequests.at(-1);
  assert.equal(exchange.error, null, JSON.stringify(exchange));
  assert.equal(exchange.grant_type, 'authorization_code');
  assert.equal(exchange.client_id, CLIENT_ID);
  assert.equal(exchange.redirect_uri, `${BASE}/`);
  assert.ok(exchange.code_verifier.length >= 43 && exchange.code_verifier.length <= 128, exchange.code_verifier);
  assert.equal(b64url(createHash('sha256').update(exchange.code_verifier).digest()), auth.code_challenge);

  // Signed in with the provider's token, kept as the dev token is; the
  // state and verifier are gone; the API answered with that token.
  assert.deepEqual(await stored(p), { token: TOKEN, state: null, verifier: null });
  assert.equal(await p.evaluate(() => sessionStorage.getItem('artifacts.oidc.return')), null);
  await p.getByText('user-of-acme · acme').waitFor();
  assert.equal(p.url(), `${BASE}/console/library?sort=createdAt`);
  const entries = await history(b);
  for (const u of entries) {
    assert.ok(!/[?&](code|state)=/.test(u) && !u.includes(TOKEN.slice(0, 24)) && !u.includes(exchange.code), `history has ${u}`);
  }
  // The code is spent: the provider refuses it a second time.
  const again = await fetch(`${ISSUER}/token`, {
    method: 'POST',
    body: new URLSearchParams({ grant_type: 'authorization_code', code: exchange.code, client_id: CLIENT_ID, redirect_uri: `${BASE}/`, code_verifier: exchange.code_verifier }),
  });
  assert.equal(again.status, 400);
  await p.screenshot({ path: join(OUT, 'oidc-1-signed-in.png'), fullPage: true });
  noProblems();
});

test('a callback whose state does not match is refused with a message and nothing is exchanged', async () => {
  // A made-up callback in a tab that started no sign-in.
  const b = await launch();
  const p = b.page;
  const tokens = idp.tokenRequests.length;
  await p.goto(`${BASE}/?code=x&state=wrong`);
  const alert = p.getByRole('alert');
  await alert.waitFor();
  assert.match(await alert.textContent(), /state does not match/);
  await p.getByRole('heading', { name: 'Sign in' }).waitFor();
  assert.equal(p.url(), `${BASE}/`);
  assert.equal((await stored(p)).token, null);

  // A real sign-in whose answer comes back with another state (a forged or
  // crossed response): a valid code, still never exchanged.
  idp.mode = 'wrong-state';
  await p.getByRole('button', { name: /^Sign in with / }).click();
  await p.getByRole('alert').filter({ hasText: 'state does not match' }).waitFor();
  assert.equal(idp.tokenRequests.length, tokens, 'no token request was made');
  assert.deepEqual(await stored(p), { token: null, state: null, verifier: null });
  for (const u of await history(b)) assert.ok(!/[?&](code|state)=/.test(u), `history has ${u}`);
  await p.screenshot({ path: join(OUT, 'oidc-2-state-mismatch.png'), fullPage: true });
  noProblems();
});

test('an error from the identity provider is shown readably', async () => {
  idp.mode = 'deny';
  const tokens = idp.tokenRequests.length;
  const b = await launch();
  const p = b.page;
  await p.goto(`${BASE}/`);
  await p.getByRole('button', { name: /^Sign in with / }).click();
  const alert = p.getByRole('alert').filter({ hasText: 'did not sign you in' });
  await alert.waitFor();
  assert.match(await alert.textContent(), /The user cancelled the sign-in \(access_denied\)/);
  assert.equal(p.url(), `${BASE}/`);
  assert.equal(idp.tokenRequests.length, tokens);
  assert.deepEqual(await stored(p), { token: null, state: null, verifier: null });
  await check(p, 'oidc-3-provider-error');
  idp.mode = 'grant';
  noProblems();
});
