// DOM helpers. Text always goes in as text (textContent / text nodes), never
// as HTML: nothing the API returns is ever parsed as markup.

/** h('tag.class', {attrs}, ...children): an element. */
export function h(spec, attrs = {}, ...children) {
  const [tag, ...classes] = spec.split('.');
  const el = document.createElement(tag || 'div');
  if (classes.length) el.className = classes.join(' ');
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (value === true) {
      el.setAttribute(key, '');
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
export function size(bytes) {
  if (bytes === null || bytes === undefined) return '–';
  let n = Number(bytes);
  let unit = 0;
  while (n >= 1024 && unit < UNITS.length - 1) {
    n /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${n} B` : `${n.toFixed(n < 10 ? 1 : 0)} ${UNITS[unit]}`;
}

export function when(rfc3339) {
  if (!rfc3339) return '–';
  const d = new Date(rfc3339);
  return Number.isNaN(d.getTime()) ? rfc3339 : d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

/** Labels (the metadata map) as chips. */
export function labels(metadata) {
  const entries = Object.entries(metadata || {});
  if (!entries.length) return null;
  return h('ul.labels', { 'aria-label': 'Labels' },
    entries.map(([k, v]) => h('li.label', {}, `${k}=${v}`)));
}

/** Announce a message in the status region (and show it). */
export function say(message, kind = 'info') {
  const status = document.getElementById('status');
  if (!status) return;
  fill(status, message ? h(`p.${kind}`, {}, message) : null);
}

/** Save bytes the browser holds as a file (a download). */
export function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = h('a', { href: url, download: filename || 'download' });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** Copy text; falls back to selecting it for the user. */
export async function copy(text, input) {
  try {
    await navigator.clipboard.writeText(text);
    say('Copied to the clipboard.');
    return true;
  } catch {
    if (input) {
      input.focus();
      input.select();
    }
    say('Could not use the clipboard: the text is selected, copy it with Ctrl+C.', 'warn');
    return false;
  }
}

/** The file name of a path. */
export function basename(path) {
  const i = path.lastIndexOf('/');
  return i < 0 ? path : path.slice(i + 1);
}
