// Upload into a run (SPEC §4): up to 4 MiB straight through the API
// (PUT …/artifacts/{path}); above, a presigned PUT to object storage
// (POST …/uploads), then the upload's status is polled until ingest has
// committed the version. Both with a progress bar.

import { ApiError, encodePath, getJson, send } from './api.js';
import { h } from './dom.js';

export const DIRECT_MAX = 4 * 1024 * 1024;
const FORBIDDEN = new Set(['content-length', 'host', 'connection', 'expect', 'transfer-encoding']);

function problemOf(result) {
  try {
    return JSON.parse(result.body);
  } catch {
    return null;
  }
}

async function sha256Hex(file) {
  const digest = await crypto.subtle.digest('SHA-256', await file.arrayBuffer());
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Upload one file to `path` of workflow `wf`. `progress(loaded, total)` is
 * called as bytes go; resolves when the new version is committed.
 */
export async function upload(wf, path, file, { artifactType, progress, signal } = {}) {
  const contentType = file.type || 'application/octet-stream';
  const base = `/v1/workflows/${encodeURIComponent(wf)}`;
  if (file.size <= DIRECT_MAX) {
    const q = artifactType ? `?artifactType=${encodeURIComponent(artifactType)}` : '';
    const result = await send('PUT', `${base}/artifacts/${encodePath(path)}${q}`, {
      body: file,
      headers: { 'content-type': 'application/octet-stream', 'x-artifact-content-type': contentType },
      onProgress: progress,
    });
    if (result.status === 401) throw new ApiError(401, problemOf(result));
    if (result.status !== 201) throw new ApiError(result.status, problemOf(result));
    return JSON.parse(result.body);
  }
  const sha256 = await sha256Hex(file);
  const session = await getJson(`${base}/uploads`, {
    method: 'POST',
    json: { path, artifactType: artifactType || undefined, contentType, size: file.size, sha256 },
  });
  // The browser sets Content-Length (and Host) itself and refuses scripts
  // that try: pass on the other signed headers.
  const signed = Object.fromEntries(Object.entries(session.headers || {})
    .filter(([name]) => !FORBIDDEN.has(name.toLowerCase())));
  const put = await send(session.method || 'PUT', session.url, {
    body: file,
    headers: signed,
    auth: false,
    onProgress: progress,
  });
  if (put.status < 200 || put.status > 299) {
    throw new Error(`the object store refused the upload (HTTP ${put.status})`);
  }
  // Ingest commits the version shortly after: poll, bounded.
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (signal?.aborted) throw new Error('cancelled');
    const status = await getJson(`${base}/uploads/${encodeURIComponent(session.uploadId)}`);
    if (status.state === 'committed') return status;
    if (status.state === 'rejected' || status.state === 'expired') {
      throw new Error(`upload ${status.state}${status.reason ? `: ${status.reason}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error('the upload was stored but not yet committed after 2 minutes; refresh later');
}

/** A labelled progress row for one file. */
export function progressRow(name) {
  const bar = h('progress', { max: 100, value: 0, 'aria-label': `Uploading ${name}` });
  const note = h('span.note', {}, 'waiting');
  const row = h('li.upload', {}, h('span.name', {}, name), bar, note);
  return {
    row,
    update(loaded, total) {
      const pct = total ? Math.round((loaded / total) * 100) : 0;
      bar.value = pct;
      note.textContent = `${pct}%`;
    },
    done(text, ok = true) {
      if (ok) bar.value = 100;
      note.textContent = text;
      row.classList.add(ok ? 'ok' : 'failed');
    },
  };
}
