// The console in a real browser (issue 18, must-show 1–7; SPEC §17).
//
// Run by tests/tests/console.rs, which starts the real handlers behind the
// local gateway on 127.0.0.1 against the emulator and passes:
//   CONSOLE_URL, CONSOLE_TOKEN (acme, read+write), CONSOLE_READER_TOKEN,
//   CONSOLE_ADMIN_TOKEN (acme, read+write+admin),
//   CONSOLE_OTHER_TOKEN (another org), CONSOLE_EXPIRED_TOKEN, CONSOLE_OUT
//   (screenshots), CHROMIUM (Debian's /usr/bin/chromium).
// Playwright drives that Chromium (playwright-core: no browser download);
// axe-core checks each view. Every wait is bounded.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import zlib from 'node:zlib';
import { chromium } from 'playwright-core';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this through tests/tests/console.rs (cargo test -p artifacts-tests --test console)`);
  return value;
};
const BASE = env('CONSOLE_URL').replace(/\/$/, '');
const TOKEN = env('CONSOLE_TOKEN');
const READER = env('CONSOLE_READER_TOKEN');
const OTHER = env('CONSOLE_OTHER_TOKEN');
const ADMIN = env('CONSOLE_ADMIN_TOKEN');
const EXPIRED = env('CONSOLE_EXPIRED_TOKEN');
const OUT = env('CONSOLE_OUT');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run',
];
const WAIT = 20_000;
const MiB = 1024 * 1024;

const require = createRequire(import.meta.url);
const AXE = await readFile(require.resolve('axe-core/axe.min.js'), 'utf8');

// ---------------------------------------------------------------- helpers

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');
const encodePath = (p) => p.split('/').map(encodeURIComponent).join('/');

async function api(path, { token = TOKEN, method = 'GET', body, headers = {} } = {}) {
  return fetch(BASE + path, {
    method, body, headers: { authorization: `Bearer ${token}`, ...headers }, signal: AbortSignal.timeout(WAIT * 3),
  });
}

async function put(wf, path, bytes, contentType, { type = 'file', labels = {} } = {}) {
  const headers = { 'content-type': 'application/octet-stream', 'x-artifact-content-type': contentType };
  for (const [k, v] of Object.entries(labels)) headers[`x-artifact-meta-${k}`] = v;
  const r = await api(`/v1/workflows/${wf}/artifacts/${encodePath(path)}?artifactType=${type}`, { method: 'PUT', body: bytes, headers });
  const text = await r.text();
  assert.equal(r.status, 201, `PUT ${path}: ${text}`);
  return JSON.parse(text);
}

/** Seed a file over the direct limit: presigned PUT, then ingest (the poller). */
async function putLarge(wf, path, bytes, contentType, type = 'data') {
  const r = await api(`/v1/workflows/${wf}/uploads`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ path, artifactType: type, contentType, size: bytes.length, sha256: sha256(bytes) }),
  });
  const session = await r.json();
  assert.ok(r.ok, `POST uploads: ${JSON.stringify(session)}`);
  const s3 = await fetch(session.url, { method: session.method, headers: session.headers, body: bytes, signal: AbortSignal.timeout(WAIT * 3) });
  assert.ok(s3.ok, `staged PUT: ${s3.status} ${await s3.text()}`);
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const status = await (await api(`/v1/workflows/${wf}/uploads/${session.uploadId}`)).json();
    if (status.state === 'committed') return status;
    assert.ok(status.state === 'pending', JSON.stringify(status));
    await new Promise((res) => setTimeout(res, 250));
  }
  throw new Error(`${path} was not ingested within 60 s`);
}

async function listAll(path) {
  const ids = [];
  let cursor;
  for (let i = 0; i < 100; i += 1) {
    const sep = path.includes('?') ? '&' : '?';
    const r = await api(cursor ? `${path}${sep}cursor=${encodeURIComponent(cursor)}` : path);
    const body = await r.json();
    assert.equal(r.status, 200, JSON.stringify(body));
    ids.push(...body.artifacts.map((a) => a.artifactId));
    cursor = body.nextCursor;
    if (!cursor) return ids;
  }
  throw new Error('listing did not end in 100 pages');
}

// A PNG of w×h, made here (CRC-32 and zlib from node).
const CRC = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}
function png(w, h) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y += 1) {
    for (let x = 0; x < w; x += 1) {
      const o = y * (w * 3 + 1) + 1 + x * 3;
      raw[o] = (x * 4) & 255;
      raw[o + 1] = (y * 4) & 255;
      raw[o + 2] = 160;
    }
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** The entries of a ZIP (stored or deflated; ZIP64 extra fields read). */
function unzip(buf) {
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 65_557); i -= 1) {
    if (buf.readUInt32LE(i) === 0x06054b50) { eocd = i; break; }
  }
  assert.ok(eocd >= 0, 'no end of central directory');
  let offset = buf.readUInt32LE(eocd + 16);
  if (offset === 0xffffffff) {
    const loc = eocd - 20;
    assert.equal(buf.readUInt32LE(loc), 0x07064b50, 'ZIP64 locator');
    const eocd64 = Number(buf.readBigUInt64LE(loc + 8));
    offset = Number(buf.readBigUInt64LE(eocd64 + 48));
  }
  const entries = new Map();
  while (buf.readUInt32LE(offset) === 0x02014b50) {
    const method = buf.readUInt16LE(offset + 10);
    let compressed = buf.readUInt32LE(offset + 20);
    let size = buf.readUInt32LE(offset + 24);
    const nameLen = buf.readUInt16LE(offset + 28);
    const extraLen = buf.readUInt16LE(offset + 30);
    const commentLen = buf.readUInt16LE(offset + 32);
    let local = buf.readUInt32LE(offset + 42);
    const name = buf.subarray(offset + 46, offset + 46 + nameLen).toString('utf8');
    let e = offset + 46 + nameLen;
    const end = e + extraLen;
    while (e < end) {
      const id = buf.readUInt16LE(e);
      const len = buf.readUInt16LE(e + 2);
      if (id === 0x0001) {
        let p = e + 4;
        if (size === 0xffffffff) { size = Number(buf.readBigUInt64LE(p)); p += 8; }
        if (compressed === 0xffffffff) { compressed = Number(buf.readBigUInt64LE(p)); p += 8; }
        if (local === 0xffffffff) { local = Number(buf.readBigUInt64LE(p)); }
      }
      e += 4 + len;
    }
    assert.equal(buf.readUInt32LE(local), 0x04034b50, `local header of ${name}`);
    const start = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    const data = buf.subarray(start, start + compressed);
    const bytes = method === 0 ? Buffer.from(data) : zlib.inflateRawSync(data);
    assert.equal(bytes.length, size, `size of ${name}`);
    entries.set(name, bytes);
    offset = end + commentLen;
  }
  return entries;
}

// ---------------------------------------------------------------- the browser

const browsers = [];
async function launch() {
  const dir = await mkdtemp(join(tmpdir(), 'console-chromium-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM, args: ARGS, headless: true, acceptDownloads: true,
    viewport: { width: 1360, height: 900 }, timeout: WAIT,
  });
  context.setDefaultTimeout(WAIT);
  context.setDefaultNavigationTimeout(WAIT);
  const problems = [];
  const watch = (page) => {
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('console', (msg) => {
      if (/Content Security Policy|Refused to/i.test(msg.text())) problems.push(`CSP: ${msg.text()}`);
    });
    page.on('dialog', (d) => { problems.push(`a dialog opened: ${d.message()}`); d.dismiss().catch(() => {}); });
  };
  context.pages().forEach(watch);
  context.on('page', watch);
  const b = { context, dir, problems };
  browsers.push(b);
  return b;
}

/** The signed-in tab (sessionStorage, and so the session, is per tab). */
async function page(browser) {
  return browser.context.pages()[0] || browser.context.newPage();
}

/** axe-core on the current view (no serious/critical violation), and a screenshot. */
async function check(p, name) {
  await p.evaluate(AXE); // evaluated by the driver, not injected as an inline script
  const result = await p.evaluate(async () => window.axe.run(document, { resultTypes: ['violations'] }));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  await p.screenshot({ path: join(OUT, `${name}.png`), fullPage: true });
  assert.deepEqual(
    bad.map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`),
    [], `axe on ${name}`,
  );
  return result.violations.length;
}

async function downloadBy(p, action) {
  const [download] = await Promise.all([p.waitForEvent('download', { timeout: WAIT * 2 }), action()]);
  const path = await download.path();
  return { bytes: await readFile(path), name: download.suggestedFilename() };
}

// ---------------------------------------------------------------- the data

const WF = `wf-console-${randomBytes(3).toString('hex')}`;
const LIB = `wf-library-${randomBytes(3).toString('hex')}`;
const TF = ['terraform { required_version = ">= 1.5" }\n', 'resource "aws_s3_bucket" "a" {}\n', 'resource "aws_s3_bucket" "a" {}\nresource "aws_sqs_queue" "q" {}\n']
  .map((s) => Buffer.from(s));
const EVIL = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"><b>bold?</b>\n';
const FILES = {
  'docs/prd.md': [Buffer.from('# PRD\n\nThe *console* shows artifacts.\n'), 'text/markdown', 'prd'],
  'reports/scan/report.json': [Buffer.from(JSON.stringify({ tool: 'scanner', findings: [{ id: 'F-1', severity: 'low' }] })), 'application/json', 'report'],
  'reports/scan/results.csv': [Buffer.from('id,severity,title\nF-1,low,"Bucket, not encrypted"\n'), 'text/csv', 'report'],
  'notes/evil.html': [Buffer.from(EVIL), 'text/html', 'note'],
  'diagrams/arch.png': [png(64, 48), 'image/png', 'diagram'],
};
const BIG = randomBytes(10 * MiB);
const ids = {};
let main;
let fresh;

before(async () => {
  await mkdir(OUT, { recursive: true });
  for (const [path, [bytes, type, atype]] of Object.entries(FILES)) {
    const labels = path.endsWith('.json') ? { severity: 'low', tool: 'scanner' } : {};
    ids[path] = (await put(WF, path, bytes, type, { type: atype, labels })).artifact.artifactId;
  }
  for (const bytes of TF) ids['infra/main.tf'] = (await put(WF, 'infra/main.tf', bytes, 'text/plain', { type: 'terraform' })).artifact.artifactId;
  await putLarge(WF, 'data/big.bin', BIG, 'application/octet-stream');
  for (let i = 0; i < 5; i += 1) {
    await put(LIB, `lib/item-${i}.txt`, Buffer.from(`item ${i}\n`), 'text/plain', { type: i % 2 ? 'report' : 'doc' });
  }
  main = await launch();
  fresh = await launch();
});

after(async () => {
  for (const b of browsers) {
    await b.context.close().catch(() => {});
    await rm(b.dir, { recursive: true, force: true }).catch(() => {});
  }
});

function noProblems() {
  for (const b of browsers) assert.deepEqual(b.problems, [], 'page errors, CSP violations or dialogs');
}

// ---------------------------------------------------------------- must-show

test('1. sign in with the dev token URL; the token leaves the address bar and the history', async () => {
  const p = await page(main);
  await p.goto(`${BASE}/console/library`);
  await p.getByRole('heading', { name: 'Sign in' }).waitFor();
  await check(p, '0-sign-in');

  await p.goto(`${BASE}/#token=${TOKEN}`);
  await p.getByRole('heading', { name: 'Artifact library' }).waitFor();
  assert.ok(!p.url().includes('token') && !p.url().includes(TOKEN.slice(0, 24)), p.url());
  const cdp = await main.context.newCDPSession(p);
  const { entries } = await cdp.send('Page.getNavigationHistory');
  assert.ok(entries.length >= 2, JSON.stringify(entries.map((e) => e.url)));
  for (const e of entries) assert.ok(!e.url.includes('token=') && !e.url.includes(TOKEN.slice(0, 24)), `history has ${e.url}`);
  await cdp.detach();
  assert.equal(await p.evaluate(() => sessionStorage.getItem('artifacts.token')), TOKEN);
  // A reload keeps the session (sessionStorage), still without the token in the URL.
  await p.reload();
  await p.getByRole('heading', { name: 'Artifact library' }).waitFor();
  await p.locator('table.library').waitFor();
  assert.ok(!p.url().includes('token'));
  await check(p, '1-library');
  noProblems();
});

test('2. run: tree, version download, download all (ZIP), safe previews', async () => {
  const p = await page(main);
  await p.goto(`${BASE}/console/runs/${WF}`);
  await p.getByRole('heading', { name: `Run ${WF}` }).waitFor();
  const paths = [...Object.keys(FILES), 'infra/main.tf', 'data/big.bin'];
  for (const path of paths) await p.locator(`li.file[data-path="${path}"]`).waitFor();
  for (const dir of ['docs/', 'reports/', 'scan/', 'notes/', 'diagrams/', 'infra/', 'data/']) {
    await p.locator('summary', { hasText: dir }).first().waitFor();
  }
  // Nested: scan/ inside reports/.
  assert.equal(await p.locator('li.dir:has(> details > summary:has-text("reports/")) li.file[data-path="reports/scan/report.json"]').count(), 1);
  const tf = await p.locator('li.file[data-path="infra/main.tf"]').innerText();
  assert.match(tf, /v3/);
  assert.match(await p.locator('li.file[data-path="data/big.bin"]').innerText(), /10 MiB/);
  assert.match(await p.locator('li.file[data-path="diagrams/arch.png"]').innerText(), /image\/png/);
  assert.match(await p.locator('li.file[data-path="reports/scan/report.json"]').innerText(), /severity=low/);

  // Version history, and version 2 downloads exactly its bytes.
  await p.getByRole('button', { name: 'Open infra/main.tf' }).click();
  await p.locator('table.versions tbody tr').nth(2).waitFor();
  assert.equal(await p.locator('table.versions tbody tr').count(), 3);
  const v2 = await downloadBy(p, () => p.getByRole('button', { name: 'Download v2', exact: true }).click());
  assert.deepEqual(v2.bytes, TF[1]);
  assert.equal(v2.name, 'main.v2.tf');

  // JSON preview: the text, pretty-printed.
  await p.getByRole('button', { name: 'Open reports/scan/report.json' }).click();
  await p.getByRole('button', { name: 'Preview', exact: true }).click();
  const json = p.locator('.preview pre[data-kind="json"]');
  await json.waitFor();
  assert.deepEqual(JSON.parse(await json.innerText()), JSON.parse(FILES['reports/scan/report.json'][0].toString()));

  // CSV as a table of text cells.
  await p.getByRole('button', { name: 'Open reports/scan/results.csv' }).click();
  await p.getByRole('button', { name: 'Preview', exact: true }).click();
  await p.locator('.preview table.csv').waitFor();
  assert.equal(await p.locator('.preview table.csv td').nth(2).innerText(), 'Bucket, not encrypted');

  // A file holding <script> (stored as text/html) shows as text; nothing runs.
  await p.getByRole('button', { name: 'Open notes/evil.html' }).click();
  await p.getByRole('button', { name: 'Preview', exact: true }).click();
  const evil = p.locator('.preview pre');
  await evil.waitFor();
  assert.equal(await evil.evaluate((el) => el.textContent), EVIL);
  assert.equal(await p.locator('.preview script, .preview img, .preview b').count(), 0);
  await new Promise((res) => setTimeout(res, 300));
  assert.equal(await p.evaluate(() => window.__pwned), undefined);

  // An image, from a blob: URL.
  await p.getByRole('button', { name: 'Open diagrams/arch.png' }).click();
  await p.getByRole('button', { name: 'Preview', exact: true }).click();
  const img = p.locator('.preview img.preview-image');
  await img.waitFor();
  await p.waitForFunction(() => document.querySelector('.preview img')?.naturalWidth > 0, null, { timeout: WAIT });
  assert.equal(await img.evaluate((el) => el.naturalWidth), 64);

  // Back to the JSON preview for the screenshot.
  await p.getByRole('button', { name: 'Open reports/scan/report.json' }).click();
  await p.getByRole('button', { name: 'Preview', exact: true }).click();
  await p.locator('.preview pre[data-kind="json"]').waitFor();
  await check(p, '2-run');

  // Download all: a ZIP whose entries are the stored bytes (latest versions).
  const zip = await downloadBy(p, () => p.getByRole('button', { name: 'Download all (ZIP)' }).click());
  assert.equal(zip.name, `${WF}.zip`);
  const entries = unzip(zip.bytes);
  const expected = new Map([
    ...Object.entries(FILES).map(([path, [bytes]]) => [path, bytes]),
    ['infra/main.tf', TF[2]],
    ['data/big.bin', BIG],
  ]);
  // The bundle starts with its manifest and the manifest's signature (SPEC §18).
  assert.deepEqual([...entries.keys()].slice(0, 2), ['MANIFEST.json', 'MANIFEST.json.sig']);
  const names = [...entries.keys()].filter((n) => !n.startsWith('MANIFEST.json')).sort();
  assert.deepEqual(names, [...expected.keys()].sort());
  for (const [path, bytes] of expected) {
    assert.ok(entries.get(path).equals(bytes), `${path} in the ZIP differs from the stored bytes`);
  }
  noProblems();
});

test('3. library: filters give what the API gives; paging reaches every artifact once', async () => {
  const p = await page(main);
  async function collect() {
    const seen = [];
    for (let i = 0; i < 50; i += 1) {
      await p.locator('nav.pager').waitFor();
      seen.push(...await p.locator('table.library tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.artifactId)));
      const next = p.getByRole('link', { name: 'Next page' });
      if (!(await next.count())) return seen;
      await next.click();
    }
    throw new Error('more than 50 pages');
  }

  // Everything, two a page.
  await p.goto(`${BASE}/console/library`);
  await p.locator('nav.pager').waitFor();
  await p.getByLabel('Per page').selectOption('2');
  await p.getByRole('button', { name: 'Apply filters' }).click();
  const all = await collect();
  const apiAll = await listAll('/v1/artifacts?limit=2');
  assert.deepEqual(all, apiAll);
  assert.equal(new Set(all).size, all.length, 'an artifact shown twice');
  assert.equal(all.length, Object.keys(FILES).length + 2 + 5);

  // Filters: type and run, and a prefix; the same artifacts in the same order.
  for (const [label, value, q] of [
    ['Artifact type', 'report', 'artifactType=report'],
    ['Run (workflow id)', LIB, `workflowId=${LIB}`],
    ['Path prefix', 'reports/', 'prefix=reports%2F'],
  ]) {
    await p.goto(`${BASE}/console/library`);
    await p.locator('nav.pager').waitFor();
    await p.getByLabel(label, { exact: true }).fill(value);
    await p.getByLabel('Per page').selectOption('2');
    await p.getByRole('button', { name: 'Apply filters' }).click();
    const shown = await collect();
    const fromApi = await listAll(`/v1/artifacts?${q}&limit=2`);
    assert.ok(fromApi.length > 0, q);
    assert.deepEqual(shown, fromApi, q);
  }

  // Bulk: select two, copy their refs.
  await p.goto(`${BASE}/console/library?workflowId=${LIB}`);
  await p.locator('table.library').waitFor();
  const boxes = p.locator('table.library tbody input[type=checkbox]');
  await boxes.nth(0).check();
  await boxes.nth(1).check();
  await p.getByRole('button', { name: 'Copy refs' }).click();
  const refs = (await p.locator('textarea.refs').inputValue()).split('\n');
  assert.equal(refs.length, 2);
  for (const r of refs) assert.match(r, new RegExp(`^artifact://${LIB}/lib/item-\\d\\.txt@1$`));
  await check(p, '3-library-selected');
  noProblems();
});

test('3b. library sort gives what the API gives (createdAt, path within a run and across runs, size; both ways)', async () => {
  const p = await page(main);
  const shownIds = () => p.locator('table.library tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.artifactId));
  async function sortBy(sort, order, run) {
    await p.goto(`${BASE}/console/library`);
    await p.locator('form.filters').waitFor();
    if (run) await p.getByLabel('Run (workflow id)', { exact: true }).fill(run);
    await p.getByLabel('Sort by').selectOption(sort);
    await p.getByLabel('Order').selectOption(order);
    await p.getByRole('button', { name: 'Apply filters' }).click();
    await p.waitForURL((u) => u.searchParams.get('sort') === sort && u.searchParams.get('order') === order);
    await p.locator('nav.pager').waitFor();
    return shownIds();
  }
  const asc = await sortBy('createdAt', 'asc');
  assert.deepEqual(asc, await listAll('/v1/artifacts?sort=createdAt&order=asc'));
  const desc = await sortBy('createdAt', 'desc');
  assert.deepEqual(desc, await listAll('/v1/artifacts?sort=createdAt&order=desc'));
  assert.ok(asc.length > 2);
  assert.deepEqual(asc, [...desc].reverse(), 'ascending is descending reversed');

  // By path within one run: differs from the creation order of the seed.
  const byPath = await sortBy('path', 'asc', WF);
  assert.deepEqual(byPath, await listAll(`/v1/artifacts?workflowId=${WF}&sort=path&order=asc`));
  const paths = await p.locator('table.library tbody tr td:nth-child(2)').allInnerTexts();
  assert.deepEqual(paths, [...paths].sort(), 'rows in path order');
  assert.notDeepEqual(byPath, await listAll(`/v1/artifacts?workflowId=${WF}&sort=createdAt&order=asc`), 'path order is not creation order here');

  // Path across runs and size, each both ways: what the API gives.
  for (const sort of ['path', 'size']) {
    const up = await sortBy(sort, 'asc');
    assert.deepEqual(up, await listAll(`/v1/artifacts?sort=${sort}&order=asc`), `sort=${sort} asc`);
    const down = await sortBy(sort, 'desc');
    assert.deepEqual(down, await listAll(`/v1/artifacts?sort=${sort}&order=desc`), `sort=${sort} desc`);
    assert.deepEqual(up, [...down].reverse(), `sort=${sort}: ascending is descending reversed`);
  }
  noProblems();
});

test('3c. a ZIP of a selection across two runs holds exactly the stored bytes', async () => {
  const p = await page(main);
  await p.goto(`${BASE}/console/library`);
  await p.locator('table.library').waitFor();
  const picks = [[WF, 'docs/prd.md', FILES['docs/prd.md'][0]], [WF, 'infra/main.tf', TF[2]], [LIB, 'lib/item-3.txt', Buffer.from('item 3\n')]];
  const zipButton = p.getByRole('button', { name: 'Download selected (ZIP)' });
  assert.ok(await zipButton.isDisabled(), 'nothing selected: no ZIP');
  for (const [wf, path] of picks) await p.getByRole('checkbox', { name: `Select ${wf}/${path}` }).check();
  const zip = await downloadBy(p, () => zipButton.click());
  assert.equal(zip.name, 'artifacts-selection.zip');
  const entries = unzip(zip.bytes);
  assert.deepEqual([...entries.keys()].sort(), picks.map(([wf, path]) => `${wf}/${path}`).sort());
  for (const [wf, path, bytes] of picks) assert.ok(entries.get(`${wf}/${path}`).equals(bytes), `${wf}/${path} differs`);
  await p.getByText('Saved a ZIP of 3 artifacts').waitFor();

  // Over the cap: refused with the message, nothing downloaded. (The
  // listing is rewritten in flight so one artifact claims 600 MiB: the cap
  // is the console's own check of the listed sizes.)
  await p.route(/\/v1\/artifacts(\?|$)/, async (route) => {
    const response = await route.fetch();
    const body = await response.json();
    body.artifacts = body.artifacts.map((a) => (a.path === 'data/big.bin' ? { ...a, size: 600 * MiB } : a));
    await route.fulfill({ response, json: body });
  });
  await p.reload();
  await p.locator('table.library').waitFor();
  await p.getByRole('checkbox', { name: `Select ${WF}/data/big.bin` }).check();
  await p.getByRole('checkbox', { name: `Select ${WF}/docs/prd.md` }).check();
  let downloads = 0;
  p.on('download', () => { downloads += 1; });
  await zipButton.click();
  const refused = p.locator('#status .error');
  await refused.waitFor();
  assert.match(await refused.innerText(), /The selection is 600 MiB: a ZIP built in the browser holds at most 512 MiB/);
  await new Promise((res) => setTimeout(res, 500));
  assert.equal(downloads, 0, 'nothing was downloaded over the cap');
  await p.unroute(/\/v1\/artifacts(\?|$)/);
  noProblems();
});

test('4. link: create, copy, open without a token → the bytes; revoke → 410', async () => {
  const p = await page(main);
  await main.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: BASE });
  await p.goto(`${BASE}/console/artifacts/${ids['docs/prd.md']}`);
  await p.getByRole('heading', { name: 'docs/prd.md' }).waitFor();
  await p.getByText('No live links.').waitFor();
  await p.getByRole('button', { name: 'Create link' }).click();
  const input = p.locator('input.link-url');
  await input.waitFor();
  const url = await input.inputValue();
  assert.ok(url.startsWith(`${BASE}/v1/links/`), url);
  assert.equal(await p.evaluate(() => navigator.clipboard.readText()), url, 'the link was copied');

  // A fresh browser (own profile, no token): the bytes.
  const other = await fresh.context.newPage();
  const got = await downloadBy(other, () => other.goto(url).catch(() => {}));
  assert.deepEqual(got.bytes, FILES['docs/prd.md'][0]);

  // The link shows one use; revoke it.
  await p.reload();
  const row = p.locator('table.links tbody tr');
  await row.first().waitFor();
  assert.equal(await row.count(), 1);
  assert.equal(await row.locator('td.uses').innerText(), '1');
  await check(p, '4-artifact');
  await row.getByRole('button', { name: /^Revoke link/ }).click();
  await p.getByText('No live links.').waitFor();

  const gone = await other.goto(url);
  assert.equal(gone.status(), 410);
  await other.screenshot({ path: join(OUT, '4-link-revoked-410.png') });
  await other.close();
  noProblems();
});

test('5. drag-and-drop upload of 6 MiB shows progress and the new version appears', async () => {
  const p = await page(main);
  await p.goto(`${BASE}/console/runs/${WF}`);
  await p.locator('.dropzone').waitFor();
  const bytes = randomBytes(6 * MiB);
  await p.getByLabel('Folder').fill('uploads/');
  await p.evaluate(() => {
    window.__progress = [];
    new MutationObserver((records) => {
      for (const r of records) {
        if (r.target.tagName === 'PROGRESS') window.__progress.push(Number(r.target.getAttribute('value')));
        for (const n of r.addedNodes || []) {
          if (n.querySelector?.('progress')) window.__progress.push(Number(n.querySelector('progress').getAttribute('value')));
        }
      }
    }).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['value'] });
  });
  const transfer = await p.evaluateHandle((b64) => {
    const bin = atob(b64);
    const u8 = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i += 1) u8[i] = bin.charCodeAt(i);
    const dt = new DataTransfer();
    dt.items.add(new File([u8], 'big-6mib.bin', { type: 'application/octet-stream' }));
    return dt;
  }, bytes.toString('base64'));
  // Loopback is too fast to see a bar move: upload at 8 MiB/s (Chromium's
  // own network emulation), so the 6 MiB take most of a second.
  const cdp = await main.context.newCDPSession(p);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 8 * MiB,
  });
  await p.locator('.dropzone').dispatchEvent('dragover', { dataTransfer: transfer });
  await p.locator('.dropzone').dispatchEvent('drop', { dataTransfer: transfer });
  await p.locator('li.upload').waitFor();
  await p.locator('li.upload.ok, li.upload.failed').waitFor({ timeout: 90_000 });
  assert.equal(await p.locator('li.upload .note').innerText(), 'done');
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1,
  });
  await cdp.detach();
  const progress = await p.evaluate(() => window.__progress);
  console.log(`progress values seen: ${JSON.stringify(progress)}`);
  assert.equal(progress[0], 0, 'the bar starts at 0');
  assert.equal(progress.at(-1), 100, 'the bar ends at 100');
  assert.ok(progress.some((v) => v > 0 && v < 100), `the bar moved in between: ${progress}`);
  for (let i = 1; i < progress.length; i += 1) assert.ok(progress[i] >= progress[i - 1], `never backwards: ${progress}`);
  const row = p.locator('li.file[data-path="uploads/big-6mib.bin"]');
  await row.waitFor();
  assert.match(await row.innerText(), /6\.0 MiB/);
  await check(p, '5-run-after-upload');

  // The API has exactly those bytes as version 1.
  const listing = await (await api(`/v1/workflows/${WF}/artifacts?prefix=uploads/`)).json();
  assert.equal(listing.artifacts.length, 1);
  assert.equal(listing.artifacts[0].sha256, sha256(bytes));
  assert.equal(listing.artifacts[0].size, bytes.length);
  assert.equal(listing.artifacts[0].latestVersion, 1);
  noProblems();
});

test('6. another org sees none of it; an expired token returns to sign-in', async () => {
  const p = await fresh.context.newPage();
  await p.goto(`${BASE}/#token=${OTHER}`);
  await p.getByRole('heading', { name: 'Artifact library' }).waitFor();
  await p.getByText('No artifacts match these filters.').waitFor();
  await p.goto(`${BASE}/console/runs/${WF}`);
  await p.getByText('No artifacts in this run yet.').waitFor();
  assert.equal(await p.locator('li.file').count(), 0);
  await check(p, '6-run-empty-other-org');
  await p.goto(`${BASE}/console/artifacts/${ids['docs/prd.md']}`);
  await p.getByRole('heading', { name: 'Not found' }).waitFor();
  await p.close();

  // A reader sees the run but no upload area.
  const r = await fresh.context.newPage();
  await r.goto(`${BASE}/console/runs/${WF}#token=${READER}`);
  await r.locator('li.file[data-path="docs/prd.md"]').waitFor();
  assert.equal(await r.locator('.dropzone').count(), 0);
  await r.close();

  const e = await fresh.context.newPage();
  await e.goto(`${BASE}/#token=${EXPIRED}`);
  await e.getByRole('heading', { name: 'Sign in' }).waitFor();
  await e.getByRole('alert').filter({ hasText: 'session has ended' }).waitFor();
  assert.ok(!e.url().includes('token'));
  assert.equal(await e.evaluate(() => sessionStorage.getItem('artifacts.token')), null);
  await check(e, '6-expired-sign-in');
  await e.close();
  noProblems();
});

test('7. lifecycle: delete / restore / legal hold / library / labels / retention, and the audit trail', async () => {
  const LIFE = `wf-life-${randomBytes(3).toString('hex')}`;
  const BYTES = Buffer.from('life report\n');
  const { artifact } = await put(LIFE, 'life/report.txt', BYTES, 'text/plain', { type: 'report' });
  const id = artifact.artifactId;
  const status = () => p.locator('#status');
  const state = async () => (await api(`/v1/artifacts/${id}`)).status;

  const p = await fresh.context.newPage();
  await p.goto(`${BASE}/console/artifacts/${id}#token=${ADMIN}`);
  await p.getByRole('heading', { name: 'life/report.txt' }).waitFor();
  await p.locator('.state.live').waitFor();

  // A download and a link through the UI (both audited).
  const got = await downloadBy(p, () => p.getByRole('button', { name: 'Download latest' }).click());
  assert.deepEqual(got.bytes, BYTES);
  await p.getByRole('button', { name: 'Create link' }).click();
  await p.locator('input.link-url').waitFor();

  // Delete: a modal dialog; Escape cancels and nothing changes.
  await p.getByRole('button', { name: 'Delete…' }).click();
  const dialog = p.getByRole('dialog', { name: 'Delete life/report.txt?' });
  await dialog.waitFor();
  await check(p, '7-delete-dialog');
  await p.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached' });
  assert.equal(await state(), 200, 'cancel deleted nothing');
  // By keyboard: Enter opens, focus starts on Cancel, Tab → "Move to trash", Enter.
  await p.getByRole('button', { name: 'Delete…' }).focus();
  await p.keyboard.press('Enter');
  await dialog.waitFor();
  assert.equal(await p.evaluate(() => document.activeElement.textContent), 'Cancel');
  await p.keyboard.press('Tab');
  assert.equal(await p.evaluate(() => document.activeElement.textContent), 'Move to trash');
  await p.keyboard.press('Enter');
  await p.locator('.state.deleted').waitFor();
  await status().getByText('life/report.txt moved to the trash.').waitFor();
  assert.equal(await p.evaluate(() => document.activeElement.tagName), 'H1', 'focus moves to the redrawn view');
  assert.equal(await state(), 404, 'deleted: the plain 404');
  // The library's trash lists it (and the live library does not).
  await p.goto(`${BASE}/console/library`);
  await p.getByLabel('Show').selectOption('deleted');
  await p.getByRole('button', { name: 'Apply filters' }).click();
  await p.waitForURL((u) => u.searchParams.get('state') === 'deleted');
  await p.locator(`table.library tbody tr[data-artifact-id="${id}"]`).waitFor();
  assert.equal(await p.getByRole('button', { name: 'Download selected (ZIP)' }).count(), 0, 'nothing to bundle in the trash');
  await check(p, '7-library-trash');
  await p.goto(`${BASE}/console/library`);
  await p.locator('table.library').waitFor();
  assert.equal(await p.locator(`table.library tbody tr[data-artifact-id="${id}"]`).count(), 0);
  // Its page (the API answers 404) finds it in the trash.
  await p.goto(`${BASE}/console/artifacts/${id}`);
  await p.locator('.state.deleted').waitFor();
  await p.getByText(/in the trash until/).waitFor();
  await check(p, '7-artifact-deleted');
  await p.getByRole('button', { name: 'Restore' }).click();
  await p.locator('.state.live').waitFor();
  assert.equal(await state(), 200, 'restored');

  // Legal hold: a reason is required; then delete is refused with the API's words.
  await p.getByRole('button', { name: 'Place legal hold…' }).click();
  const holdDialog = p.getByRole('dialog', { name: 'Place a legal hold on life/report.txt?' });
  await holdDialog.getByLabel('Reason (for example a case number)').fill('case 42');
  await holdDialog.getByRole('button', { name: 'Place hold' }).click();
  await p.locator('.state.held', { hasText: 'On legal hold' }).waitFor();
  await p.getByText(/case 42 \(since/).waitFor();
  await p.getByRole('button', { name: 'Delete…' }).click();
  await dialog.getByRole('button', { name: 'Move to trash' }).click();
  const refusal = status().locator('.error');
  await refusal.waitFor();
  assert.match(await refusal.innerText(), /Deleting failed: .*legal hold \(case 42\).*release the hold first/);
  assert.equal(await state(), 200, 'the held artifact was not deleted');
  await check(p, '7-artifact-held-refused');
  await p.getByRole('button', { name: 'Release hold…' }).click();
  await p.getByRole('dialog', { name: /Release the legal hold/ }).getByRole('button', { name: 'Release hold' }).click();
  await p.locator('.state.live').waitFor();

  // Library flag, a label set and removed, retention.
  const publish = p.getByRole('button', { name: 'Publish to library' });
  assert.equal(await publish.getAttribute('aria-pressed'), 'false');
  await publish.click();
  await status().getByText('published to the library').waitFor();
  assert.equal(await p.getByRole('button', { name: 'Publish to library' }).getAttribute('aria-pressed'), 'true');
  assert.equal((await (await api(`/v1/artifacts/${id}`)).json()).library, true);
  await p.getByLabel('Key', { exact: true }).fill('team');
  await p.getByLabel('Value', { exact: true }).fill('sec');
  await p.getByRole('button', { name: 'Set label' }).click();
  await status().getByText('Label team saved.').waitFor();
  assert.deepEqual((await (await api(`/v1/artifacts/${id}`)).json()).metadata, { team: 'sec' });
  await p.getByRole('button', { name: 'Remove label team' }).click();
  await status().getByText('Label team removed.').waitFor();
  assert.deepEqual((await (await api(`/v1/artifacts/${id}`)).json()).metadata ?? {}, {});
  await p.getByLabel(/^Days from the latest version/).fill('30');
  await p.getByRole('button', { name: 'Save retention' }).click();
  await status().getByText('Retention set to 30 days.').waitFor();
  const kept = await (await api(`/v1/artifacts/${id}`)).json();
  assert.equal(kept.retentionDays, 30);
  assert.ok(kept.expiresAt, 'an expiry was set');
  // A bad value is the API's 400 naming the field; nothing changes.
  await p.getByLabel(/^Days from the latest version/).fill('0');
  await p.getByRole('button', { name: 'Save retention' }).click();
  await status().locator('.error').waitFor();
  assert.match(await status().innerText(), /Saving failed: .*at least 1 day.*retentionDays/);
  assert.equal((await (await api(`/v1/artifacts/${id}`)).json()).retentionDays, 30);

  // The audit section: every record the API has, newest first, paged.
  await p.reload();
  const audit = p.locator('table.audit tbody tr');
  await audit.first().waitFor();
  for (let i = 0; i < 10; i += 1) {
    const older = p.getByRole('button', { name: 'Show older records' });
    if (!(await older.count())) break;
    const before = await audit.count();
    await older.click();
    await p.waitForFunction((n) => document.querySelectorAll('table.audit tbody tr').length > n, before);
  }
  await p.getByText('No older records.').waitFor();
  const shown = await audit.evaluateAll((rows) => rows.map((r) => `${r.dataset.action}/${r.dataset.outcome}`));
  const fromApi = [];
  let cursor;
  do {
    const r = await api(`/v1/artifacts/${id}/audit?limit=7${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, { token: ADMIN });
    const body = await r.json();
    assert.equal(r.status, 200, JSON.stringify(body));
    fromApi.push(...body.records.map((x) => `${x.action}/${x.outcome}`));
    cursor = body.nextCursor;
  } while (cursor);
  assert.deepEqual(shown, fromApi);
  assert.ok(shown.length > 10, `more than one page (${shown.length})`);
  const chronological = [...shown].reverse();
  const expected = ['version.created/success', 'artifact.downloaded/success', 'link.created/success',
    'artifact.deleted/success', 'artifact.restored/success', 'hold.set/success', 'artifact.deleted/refused',
    'hold.released/success', 'artifact.updated/success'];
  let at = 0;
  for (const action of chronological) if (action === expected[at]) at += 1;
  assert.equal(at, expected.length, `in order ${expected.join(', ')}: ${chronological.join(', ')}`);
  assert.match(await p.locator('table.audit tbody tr[data-outcome="refused"]').first().innerText(), /refused \(409\)/);
  await check(p, '7-artifact-audit');
  await p.close();

  // A writer: lifecycle buttons, no hold and no audit section.
  const w = await page(main);
  await w.goto(`${BASE}/console/artifacts/${id}`);
  await w.getByRole('button', { name: 'Delete…' }).waitFor();
  await w.locator('table.versions').waitFor();
  assert.equal(await w.getByRole('button', { name: /legal hold|Delete for good/ }).count(), 0);
  assert.equal(await w.getByRole('heading', { name: 'Audit' }).count(), 0);

  // A reader: none of the actions, no audit, and no error.
  const r = await fresh.context.newPage();
  await r.goto(`${BASE}/console/artifacts/${id}#token=${READER}`);
  await r.getByRole('heading', { name: 'life/report.txt' }).waitFor();
  await r.locator('table.versions').waitFor();
  await r.locator('.links-wrap table, .links-wrap p.empty').first().waitFor();
  for (const name of ['Delete…', 'Restore', 'Place legal hold…', 'Release hold…', 'Publish to library', 'Delete for good…', 'Save retention', 'Set label']) {
    assert.equal(await r.getByRole('button', { name, exact: true }).count(), 0, `a reader sees ${name}`);
  }
  assert.equal(await r.getByRole('heading', { name: 'Audit' }).count(), 0);
  assert.equal(await r.locator('#status .error').count(), 0);
  await check(r, '7-artifact-reader');
  await r.close();

  // Delete for good (admin): gone, and not in the trash either.
  const a = await fresh.context.newPage();
  await a.goto(`${BASE}/console/artifacts/${id}#token=${ADMIN}`);
  await a.getByRole('button', { name: 'Delete for good…' }).click();
  await a.getByRole('dialog', { name: /for good/ }).getByRole('button', { name: 'Delete for good' }).click();
  await a.getByRole('heading', { name: 'Deleted for good' }).waitFor();
  assert.equal(await state(), 404);
  assert.ok(!(await listAll('/v1/artifacts?state=deleted')).includes(id), 'not in the trash');
  await a.close();
  noProblems();
});
