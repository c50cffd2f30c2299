// Pieces the Run and Artifact views share: the versions table, the link
// maker, the preview panel.

import { getJson, download, versions as fetchVersions } from './api.js';
import { basename, copy, fill, h, labels, saveBlob, say, size, when } from './dom.js';
import { preview, previewable } from './preview.js';

/** Errors of an action shown where the user acted, and announced. */
export async function attempt(what, action) {
  try {
    return await action();
  } catch (err) {
    if (err?.status === 401) return undefined; // back to sign-in already
    say(`${what} failed: ${err.message}`, 'error');
    return undefined;
  }
}

export function versionFileName(artifact, version) {
  const name = basename(artifact.path);
  return version === artifact.latestVersion ? name : name.replace(/(\.[^.]*)?$/, `.v${version}$1`);
}

export async function downloadVersion(artifact, version) {
  await attempt(`Downloading ${artifact.path} v${version}`, async () => {
    say(`Downloading ${artifact.path} (version ${version})…`);
    const blob = await download(artifact.artifactId, version);
    saveBlob(blob, versionFileName(artifact, version));
    say(`Downloaded ${artifact.path} (version ${version}).`);
  });
}

export function metadataList(artifact) {
  const rows = [
    ['Path', artifact.path],
    ['Run', artifact.workflowId],
    ['Artifact type', artifact.artifactType],
    ['Content type', artifact.contentType],
    ['Size', `${size(artifact.size)} (${artifact.size} bytes)`],
    ['Latest version', artifact.latestVersion],
    ['SHA-256', artifact.sha256],
    ['Created', `${when(artifact.createdAt)} by ${artifact.createdBy}`],
    ['Updated', `${when(artifact.updatedAt)} by ${artifact.updatedBy}`],
    ['Artifact id', artifact.artifactId],
  ];
  return h('div', {},
    h('dl.meta', {}, rows.map(([k, v]) => [h('dt', {}, k), h('dd', {}, String(v ?? '–'))])),
    labels(artifact.metadata));
}

/** The version history with a download and a preview per version. */
export async function versionsTable(artifact, previewArea) {
  const list = await fetchVersions(artifact.artifactId);
  return h('table.versions', {},
    h('caption', {}, `Versions of ${artifact.path}`),
    h('thead', {}, h('tr', {}, ['Version', 'Size', 'Created', 'By', 'SHA-256', 'Actions'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, list.map((v) => h('tr', { dataset: { version: v.version } },
      h('td', {}, `v${v.version}`),
      h('td', {}, size(v.size)),
      h('td', {}, when(v.createdAt)),
      h('td', {}, v.createdBy),
      h('td.mono', { title: v.sha256 }, `${v.sha256.slice(0, 12)}…`),
      h('td.row-actions', {},
        h('button', { type: 'button', onclick: () => downloadVersion(artifact, v.version) }, `Download v${v.version}`),
        previewable({ ...artifact, contentType: v.contentType }, v.size) && previewArea
          ? h('button', { type: 'button', onclick: () => showPreview(previewArea, artifact, v.version, v.size) }, `Preview v${v.version}`)
          : null)))));
}

export async function showPreview(area, artifact, version, bytes) {
  fill(area, h('p.muted', {}, 'Loading preview…'));
  await attempt('Preview', async () => {
    const el = await preview(artifact, version, bytes);
    fill(area, h('h3', {}, `Preview: ${artifact.path} (version ${version})`), el);
  });
}

/** Make an expiring link, then show and copy it. */
export function linkMaker(artifact, onCreated) {
  const id = `link-${artifact.artifactId}`;
  const expiry = h('select', { id: `${id}-expiry` },
    h('option', { value: '3600' }, '1 hour'),
    h('option', { value: '86400' }, '1 day'),
    h('option', { value: '604800' }, '7 days'));
  const version = h('select', { id: `${id}-version` },
    h('option', { value: '' }, `Latest (v${artifact.latestVersion})`),
    Array.from({ length: artifact.latestVersion }, (_, i) => artifact.latestVersion - i)
      .map((n) => h('option', { value: String(n) }, `v${n}`)));
  const out = h('div.link-out');
  const form = h('form.link-maker', {
    onsubmit: async (e) => {
      e.preventDefault();
      await attempt('Creating a link', async () => {
        const body = { expiresIn: Number(expiry.value) };
        if (version.value) body.version = Number(version.value);
        const link = await getJson(`/v1/artifacts/${encodeURIComponent(artifact.artifactId)}/links`, { method: 'POST', json: body });
        const input = h('input.link-url', { id: `${id}-url`, type: 'text', readonly: true, value: link.url });
        fill(out,
          h('label', { for: `${id}-url` }, `Link to v${link.version}, expires ${when(link.expiresAt)}`),
          input,
          h('button', { type: 'button', onclick: () => copy(link.url, input) }, 'Copy link'));
        say(`Link created (expires ${when(link.expiresAt)}).`);
        await copy(link.url, input);
        onCreated?.(link);
      });
    },
  },
  h('fieldset', {},
    h('legend', {}, 'Share an expiring link'),
    h('label', { for: `${id}-version` }, 'Version'), version,
    h('label', { for: `${id}-expiry` }, 'Expires in'), expiry,
    h('button', { type: 'submit' }, 'Create link')),
  out);
  return form;
}
