// Sign-in (SPEC §17). Dev: the URL `make dev` prints carries the token in its
// fragment (`#token=…`, never sent to a server); it is moved to
// sessionStorage at once and the fragment is replaced in the address bar and
// the history entry, so it is neither shown nor kept. A token can also be
// pasted into the sign-in form.
//
// Deployed: OIDC authorization code + PKCE (RFC 7636) against the API's JWT
// issuer, when `/console/config.json` names a client. "Sign in" sends the
// browser to the issuer's authorization endpoint (from its discovery
// document) with a random `state` and the S256 challenge of a random
// verifier, both kept in sessionStorage; the issuer redirects back to
// `{origin}/?code=…&state=…` (the callback URL to register). There the state
// is checked (a mismatch exchanges nothing), the code and verifier are
// exchanged at the token endpoint, the access token is kept exactly as the
// dev token is, and code/state leave the address bar and the history entry.

const KEY = 'artifacts.token';
const STATE = 'artifacts.oidc.state';
const VERIFIER = 'artifacts.oidc.verifier';
/** Where sign-in started (a path of this origin), to go back to after it. */
const RETURN = 'artifacts.oidc.return';
/** Parameters the issuer may put on the callback URL; all are removed. */
const CALLBACK_PARAMS = ['code', 'state', 'error', 'error_description', 'error_uri', 'iss', 'session_state'];
const TIMEOUT_MS = 15_000;

/** The sign-in configuration: `{issuer, clientId, scopes}` or null. */
export async function loadConfig() {
  try {
    const r = await fetch('/console/config.json', { cache: 'no-store', signal: AbortSignal.timeout(TIMEOUT_MS) });
    if (!r.ok) return null;
    return (await r.json()).oidc ?? null;
  } catch {
    return null;
  }
}

/** The console's own URL, where the issuer sends the browser back. */
export function redirectUri() {
  return `${window.location.origin}/`;
}

function base64url(bytes) {
  let s = '';
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function randomString(bytes) {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

async function discover(issuer) {
  const url = `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
  let r;
  try {
    r = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch (err) {
    throw new Error(`Could not reach the identity provider at ${issuer} (${err.message}).`);
  }
  if (!r.ok) throw new Error(`The identity provider's configuration could not be read (HTTP ${r.status}).`);
  const doc = await r.json();
  if (String(doc.issuer ?? '').replace(/\/+$/, '') !== issuer.replace(/\/+$/, '')) {
    throw new Error(`The identity provider names another issuer (${doc.issuer}); check the console's configuration.`);
  }
  if (!doc.authorization_endpoint || !doc.token_endpoint) {
    throw new Error('The identity provider publishes no authorization or token endpoint.');
  }
  return doc;
}

/** Start OIDC sign-in: leaves the page for the issuer's authorization endpoint. */
export async function beginSignIn(oidc) {
  const doc = await discover(oidc.issuer);
  const state = randomString(16);
  const verifier = randomString(32); // 43 characters of base64url
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  sessionStorage.setItem(STATE, state);
  sessionStorage.setItem(VERIFIER, verifier);
  sessionStorage.setItem(RETURN, window.location.pathname + window.location.search);
  const url = new URL(doc.authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: oidc.clientId,
    redirect_uri: redirectUri(),
    scope: oidc.scopes,
    state,
    code_challenge: base64url(digest),
    code_challenge_method: 'S256',
  }).toString();
  window.location.assign(url.toString());
}

/**
 * Finish OIDC sign-in when the issuer sent the browser back here. Returns
 * null when this is no callback, '' when signed in, or a message to show.
 */
export async function completeSignIn(oidc) {
  const params = new URLSearchParams(window.location.search);
  if (!params.has('code') && !params.has('error')) return null;
  const code = params.get('code');
  const state = params.get('state');
  const error = params.get('error');
  const description = params.get('error_description');
  // Whatever happens next, the callback's parameters leave the address bar
  // and this history entry, and the verifier is used at most once.
  for (const name of CALLBACK_PARAMS) params.delete(name);
  const rest = params.toString();
  history.replaceState(history.state, '', window.location.pathname + (rest ? `?${rest}` : '') + window.location.hash);
  const expected = sessionStorage.getItem(STATE);
  const verifier = sessionStorage.getItem(VERIFIER);
  const back = sessionStorage.getItem(RETURN);
  for (const key of [STATE, VERIFIER, RETURN]) sessionStorage.removeItem(key);

  if (error) {
    return `The identity provider did not sign you in: ${description || error}${description ? ` (${error})` : ''}.`;
  }
  if (!oidc) return 'This console has no sign-in provider configured; the sign-in response was ignored.';
  if (!expected || !verifier || state !== expected) {
    return 'The sign-in response does not belong to a sign-in started here (its state does not match), so it was not used. Sign in again.';
  }
  try {
    const doc = await discover(oidc.issuer);
    const r = await fetch(doc.token_endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code,
        redirect_uri: redirectUri(),
        client_id: oidc.clientId,
        code_verifier: verifier,
      }),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    const body = await r.json().catch(() => ({}));
    if (!r.ok || !body.access_token) {
      const why = body.error_description || body.error || `HTTP ${r.status}`;
      return `The identity provider refused the sign-in code: ${why}. Sign in again.`;
    }
    signIn(body.access_token);
    // Back where sign-in started: a path of this origin only.
    if (back && back.startsWith('/') && !back.startsWith('//') && !back.startsWith('/\\')) {
      history.replaceState(history.state, '', back);
    }
    return '';
  } catch (err) {
    return `Sign-in could not be completed: ${err.message}`;
  }
}

/** Take a token from the fragment, if any; true when one was taken. */
export function takeTokenFromFragment() {
  const hash = window.location.hash.replace(/^#/, '');
  if (!hash) return false;
  const params = new URLSearchParams(hash);
  const token = params.get('token');
  if (!token) return false;
  sessionStorage.setItem(KEY, token.trim());
  params.delete('token');
  const rest = params.toString();
  const clean = window.location.pathname + window.location.search + (rest ? `#${rest}` : '');
  history.replaceState(history.state, '', clean);
  return true;
}

export function token() {
  return sessionStorage.getItem(KEY);
}

export function signIn(value) {
  sessionStorage.setItem(KEY, value.trim());
}

export function signOut() {
  sessionStorage.removeItem(KEY);
}

/** The token's claims, unverified (for display only: the API verifies). */
export function claims() {
  const t = token();
  if (!t) return null;
  try {
    const part = t.split('.')[1];
    const json = atob(part.replace(/-/g, '+').replace(/_/g, '/'));
    return JSON.parse(json);
  } catch {
    return null;
  }
}

export function scopes() {
  const scope = claims()?.scope ?? claims()?.scp ?? '';
  const list = Array.isArray(scope) ? scope : String(scope).replace(/^\[|\]$/g, '').split(/\s+/);
  return new Set(list.filter(Boolean));
}
