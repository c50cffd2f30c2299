// Sign-in (SPEC §17). Dev: the URL `make dev` prints carries the token in its
// fragment (`#token=…`, never sent to a server); it is moved to
// sessionStorage at once and the fragment is replaced in the address bar and
// the history entry, so it is neither shown nor kept. A token can also be
// pasted into the sign-in form. (Deployed OIDC code + PKCE sign-in is not
// built yet.)

const KEY = 'artifacts.token';

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
