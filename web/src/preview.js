// Safe previews (SPEC §17): text, JSON, Markdown and CSV up to 1 MiB are
// shown as text (a text node in <pre>, or table cells) — never parsed as
// HTML, so a file holding `<script>` shows those characters and runs
// nothing. Raster images are shown from a blob: URL in <img>.

import { download } from './api.js';
import { h } from './dom.js';

export const PREVIEW_MAX = 1024 * 1024;

const TEXT_TYPES = [
  /^text\//,
  /^application\/(json|.*\+json|x-ndjson|yaml|x-yaml|xml|toml|x-sh|javascript|sql)(;|$)/,
];
const IMAGE_TYPES = /^image\/(png|jpeg|gif|webp|avif|bmp)(;|$)/;
const TEXT_EXTENSIONS = /\.(txt|md|markdown|json|csv|tsv|ya?ml|toml|tf|hcl|log|xml|sh|py|rs|js|ts|sql|ini|cfg|html?)$/i;

export function kind(artifact) {
  const type = (artifact.contentType || '').toLowerCase();
  if (IMAGE_TYPES.test(type)) return 'image';
  if (TEXT_TYPES.some((re) => re.test(type)) || TEXT_EXTENSIONS.test(artifact.path || '')) {
    if (/csv/.test(type) || /\.csv$/i.test(artifact.path || '')) return 'csv';
    if (/json/.test(type) || /\.json$/i.test(artifact.path || '')) return 'json';
    return 'text';
  }
  return null;
}

export function previewable(artifact, size = artifact.size) {
  return kind(artifact) !== null && Number(size) <= PREVIEW_MAX;
}

/** The preview element of one version. */
export async function preview(artifact, version, size) {
  const k = kind(artifact);
  if (!k || Number(size) > PREVIEW_MAX) {
    return h('p.muted', {}, 'No preview for this file: download it instead.');
  }
  const blob = await download(artifact.artifactId, version);
  if (k === 'image') {
    const url = URL.createObjectURL(blob);
    const img = h('img.preview-image', { src: url, alt: `Preview of ${artifact.path}, version ${version}` });
    img.addEventListener('load', () => URL.revokeObjectURL(url), { once: true });
    return img;
  }
  const text = await blob.text();
  if (k === 'json') {
    let shown = text;
    try {
      shown = JSON.stringify(JSON.parse(text), null, 2);
    } catch {
      /* not valid JSON: shown as it is */
    }
    return pre(shown, 'json');
  }
  if (k === 'csv') return csvTable(text) || pre(text, 'csv');
  return pre(text, 'text');
}

function pre(text, k) {
  return h('pre.preview-text', { tabindex: 0, 'data-kind': k, 'aria-label': 'File preview' }, text);
}

/** A small CSV parser (quotes, doubled quotes, CRLF); null when it looks wrong. */
export function parseCsv(text, maxRows = 500) {
  const rows = [];
  let row = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i += 1;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"' && field === '') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i += 1;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      if (rows.length >= maxRows) return rows;
    } else field += c;
  }
  if (field !== '' || row.length) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

function csvTable(text) {
  const rows = parseCsv(text);
  if (!rows.length) return null;
  const [head, ...body] = rows;
  return h('div.table-wrap', { tabindex: 0, role: 'region', 'aria-label': 'CSV preview' },
    h('table.csv', {},
      h('thead', {}, h('tr', {}, head.map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, body.map((r) => h('tr', {}, r.map((c) => h('td', {}, c)))))));
}
