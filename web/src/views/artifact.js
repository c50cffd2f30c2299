// Artifact: metadata, lifecycle (delete / restore / legal hold / retention /
// library / labels, SPEC §12), versions, live links with their use counts
// (revoke), a link maker, previews, and the audit trail (SPEC §13).
//
// What a token may do decides what is offered: write scope sees delete,
// restore, retention, library and labels; admin scope also the legal hold,
// "delete for good" and the audit section. A read-only token sees none of
// them (and never calls a route that would refuse it). The API stays the
// judge: a refusal (409 held, 409 path taken, 410…) is shown as its problem
// text.
//
// A trashed artifact answers 404 like a missing one (SPEC §12): the view
// then looks for it in the trash (GET /v1/artifacts?state=deleted, bounded)
// and shows it as deleted, with "Restore".

import { call, getJson, listAll } from '../api.js';
import { scopes } from '../auth.js';
import { attempt, downloadVersion, linkMaker, metadataList, showPreview, versionsTable } from '../components.js';
import { ask } from '../dialog.js';
import { fill, h, say, when } from '../dom.js';
import { previewable } from '../preview.js';

/** Audit records per page (the API's default is 100; a view wants fewer). */
export const AUDIT_PAGE = 10;
/** Trash pages searched for a deleted artifact (1000 each). */
const TRASH_PAGES = 5;

const idPath = (artifact) => `/v1/artifacts/${encodeURIComponent(artifact.artifactId)}`;

async function linksTable(artifact, container, canWrite) {
  const { links } = await getJson(`${idPath(artifact)}/links`);
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
      h('td', {}, canWrite ? h('button.danger', {
        type: 'button',
        'aria-label': `Revoke link ${l.linkId}`,
        onclick: () => attempt('Revoking the link', async () => {
          await call(`/v1/links/${encodeURIComponent(l.linkId)}`, { method: 'DELETE' });
          say(`Link ${l.linkId} revoked.`);
          await linksTable(artifact, container, canWrite);
        }),
      }, 'Revoke') : null))))));
}

function actorOf(actor) {
  if (!actor) return '–';
  if (actor.sub) return actor.sub;
  if (actor.linkId) return `link ${actor.linkId}`;
  if (actor.system) return `${actor.system} (service)`;
  return '–';
}

function detailsOf(r) {
  return [
    r.linkId && !r.action.startsWith('link.used') ? `link ${r.linkId}` : null,
    r.range ? `bytes ${r.range}` : null,
    r.digest ? `digest ${r.digest.slice(0, 16)}…` : null,
    r.requestId ? `request ${r.requestId}` : null,
  ].filter(Boolean).join(' · ') || '–';
}

/**
 * The artifact's audit records (GET /v1/artifacts/{id}/audit → { records,
 * nextCursor }, newest first), AUDIT_PAGE at a time with "Show older
 * records". Only for artifacts:admin: other tokens see no section (and the
 * route is not called, so no refusal is recorded on their behalf).
 */
async function auditSection(artifact) {
  if (!scopes().has('artifacts:admin')) return null;
  const path = `${idPath(artifact)}/audit`;
  const tbody = h('tbody');
  const more = h('div.pager');
  const table = h('table.audit', {},
    h('caption', {}, 'Audit records, newest first'),
    h('thead', {}, h('tr', {}, ['Time', 'Action', 'Outcome', 'Version', 'Actor', 'Details'].map((c) => h('th', { scope: 'col' }, c)))),
    tbody);
  const section = h('section', { 'aria-labelledby': 'audit-h' }, h('h2', { id: 'audit-h' }, 'Audit'), table, more);

  async function load(cursor) {
    const body = await getJson(`${path}?limit=${AUDIT_PAGE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    for (const r of body.records) {
      tbody.append(h('tr', { dataset: { action: r.action, outcome: r.outcome } },
        h('td', {}, when(r.time)),
        h('td.mono', {}, r.action),
        h('td', {}, r.outcome === 'refused' && r.status ? `refused (${r.status})` : r.outcome),
        h('td', {}, r.version ? `v${r.version}` : '–'),
        h('td', {}, actorOf(r.actor)),
        h('td.details', {}, detailsOf(r))));
    }
    if (!tbody.children.length) fill(more, h('p.empty', {}, 'No audit records.'));
    else if (body.nextCursor) {
      fill(more, h('button', {
        type: 'button',
        onclick: (e) => {
          e.target.disabled = true;
          attempt('Loading older audit records', () => load(body.nextCursor));
        },
      }, 'Show older records'));
    } else fill(more, h('span.muted', {}, 'No older records.'));
  }
  await load();
  return section;
}

/** The trash entry for this id, if it is in the org's trash. */
async function findInTrash(id) {
  const { artifacts } = await listAll('/v1/artifacts', { state: 'deleted', limit: 1000 }, TRASH_PAGES);
  return artifacts.find((a) => a.artifactId === id) || null;
}

function stateBadge(artifact, deleted) {
  if (deleted) return h('span.state.deleted', {}, 'Deleted');
  if (artifact.hold) return h('span.state.held', {}, 'On legal hold');
  return h('span.state.live', {}, 'Live');
}

function lifecycleList(artifact, deleted) {
  const rows = deleted
    ? [
      ['State', 'Deleted (in the trash)'],
      ['Deleted', `${when(artifact.deletedAt)}${artifact.deletedBy ? ` by ${artifact.deletedBy}` : ''}`],
      ['Purged after', when(artifact.purgeAfter)],
    ]
    : [
      ['State', artifact.hold ? 'On legal hold' : 'Live'],
      artifact.hold ? ['Legal hold', `${artifact.hold.reason} (since ${when(artifact.hold.heldAt)} by ${artifact.hold.heldBy})`] : null,
      ['Expires', artifact.expiresAt ? when(artifact.expiresAt) : 'never (kept until deleted)'],
      ['Retention', artifact.retentionDays ? `${artifact.retentionDays} days from the latest version` : '–'],
      ['Keep versions', artifact.keepVersions ? `the ${artifact.keepVersions} newest` : 'all'],
      ['In the library', artifact.library ? 'yes (published)' : 'no'],
    ];
  return h('dl.meta.lifecycle', {}, rows.filter(Boolean).map(([k, v]) => [h('dt', {}, k), h('dd', {}, String(v ?? '–'))]));
}

/** Retention and labels forms (write scope, live artifacts). */
function lifecycleForms(artifact, patch) {
  const days = h('input', { id: 'retention-days', name: 'retentionDays', type: 'number', inputmode: 'numeric', value: artifact.retentionDays ?? '' });
  const retention = h('form', {
    onsubmit: (e) => {
      e.preventDefault();
      const n = days.value.trim();
      patch(n ? { retentionDays: Number(n) } : { expiresAt: null }, n ? `Retention set to ${n} days.` : 'Kept until deleted (no expiry).');
    },
  }, h('fieldset', {},
    h('legend', {}, 'Retention'),
    h('label', { for: 'retention-days' }, 'Days from the latest version (empty: keep until deleted)'), days,
    h('button', { type: 'submit' }, 'Save retention')));

  const key = h('input', { id: 'label-key', name: 'key', required: true, maxlength: 128, autocomplete: 'off' });
  const value = h('input', { id: 'label-value', name: 'value', maxlength: 1024, autocomplete: 'off' });
  const entries = Object.entries(artifact.metadata || {});
  const labelsForm = h('form', {
    onsubmit: (e) => {
      e.preventDefault();
      const k = key.value.trim();
      if (k) patch({ metadata: { [k]: value.value } }, `Label ${k} saved.`);
    },
  }, h('fieldset', {},
    h('legend', {}, 'Labels'),
    entries.length
      ? h('ul.labels.editable', { 'aria-label': 'Labels' }, entries.map(([k, v]) => h('li.label', {}, `${k}=${v}`,
        h('button', { type: 'button', 'aria-label': `Remove label ${k}`, onclick: () => patch({ metadata: { [k]: null } }, `Label ${k} removed.`) }, '×'))))
      : h('span.muted', {}, 'No labels.'),
    h('label', { for: 'label-key' }, 'Key'), key,
    h('label', { for: 'label-value' }, 'Value'), value,
    h('button', { type: 'submit' }, 'Set label')));
  return h('div.lifecycle-forms', {}, retention, labelsForm);
}

/**
 * The lifecycle buttons. `reload(message, hint)` draws the view again and
 * announces the result.
 */
function lifecycleActions(artifact, deleted, reload) {
  const s = scopes();
  const canWrite = s.has('artifacts:write');
  const canAdmin = s.has('artifacts:admin');
  const path = idPath(artifact);
  const name = artifact.path;
  const act = (what, fn) => attempt(what, fn);
  const buttons = [];
  if (deleted) {
    if (canWrite) {
      buttons.push(h('button.primary', {
        type: 'button',
        onclick: () => act('Restoring', async () => {
          await call(`${path}/restore`, { method: 'POST' });
          await reload(`${name} restored with its versions and links.`);
        }),
      }, 'Restore'));
    }
  } else {
    if (canWrite) {
      buttons.push(h('button', {
        type: 'button',
        'aria-pressed': artifact.library ? 'true' : 'false',
        onclick: () => act('Changing the library flag', async () => {
          await call(path, { method: 'PATCH', json: { library: !artifact.library }, extraHeaders: { 'content-type': 'application/merge-patch+json', 'if-match': `"${artifact.latestVersion}"` } });
          await reload(artifact.library ? `${name} removed from the library.` : `${name} published to the library.`);
        }),
      }, 'Publish to library'));
      buttons.push(h('button.danger', {
        type: 'button',
        onclick: async () => {
          const ok = await ask({
            title: `Delete ${name}?`,
            body: 'It moves to the trash with every version and link, and can be restored until it is purged.',
            confirm: 'Move to trash',
            danger: true,
          });
          if (!ok) return;
          await act('Deleting', async () => {
            await call(path, { method: 'DELETE' });
            await reload(`${name} moved to the trash.`, { trashed: { ...artifact, deletedAt: new Date().toISOString() } });
          });
        },
      }, 'Delete…'));
    }
    if (canAdmin && artifact.hold) {
      buttons.push(h('button', {
        type: 'button',
        onclick: async () => {
          const ok = await ask({ title: `Release the legal hold on ${name}?`, body: `Reason given: ${artifact.hold.reason}`, confirm: 'Release hold' });
          if (!ok) return;
          await act('Releasing the hold', async () => {
            await call(`${path}/hold`, { method: 'DELETE' });
            await reload(`The legal hold on ${name} is released.`);
          });
        },
      }, 'Release hold…'));
    } else if (canAdmin) {
      buttons.push(h('button', {
        type: 'button',
        onclick: async () => {
          const ok = await ask({
            title: `Place a legal hold on ${name}?`,
            body: 'While held it cannot be deleted and does not expire.',
            confirm: 'Place hold',
            input: { label: 'Reason (for example a case number)', maxLength: 1024 },
          });
          if (!ok) return;
          await act('Placing the hold', async () => {
            await call(`${path}/hold`, { method: 'PUT', json: { reason: ok.value } });
            await reload(`${name} is on legal hold.`);
          });
        },
      }, 'Place legal hold…'));
    }
  }
  if (canAdmin) {
    buttons.push(h('button.danger', {
      type: 'button',
      onclick: async () => {
        const ok = await ask({
          title: `Delete ${name} for good?`,
          body: 'Every version, its keys and its links are removed now. This cannot be undone.',
          confirm: 'Delete for good',
          danger: true,
        });
        if (!ok) return;
        await act('Deleting for good', async () => {
          await call(`${path}?purge=true`, { method: 'DELETE' });
          await reload(`${name} was deleted for good.`, { purged: true });
        });
      },
    }, 'Delete for good…'));
  }
  return buttons;
}

export async function artifactView(main, id, hint = {}) {
  fill(main, h('h1', {}, 'Artifact'), h('p.muted', {}, 'Loading…'));
  const s = scopes();
  const canWrite = s.has('artifacts:write');
  let artifact;
  let deleted = false;
  try {
    artifact = await getJson(`/v1/artifacts/${encodeURIComponent(id)}`);
  } catch (err) {
    if (err?.status !== 404) throw err;
    if (hint.purged) {
      fill(main, h('h1', { tabindex: -1 }, 'Deleted for good'), h('p', {}, 'This artifact no longer exists. ', h('a', { href: '/console/library', 'data-nav': true }, 'Go to the library')));
      return;
    }
    artifact = (await findInTrash(id).catch(() => null)) || hint.trashed;
    if (!artifact) throw err;
    deleted = true;
  }
  // After an action the view is drawn again: focus goes to its heading (the
  // button that was used may be gone), and the result is announced.
  const reload = async (message, next = {}) => {
    await artifactView(main, id, next);
    main.querySelector('h1')?.focus();
    say(message);
  };
  const patch = (json, message) => attempt('Saving', async () => {
    await call(idPath(artifact), { method: 'PATCH', json, extraHeaders: { 'content-type': 'application/merge-patch+json', 'if-match': `"${artifact.latestVersion}"` } });
    await reload(message);
  });

  const lifecycle = h('section', { 'aria-labelledby': 'life-h' },
    h('h2', { id: 'life-h' }, 'Lifecycle'),
    lifecycleList(artifact, deleted),
    !deleted && canWrite ? lifecycleForms(artifact, patch) : null);
  const head = [
    h('h1', { tabindex: -1 }, artifact.path),
    h('p', {}, stateBadge(artifact, deleted), ' In run ', h('a', { href: `/console/runs/${encodeURIComponent(artifact.workflowId)}`, 'data-nav': true }, artifact.workflowId)),
  ];
  const actions = lifecycleActions(artifact, deleted, reload);

  if (deleted) {
    fill(main, head,
      h('p.warn', {}, `This artifact is in the trash${artifact.purgeAfter ? ` until ${when(artifact.purgeAfter)}` : ''}: its content and links answer 404 until it is restored.`),
      h('div.actions', { role: 'group', 'aria-label': 'Artifact actions' }, actions),
      lifecycle,
      h('section', { 'aria-labelledby': 'meta-h' }, h('h2', { id: 'meta-h' }, 'Metadata'), metadataList(artifact)));
  } else {
    const previewArea = h('div.preview', { 'aria-live': 'polite' });
    const links = h('div.links-wrap', {}, h('p.muted', {}, 'Loading links…'));
    const versions = h('div', {}, h('p.muted', {}, 'Loading versions…'));
    const refresh = () => attempt('Loading links', () => linksTable(artifact, links, canWrite));
    fill(main, head,
      h('div.actions', { role: 'group', 'aria-label': 'Artifact actions' },
        h('button', { type: 'button', onclick: () => downloadVersion(artifact, artifact.latestVersion) }, 'Download latest'),
        previewable(artifact) ? h('button', { type: 'button', onclick: () => showPreview(previewArea, artifact, artifact.latestVersion, artifact.size) }, 'Preview') : null,
        actions),
      lifecycle,
      h('section', { 'aria-labelledby': 'meta-h' }, h('h2', { id: 'meta-h' }, 'Metadata'), metadataList(artifact)),
      previewArea,
      h('section', { 'aria-labelledby': 'versions-h' }, h('h2', { id: 'versions-h' }, 'Versions'), versions),
      h('section', { 'aria-labelledby': 'links-h' }, h('h2', { id: 'links-h' }, 'Links'), links, linkMaker(artifact, refresh)));
    const table = await attempt('Loading versions', () => versionsTable(artifact, previewArea));
    fill(versions, table || h('p', {}, 'Versions unavailable.'));
    await refresh();
  }
  const audit = await attempt('Loading the audit', () => auditSection(artifact));
  if (audit) main.append(audit);
}
