// Artifact: metadata, versions, live links with their use counts (revoke),
// a link maker and previews.
//
// Seams for routes being added elsewhere: the audit section appears only
// when GET /v1/artifacts/{id}/audit answers for this token (admin scope).
// Delete / restore / hold are not offered until their routes exist on the
// API: nothing here pretends to do them.

import { answers, call, getJson } from '../api.js';
import { scopes } from '../auth.js';
import { attempt, downloadVersion, linkMaker, metadataList, showPreview, versionsTable } from '../components.js';
import { fill, h, say, when } from '../dom.js';
import { previewable } from '../preview.js';

async function linksTable(artifact, container) {
  const { links } = await getJson(`/v1/artifacts/${encodeURIComponent(artifact.artifactId)}/links`);
  const canRevoke = scopes().has('artifacts:write');
  if (!links.length) {
    fill(container, h('p.empty', {}, 'No live links.'));
    return;
  }
  fill(container, h('table.links', {},
    h('caption', {}, 'Live links'),
    h('thead', {}, h('tr', {}, ['Link', 'Version', 'Created', 'Expires', 'Uses', 'Last used', 'Actions'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, links.map((l) => h('tr', { dataset: { linkId: l.linkId } },
      h('td.mono', {}, l.linkId),
      h('td', {}, `v${l.version}`),
      h('td', {}, `${when(l.createdAt)} by ${l.createdBy}`),
      h('td', {}, when(l.expiresAt)),
      h('td.num.uses', {}, String(l.uses)),
      h('td', {}, when(l.lastUsedAt)),
      h('td', {}, canRevoke ? h('button.danger', {
        type: 'button',
        'aria-label': `Revoke link ${l.linkId}`,
        onclick: () => attempt('Revoking the link', async () => {
          await call(`/v1/links/${encodeURIComponent(l.linkId)}`, { method: 'DELETE' });
          say(`Link ${l.linkId} revoked.`);
          await linksTable(artifact, container);
        }),
      }, 'Revoke') : null))))));
}

async function auditSection(artifact) {
  const path = `/v1/artifacts/${encodeURIComponent(artifact.artifactId)}/audit`;
  if (!scopes().has('artifacts:admin') || !(await answers(path))) return null;
  const body = await getJson(path);
  const records = body.records || body.items || body.audit || [];
  return h('section', { 'aria-labelledby': 'audit-h' },
    h('h2', { id: 'audit-h' }, 'Audit'),
    records.length
      ? h('table.audit', {},
        h('thead', {}, h('tr', {}, ['Time', 'Action', 'Outcome', 'Version', 'Actor'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, records.map((r) => h('tr', {},
          h('td', {}, when(r.time)), h('td', {}, r.action), h('td', {}, r.outcome),
          h('td', {}, r.version ?? '–'), h('td', {}, r.actor?.sub || r.actor?.linkId || '–')))))
      : h('p.empty', {}, 'No audit records.'));
}

export async function artifactView(main, id) {
  fill(main, h('h1', {}, 'Artifact'), h('p.muted', {}, 'Loading…'));
  const artifact = await getJson(`/v1/artifacts/${encodeURIComponent(id)}`);
  const previewArea = h('div.preview', { 'aria-live': 'polite' });
  const links = h('div.links-wrap', {}, h('p.muted', {}, 'Loading links…'));
  const versions = h('div', {}, h('p.muted', {}, 'Loading versions…'));
  const refresh = () => attempt('Loading links', () => linksTable(artifact, links));
  fill(main,
    h('h1', {}, artifact.path),
    h('p', {}, 'In run ', h('a', { href: `/console/runs/${encodeURIComponent(artifact.workflowId)}`, 'data-nav': true }, artifact.workflowId)),
    h('div.actions', {},
      h('button', { type: 'button', onclick: () => downloadVersion(artifact, artifact.latestVersion) }, 'Download latest'),
      previewable(artifact) ? h('button', { type: 'button', onclick: () => showPreview(previewArea, artifact, artifact.latestVersion, artifact.size) }, 'Preview') : null),
    h('section', { 'aria-labelledby': 'meta-h' }, h('h2', { id: 'meta-h' }, 'Metadata'), metadataList(artifact)),
    previewArea,
    h('section', { 'aria-labelledby': 'versions-h' }, h('h2', { id: 'versions-h' }, 'Versions'), versions),
    h('section', { 'aria-labelledby': 'links-h' }, h('h2', { id: 'links-h' }, 'Links'), links, linkMaker(artifact, refresh)));
  const table = await attempt('Loading versions', () => versionsTable(artifact, previewArea));
  fill(versions, table || h('p', {}, 'Versions unavailable.'));
  await refresh();
  const audit = await attempt('Loading the audit', () => auditSection(artifact));
  if (audit) main.append(audit);
}
