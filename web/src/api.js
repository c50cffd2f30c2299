// The API client: same origin, bearer token, problem+json → ApiError.

import { token } from './auth.js';

export class ApiError extends Error {
  constructor(status, problem) {
    const title = problem?.title || `HTTP ${status}`;
    const detail = problem?.detail ? `: ${problem.detail}` : '';
    const field = problem?.field ? ` (field “${problem.field}”)` : '';
    super(`${title}${detail}${field}`);
    this.status = status;
    this.problem = problem;
  }
}

/** Raised on 401: the caller goes back to sign-in. */
export class SignedOut extends ApiError {}

let onSignedOut = () => {};
export function whenSignedOut(handler) {
  onSignedOut = handler;
}

export function encodePath(path) {
  return path.split('/').map(encodeURIComponent).join('/');
}

function headers(extra = {}) {
  const t = token();
  return t ? { authorization: `Bearer ${t}`, ...extra } : { ...extra };
}

async function problemOf(response) {
  const type = response.headers.get('content-type') || '';
  if (type.includes('json')) {
    try {
      return await response.json();
    } catch {
      return null;
    }
  }
  return null;
}

/** fetch an API path; non-2xx throws ApiError (401: SignedOut). */
export async function call(path, { method = 'GET', body, json, signal, extraHeaders } = {}) {
  const init = { method, headers: headers(extraHeaders), signal, cache: 'no-store' };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers['content-type'] ??= 'application/json';
  } else if (body !== undefined) {
    init.body = body;
  }
  const response = await fetch(path, init);
  if (response.ok) return response;
  const problem = await problemOf(response);
  if (response.status === 401) {
    const err = new SignedOut(401, problem);
    onSignedOut(err);
    throw err;
  }
  throw new ApiError(response.status, problem);
}

export async function getJson(path, options) {
  const response = await call(path, options);
  return response.status === 204 ? null : response.json();
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (Array.isArray(v)) v.forEach((x) => q.append(k, x));
    else if (v !== undefined && v !== null && v !== '') q.set(k, v);
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** Every page of a listing (bounded: at most `maxPages`). */
export async function listAll(path, params, maxPages = 50) {
  const artifacts = [];
  let cursor;
  for (let page = 0; page < maxPages; page += 1) {
    const body = await getJson(path + query({ ...params, cursor }));
    artifacts.push(...body.artifacts);
    cursor = body.nextCursor;
    if (!cursor) return { artifacts, complete: true };
  }
  return { artifacts, complete: false };
}

export async function versions(artifactId, maxPages = 20) {
  const all = [];
  let cursor;
  for (let page = 0; page < maxPages; page += 1) {
    const body = await getJson(`/v1/artifacts/${encodeURIComponent(artifactId)}/versions${query({ cursor, limit: 1000 })}`);
    all.push(...body.versions);
    cursor = body.nextCursor;
    if (!cursor) break;
  }
  return all;
}

/** The bytes of one version (the download route; a 303 to object storage is followed). */
export async function download(artifactId, version) {
  const response = await call(`/v1/artifacts/${encodeURIComponent(artifactId)}/download${query({ version })}`);
  return response.blob();
}

/** XHR with upload progress (fetch has none). Resolves with { status, body }. */
export function send(method, url, { body, headers: extra = {}, auth = true, onProgress }) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    const all = auth ? headers(extra) : extra;
    for (const [k, v] of Object.entries(all)) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable && onProgress) onProgress(e.loaded, e.total);
    };
    xhr.onload = () => resolve({ status: xhr.status, body: xhr.responseText, type: xhr.getResponseHeader('content-type') || '' });
    xhr.onerror = () => reject(new Error(`${method} failed: network error`));
    xhr.ontimeout = () => reject(new Error(`${method} timed out`));
    xhr.timeout = 10 * 60 * 1000;
    xhr.send(body);
  });
}
