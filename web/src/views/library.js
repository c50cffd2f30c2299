// Library: the org-wide listing (GET /v1/artifacts) with the API's own
// filters and sort, paged by cursor, with bulk download, a ZIP of the
// selection and "copy refs". The query lives in the address
// (/console/library?…), so a view can be shared.
//
// The ZIP of a selection is built in the browser (client-zip, stored
// entries, streamed from each download into the archive): the bundle route
// takes one workflow and selects by filters, which cannot name an arbitrary
// selection, let alone one across runs. Entries are `<workflowId>/<path>`,
// so paths of different runs never collide. The archive is held in the
// browser's memory until it is saved, so the selection is capped at
// ZIP_MAX_BYTES (a whole run of any size: "Download all (ZIP)" on the run).

import { downloadZip } from 'client-zip';
import { call, getJson, query } from '../api.js';
import { attempt, downloadVersion } from '../components.js';
import { copy, fill, h, labels, saveBlob, say, size, when } from '../dom.js';

/** The API's library filters on main (SPEC §4). */
const FILTERS = [
  ['workflowId', 'Run (workflow id)', 'text'],
  ['artifactType', 'Artifact type', 'text'],
  ['prefix', 'Path prefix', 'text'],
  ['createdAfter', 'Created after (RFC 3339)', 'text'],
  ['createdBefore', 'Created before (RFC 3339)', 'text'],
];
// The API sorts the library by creation, path (within a run or across
// runs) and size, each served by an index.
const SORTS = [['createdAt', 'Created'], ['path', 'Path'], ['size', 'Size']];

/** The most a ZIP of a selection may hold (the sum of the latest versions). */
export const ZIP_MAX_BYTES = 512 * 1024 * 1024;

/** The selection as one ZIP built here; entries `<workflowId>/<path>`. */
async function zipSelection(selected) {
  const list = [...selected.values()];
  const total = list.reduce((n, a) => n + Number(a.size || 0), 0);
  if (total > ZIP_MAX_BYTES) {
    say(`The selection is ${size(total)}: a ZIP built in the browser holds at most ${size(ZIP_MAX_BYTES)}. `
      + 'Select fewer artifacts, or use "Download all (ZIP)" on a run (the server builds that one, of any size).', 'error');
    return;
  }
  say(`Building a ZIP of ${list.length} artifacts (${size(total)})…`);
  // Each download starts only when the archive reaches its entry.
  async function* entries() {
    for (const a of list) {
      const response = await call(`/v1/artifacts/${encodeURIComponent(a.artifactId)}/download${query({ version: a.latestVersion })}`);
      yield { name: `${a.workflowId}/${a.path}`, input: response, lastModified: new Date(a.updatedAt || a.createdAt) };
    }
  }
  const blob = await downloadZip(entries()).blob();
  const runs = new Set(list.map((a) => a.workflowId));
  saveBlob(blob, runs.size === 1 ? `${[...runs][0]}-selection.zip` : 'artifacts-selection.zip');
  say(`Saved a ZIP of ${list.length} artifacts (${size(blob.size)}).`);
}

export function ref(a, version = a.latestVersion) {
  return `artifact://${a.workflowId}/${a.path}@${version}`;
}

export async function libraryView(main, search, navigate) {
  const params = new URLSearchParams(search);
  const form = h('form.filters', {
    'aria-label': 'Library filters',
    onsubmit: (e) => {
      e.preventDefault();
      const q = {};
      for (const el of form.elements) {
        if (el.name && el.value.trim()) q[el.name] = el.value.trim();
      }
      navigate(`/console/library${query(q)}`);
    },
  },
  FILTERS.map(([name, label, type]) => h('div.field', {},
    h('label', { for: `f-${name}` }, label),
    h('input', { id: `f-${name}`, name, type, value: params.get(name) || '', autocomplete: 'off' }))),
  h('div.field', {},
    h('label', { for: 'f-state' }, 'Show'),
    h('select', { id: 'f-state', name: 'state' },
      h('option', { value: '' }, 'Live artifacts'),
      h('option', { value: 'deleted', selected: params.get('state') === 'deleted' }, 'Trash (deleted)'))),
  h('div.field', {},
    h('label', { for: 'f-limit' }, 'Per page'),
    h('select', { id: 'f-limit', name: 'limit' }, ['', '2', '10', '50', '100', '500'].map((n) =>
      h('option', { value: n, selected: (params.get('limit') || '') === n }, n || 'default (100)')))),
  [
    h('div.field', {}, h('label', { for: 'f-sort' }, 'Sort by'),
      h('select', { id: 'f-sort', name: 'sort' }, h('option', { value: '' }, 'default'),
        SORTS.map(([v, l]) => h('option', { value: v, selected: params.get('sort') === v }, l)))),
    h('div.field', {}, h('label', { for: 'f-order' }, 'Order'),
      h('select', { id: 'f-order', name: 'order' }, h('option', { value: '' }, 'default'),
        ['asc', 'desc'].map((v) => h('option', { value: v, selected: params.get('order') === v }, v)))),
  ],
  h('div.field.submit', {}, h('button', { type: 'submit' }, 'Apply filters')));

  // The form is built once: what the user types survives the listing's arrival.
  const results = h('div.results', {}, h('p.muted', {}, 'Loading…'));
  fill(main, h('h1', {}, 'Artifact library'), form, results);

  const apiQuery = Object.fromEntries([...params.entries()].filter(([, v]) => v !== ''));
  const page = await getJson(`/v1/artifacts${query(apiQuery)}`);
  // The trash: its artifacts' content answers 404 until restored (on the
  // artifact's page), so there is nothing to download or bundle.
  const trash = params.get('state') === 'deleted';
  const selected = new Map();
  const bulkNote = h('span.muted', {}, 'Nothing selected.');
  const refsOut = h('div.refs-out');
  const update = () => {
    bulkNote.textContent = selected.size ? `${selected.size} selected` : 'Nothing selected.';
    for (const b of bulk.querySelectorAll('button')) b.disabled = !selected.size;
  };
  const bulk = h('div.toolbar', { role: 'group', 'aria-label': 'Selected artifacts' },
    bulkNote,
    h('button', {
      type: 'button',
      disabled: true,
      onclick: () => attempt('Download selected', async () => {
        for (const a of selected.values()) await downloadVersion(a, a.latestVersion);
      }),
    }, 'Download selected'),
    h('button', {
      type: 'button',
      disabled: true,
      onclick: (e) => {
        const button = e.currentTarget;
        button.disabled = true;
        attempt('Building the ZIP', () => zipSelection(selected)).finally(() => { button.disabled = !selected.size; });
      },
    }, 'Download selected (ZIP)'),
    h('button', {
      type: 'button',
      disabled: true,
      onclick: async () => {
        const text = [...selected.values()].map((a) => ref(a)).join('\n');
        const area = h('textarea.refs', { id: 'refs', readonly: true, rows: Math.min(8, selected.size) }, text);
        fill(refsOut, h('label', { for: 'refs' }, 'Artifact references'), area);
        await copy(text, area);
      },
    }, 'Copy refs'));

  const rows = page.artifacts.map((a) => {
    const box = h('input', {
      type: 'checkbox',
      'aria-label': `Select ${a.workflowId}/${a.path}`,
      onchange: () => {
        if (box.checked) selected.set(a.artifactId, a);
        else selected.delete(a.artifactId);
        update();
      },
    });
    return h('tr', { dataset: { artifactId: a.artifactId } },
      trash ? null : h('td', {}, box),
      h('td', {}, h('a', { href: `/console/artifacts/${encodeURIComponent(a.artifactId)}`, 'data-nav': true }, a.path)),
      h('td', {}, h('a', { href: `/console/runs/${encodeURIComponent(a.workflowId)}`, 'data-nav': true }, a.workflowId)),
      h('td', {}, a.artifactType),
      h('td.num', {}, size(a.size)),
      h('td.num', {}, `v${a.latestVersion}`),
      h('td', {}, when(trash ? a.deletedAt : a.createdAt)),
      h('td', {}, labels(a.metadata)));
  });
  const table = page.artifacts.length
    ? h('table.library', {},
      h('caption', {}, 'Artifacts', page.count !== null && page.count !== undefined ? ` (${page.count} in all, ${size(page.totalSize)})` : ''),
      h('thead', {}, h('tr', {}, [trash ? null : 'Select', 'Path', 'Run', 'Type', 'Size', 'Version', trash ? 'Deleted' : 'Created', 'Labels'].filter(Boolean).map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, rows))
    : h('div.empty', {}, h('p', {}, 'No artifacts match these filters.'));

  const nav = h('nav.pager', { 'aria-label': 'Pages' },
    params.get('cursor')
      ? h('a.button', { href: `/console/library${query({ ...apiQuery, cursor: undefined })}`, 'data-nav': true }, 'First page')
      : null,
    page.nextCursor
      ? h('a.button', { href: `/console/library${query({ ...apiQuery, cursor: page.nextCursor })}`, 'data-nav': true, rel: 'next' }, 'Next page')
      : h('span.muted', {}, 'Last page.'));

  fill(results, trash ? null : [bulk, refsOut], table, nav);
}
