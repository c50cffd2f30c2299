// Run: one workflow's artifacts as a tree by path, with details, versions,
// previews, links, "Download all (ZIP)" and drag-and-drop upload.

import { call, listAll } from '../api.js';
import { scopes } from '../auth.js';
import { attempt, downloadVersion, linkMaker, metadataList, showPreview, versionsTable } from '../components.js';
import { fill, h, labels, saveBlob, say, size } from '../dom.js';
import { previewable } from '../preview.js';
import { progressRow, upload } from '../upload.js';

/** Nest artifacts by their path segments. */
export function tree(artifacts) {
  const root = { dirs: new Map(), files: [] };
  for (const a of artifacts) {
    const parts = a.path.split('/');
    let node = root;
    for (const dir of parts.slice(0, -1)) {
      if (!node.dirs.has(dir)) node.dirs.set(dir, { dirs: new Map(), files: [] });
      node = node.dirs.get(dir);
    }
    node.files.push(a);
  }
  return root;
}

function renderTree(node, select, prefix = '') {
  const dirs = [...node.dirs.entries()].sort(([a], [b]) => a.localeCompare(b));
  const files = [...node.files].sort((a, b) => a.path.localeCompare(b.path));
  return h('ul.tree', {},
    dirs.map(([name, child]) => h('li.dir', {},
      h('details', { open: true },
        h('summary', {}, h('span.icon', { 'aria-hidden': 'true' }, '▸ '), `${name}/`),
        renderTree(child, select, `${prefix}${name}/`)))),
    files.map((a) => h('li.file', { dataset: { path: a.path } },
      h('button.file-name', { type: 'button', 'aria-label': `Open ${a.path}`, onclick: () => select(a) }, a.path.slice(prefix.length)),
      h('span.size', {}, size(a.size)),
      h('span.type', {}, a.contentType),
      h('span.version', {}, `v${a.latestVersion}`),
      h('span.atype', {}, a.artifactType),
      labels(a.metadata))));
}

export async function runView(main, wf) {
  const canWrite = scopes().has('artifacts:write');
  // The upload area is built once; the listing below it is redrawn after
  // each upload (the progress rows stay).
  const listing = h('div.listing', {}, h('p.muted', {}, 'Loading…'));
  fill(main, h('h1', {}, `Run ${wf}`), canWrite ? dropZone(wf, () => drawListing(listing, wf, canWrite)) : null, listing);
  await drawListing(listing, wf, canWrite);
}

async function drawListing(listing, wf, canWrite) {
  const { artifacts, complete } = await listAll(`/v1/workflows/${encodeURIComponent(wf)}/artifacts`, { limit: 1000 });
  const total = artifacts.reduce((n, a) => n + Number(a.size || 0), 0);

  const detail = h('section.detail', { 'aria-label': 'Selected artifact' },
    h('p.muted', {}, artifacts.length ? 'Choose a file to see its versions, preview it or share it.' : ''));
  const select = async (a) => {
    const previewArea = h('div.preview', { 'aria-live': 'polite' });
    const placeholder = h('p.muted', {}, 'Loading versions…');
    const heading = h('h2', { tabindex: -1 }, a.path);
    fill(detail, heading, metadataList(a),
      h('div.actions', {},
        h('button', { type: 'button', onclick: () => downloadVersion(a, a.latestVersion) }, 'Download latest'),
        previewable(a) ? h('button', { type: 'button', onclick: () => showPreview(previewArea, a, a.latestVersion, a.size) }, 'Preview') : null,
        h('a.button', { href: `/console/artifacts/${encodeURIComponent(a.artifactId)}`, 'data-nav': true }, 'Artifact page')),
      placeholder, previewArea, linkMaker(a));
    heading.focus();
    const table = await attempt('Loading versions', () => versionsTable(a, previewArea));
    placeholder.replaceWith(table || h('p', {}, 'Versions unavailable.'));
  };

  const downloadAll = h('button', {
    type: 'button',
    disabled: !artifacts.length,
    onclick: () => attempt('Download all', async () => {
      say('Preparing the ZIP of this run…');
      const response = await call(`/v1/workflows/${encodeURIComponent(wf)}/artifacts/bundle`);
      saveBlob(await response.blob(), `${wf}.zip`);
      say('Downloaded the ZIP of this run.');
    }),
  }, 'Download all (ZIP)');

  const body = artifacts.length
    ? renderTree(tree(artifacts), select)
    : h('div.empty', {}, h('p', {}, 'No artifacts in this run yet.'),
      canWrite ? h('p.muted', {}, 'Drop files on the upload area to add some.') : null);

  fill(listing,
    h('p.summary', {}, `${artifacts.length} artifact${artifacts.length === 1 ? '' : 's'}, ${size(total)}`,
      complete ? '' : ' (first 50 pages only)'),
    h('div.toolbar', {}, downloadAll),
    h('div.split', {}, h('section.tree-wrap', { 'aria-label': 'Artifacts by path' }, body), detail));
}

function dropZone(wf, refresh) {
  const prefix = h('input', { id: 'upload-prefix', type: 'text', placeholder: 'e.g. reports/', autocomplete: 'off' });
  const atype = h('input', { id: 'upload-type', type: 'text', placeholder: 'e.g. report', autocomplete: 'off' });
  const picker = h('input', { id: 'upload-files', type: 'file', multiple: true });
  const list = h('ul.uploads', { 'aria-label': 'Uploads' });
  const start = async (files) => {
    if (!files.length) return;
    let ok = 0;
    for (const file of files) {
      const path = `${prefix.value.trim().replace(/^\/+/, '')}${file.webkitRelativePath || file.name}`;
      const row = progressRow(path);
      list.append(row.row);
      try {
        await upload(wf, path, file, { artifactType: atype.value.trim() || undefined, progress: row.update });
        row.done('done');
        ok += 1;
      } catch (err) {
        row.done(`failed: ${err.message}`, false);
        say(`Uploading ${path} failed: ${err.message}`, 'error');
      }
    }
    if (ok) {
      await attempt('Refreshing the run', refresh);
      say(`Uploaded ${ok} file${ok === 1 ? '' : 's'}.`);
    }
  };
  picker.addEventListener('change', () => start([...picker.files]));
  const zone = h('section.dropzone', { 'aria-label': 'Upload files into this run', tabindex: 0 },
    h('p', {}, 'Drop files here to upload them into this run (up to 4 MiB directly, larger ones through object storage).'),
    h('div.fields', {},
      h('label', { for: 'upload-prefix' }, 'Folder'), prefix,
      h('label', { for: 'upload-type' }, 'Artifact type'), atype,
      h('label', { for: 'upload-files' }, 'Or choose files'), picker),
    list);
  zone.addEventListener('dragover', (e) => {
    e.preventDefault();
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    start([...(e.dataTransfer?.files || [])]);
  });
  zone.addEventListener('keydown', (e) => {
    if (e.target === zone && (e.key === 'Enter' || e.key === ' ')) {
      e.preventDefault();
      picker.click();
    }
  });
  return zone;
}

