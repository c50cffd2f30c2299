// The console's entry: sign-in, routing (history API under /console/), and
// the views. See SPEC §17.

import './style.css';
import { ApiError, SignedOut, whenSignedOut } from './api.js';
import { beginSignIn, claims, completeSignIn, loadConfig, signIn, signOut, takeTokenFromFragment, token } from './auth.js';
import { fill, h, say } from './dom.js';
import { artifactView } from './views/artifact.js';
import { libraryView } from './views/library.js';
import { runView } from './views/run.js';

const mainEl = document.getElementById('main');
const who = document.getElementById('who');
let signInReason = '';
/** The OIDC sign-in configuration (`/console/config.json`), or null. */
let oidc = null;

takeTokenFromFragment();

whenSignedOut(() => {
  signOut();
  signInReason = 'Your session has ended or the token was refused. Sign in again.';
  render();
});

export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  render();
}

document.addEventListener('click', (e) => {
  const a = e.target.closest?.('a[data-nav]');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const url = new URL(a.href);
  if (url.origin !== location.origin) return;
  e.preventDefault();
  navigate(url.pathname + url.search);
});
window.addEventListener('popstate', () => render());

document.getElementById('open-run').addEventListener('submit', (e) => {
  e.preventDefault();
  const id = e.target.elements.workflowId.value.trim();
  if (id) navigate(`/console/runs/${encodeURIComponent(id)}`);
});

function showWho() {
  const c = claims();
  fill(who, token()
    ? [h('span', {}, `${c?.sub ?? 'signed in'} · ${c?.org_id ?? '?'}`),
      h('button', { type: 'button', onclick: () => { signOut(); signInReason = 'Signed out.'; render(); } }, 'Sign out')]
    : null);
}

function signInView() {
  document.title = 'Sign in · Artifacts console';
  const main = mainEl;
  const input = h('textarea', { id: 'token', name: 'token', rows: 4, required: true, autocomplete: 'off', spellcheck: 'false' });
  const tokenForm = h('form.signin', {
    onsubmit: (e) => {
      e.preventDefault();
      if (!input.value.trim()) return;
      signIn(input.value);
      signInReason = '';
      render();
    },
  }, h('label', { for: 'token' }, 'Bearer token'), input, h('button', { type: 'submit' }, 'Sign in'));
  const reason = signInReason ? h('p.warn', { role: 'alert' }, signInReason) : null;
  if (!oidc) {
    fill(main, h('h1', {}, 'Sign in'), reason,
      h('p', {}, 'Open the console URL that ', h('code', {}, 'make dev'), ' prints, or paste a token.'),
      tokenForm);
    return;
  }
  // Deployed: the identity provider first; a token (a CI one, a dev one)
  // stays possible behind a disclosure.
  let host = oidc.issuer;
  try { host = new URL(oidc.issuer).host; } catch { /* shown as configured */ }
  const button = h('button.primary', {
    type: 'button',
    onclick: async () => {
      button.disabled = true;
      say('Going to the identity provider…');
      try {
        await beginSignIn(oidc);
      } catch (err) {
        signInReason = err.message;
        signInView();
      }
    },
  }, `Sign in with ${host}`);
  fill(main, h('h1', {}, 'Sign in'), reason,
    h('p', {}, 'Sign in with your organisation\'s identity provider.'),
    h('p', {}, button),
    h('details.signin-token', {}, h('summary', {}, 'Use a token instead'), tokenForm));
}

function route(pathname) {
  const path = pathname.replace(/\/+$/, '') || '/';
  let m;
  if (path === '/' || path === '/console' || path === '/console/library') return ['library'];
  if ((m = path.match(/^\/console\/runs\/([^/]+)$/))) return ['run', decodeURIComponent(m[1])];
  if ((m = path.match(/^\/console\/artifacts\/([^/]+)$/))) return ['artifact', decodeURIComponent(m[1])];
  return ['missing'];
}

let generation = 0;
export async function render() {
  const mine = (generation += 1);
  showWho();
  if (!token()) {
    signInView();
    return;
  }
  const [view, arg] = route(location.pathname);
  // Each render draws into its own container: a slow, superseded one fills
  // a container that is no longer on the page.
  const main = h('div.view');
  fill(mainEl, main);
  for (const a of document.querySelectorAll('nav a[data-nav]')) {
    a.toggleAttribute('aria-current', a.getAttribute('href') === location.pathname);
  }
  say('');
  try {
    if (view === 'library') {
      document.title = 'Library · Artifacts console';
      await libraryView(main, location.search, navigate);
    } else if (view === 'run') {
      document.title = `Run ${arg} · Artifacts console`;
      await runView(main, arg);
    } else if (view === 'artifact') {
      document.title = 'Artifact · Artifacts console';
      await artifactView(main, arg);
    } else {
      fill(main, h('h1', {}, 'Not found'), h('p', {}, 'There is no such page. ', h('a', { href: '/console/library', 'data-nav': true }, 'Go to the library')));
    }
  } catch (err) {
    if (mine !== generation || err instanceof SignedOut) return;
    const message = err instanceof ApiError ? err.message : `Something went wrong: ${err.message}`;
    fill(main, h('h1', {}, err.status === 404 ? 'Not found' : 'Could not load this page'),
      h('p.error', { role: 'alert' }, message),
      err.problem?.requestId ? h('p.muted', {}, `Request id: ${err.problem.requestId}`) : null);
  }
}

// The sign-in configuration first (it decides the sign-in page), then a
// callback from the identity provider, if this is one.
async function start() {
  oidc = await loadConfig();
  const outcome = await completeSignIn(oidc);
  if (outcome) signInReason = outcome;
  render();
}

start();
