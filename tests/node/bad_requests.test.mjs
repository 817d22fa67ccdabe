// bad_requests.test.mjs — every way a request can be wrong, against a real `emosteer serve`:
// each gets its status and a message naming the problem in OpenAI's error shape, and the
// server answers a good request right after each. With ES_WRITE_TABLE=1 the table of
// cases, statuses and messages is written to docs/serve-errors.md.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { startServer, repoRoot } from './serve_util.mjs';

const KEY = 'sekret-key-1234';
const AUTH = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };
let srv;
const rows = [];

// --timeout 5: longer than the 4 s that Node's fetch (undici) keeps an idle connection in its
// pool. With a shorter one the server closes pooled connections first, and a request that
// reuses one in that instant fails with "other side closed" (the stall case below idles the
// pool for the whole timeout): any HTTP client whose idle limit outlives the server's races it.
before(async () => {
  srv = await startServer({ args: ['--parallel', '2', '--queue', '0', '-c', '128', '--max-body', '8192',
    '--timeout', '5', '--api-key', KEY, '-t', '2'] });
});
after(async () => {
  const code = await srv.stop();
  assert.equal(code, 0, `serve exits 0 on SIGTERM; its log ends:\n${srv.log().slice(-6000)}`);
  if (process.env.ES_WRITE_TABLE) {
    const lines = ['# `emosteer serve`: bad requests and their answers', '',
      'Written by `ES_WRITE_TABLE=1 tests/node/run.sh tests/node/bad_requests.test.mjs` from the',
      'answers of a real server (`--parallel 2 --queue 0 -c 128 --max-body 8192 --timeout 5 --api-key ...`);',
      'after every case the server answered a good request.', '',
      '| # | case | status | message |', '|---|---|---|---|'];
    rows.forEach((r, i) => lines.push(`| ${i + 1} | ${r.name} | ${r.status} | ${String(r.message).replace(/\|/g, '\\|').replace(/\n/g, ' ')} |`));
    fs.writeFileSync(path.join(repoRoot, 'docs', 'serve-errors.md'), lines.join('\n') + '\n');
  }
});

async function post(p, body, headers = AUTH) {
  const r = await fetch(srv.url + p, { method: 'POST', headers, body: typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body) });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, json, text, headers: r.headers };
}

// The server still serves: /health and a short completion.
async function stillServing() {
  const h = await fetch(srv.url + '/health');
  assert.equal(h.status, 200);
  const r = await post('/v1/completions', { prompt: 'Hello', max_tokens: 2, temperature: 0 });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.usage.completion_tokens, 2);
}

const chat = (extra) => ({ messages: [{ role: 'user', content: 'hi' }], max_tokens: 4, ...extra });

// name, path, body, status, a regexp the message must match, the param (or undefined)
const cases = [
  ['malformed JSON', '/v1/chat/completions', '{"messages": [', 400, /malformed JSON at line 1, column \d+ \(byte \d+\)/],
  ['duplicate key', '/v1/chat/completions', '{"max_tokens": 1, "max_tokens": 2, "messages": []}', 400, /malformed JSON.*duplicate/],
  ['body not an object', '/v1/chat/completions', '[1, 2]', 400, /'body' must be a JSON object, got an array/, 'body'],
  ['empty body', '/v1/chat/completions', '', 400, /malformed JSON/],
  ['invalid UTF-8', '/v1/chat/completions', Buffer.concat([Buffer.from('{"messages":[{"role":"user","content":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}]}')]), 400, /malformed JSON.*UTF-8/i],
  ['messages missing', '/v1/chat/completions', { max_tokens: 3 }, 400, /'messages' is required/, 'messages'],
  ['messages not an array', '/v1/chat/completions', { messages: 'hello' }, 400, /'messages' must be an array of messages, got a string/, 'messages'],
  ['messages empty', '/v1/chat/completions', { messages: [] }, 400, /'messages' is empty/, 'messages'],
  ['message of role tool', '/v1/chat/completions', { messages: [{ role: 'tool', content: 'x' }] }, 400, /roles are system, developer, user and assistant/, 'messages[0].role'],
  ['role not a string', '/v1/chat/completions', { messages: [{ role: 5, content: 'x' }] }, 400, /'messages\[0\].role' must be a string, got an integer/, 'messages[0].role'],
  ['content a number', '/v1/chat/completions', { messages: [{ role: 'user', content: 42 }] }, 400, /'messages\[0\].content' must be a string or an array of text parts/, 'messages[0].content'],
  ['image content part', '/v1/chat/completions', { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] }, 400, /only text parts are supported/],
  ['message not an object', '/v1/chat/completions', { messages: ['hi'] }, 400, /'messages\[0\]' must be an object/],
  ['negative max_tokens', '/v1/chat/completions', chat({ max_tokens: -5 }), 400, /'max_tokens' must be in \[1, 1000000\], got -5/, 'max_tokens'],
  ['huge max_tokens', '/v1/chat/completions', chat({ max_tokens: 1e12 }), 400, /'max_tokens' must be in \[1, 1000000\]/, 'max_tokens'],
  ['max_tokens a string', '/v1/chat/completions', chat({ max_tokens: '10' }), 400, /'max_tokens' must be an integer, got a string/, 'max_tokens'],
  ['fractional max_completion_tokens', '/v1/chat/completions', chat({ max_completion_tokens: 2.5 }), 400, /'max_completion_tokens' must be an integer/, 'max_completion_tokens'],
  ['temperature out of range', '/v1/chat/completions', chat({ temperature: 5 }), 400, /'temperature' must be in \[0, 2\], got 5/, 'temperature'],
  ['top_p a string', '/v1/chat/completions', chat({ top_p: 'high' }), 400, /'top_p' must be a number, got a string/, 'top_p'],
  ['seed a string', '/v1/chat/completions', chat({ seed: 'abc' }), 400, /'seed' must be an integer/, 'seed'],
  ['stop a number', '/v1/chat/completions', chat({ stop: 7 }), 400, /'stop' must be a string or an array of strings/, 'stop'],
  ['too many stops', '/v1/chat/completions', chat({ stop: Array.from({ length: 17 }, (_, i) => `s${i}`) }), 400, /at most 16/, 'stop'],
  ['n = 2', '/v1/chat/completions', chat({ n: 2 }), 400, /'n' must be 1/, 'n'],
  ['tools', '/v1/chat/completions', chat({ tools: [{ type: 'function', function: { name: 'f' } }] }), 400, /'tools' is not supported/, 'tools'],
  ['stream not a boolean', '/v1/chat/completions', chat({ stream: 'yes' }), 400, /'stream' must be a boolean/, 'stream'],
  ['unknown emotion', '/v1/chat/completions', chat({ steering: { emotions: { euphoria: 1 } } }), 400, /unknown emotion 'euphoria'.*has joy, sadness, anger, fear, disgust/, 'steering.emotions.euphoria'],
  ['alpha a string "NaN"', '/v1/chat/completions', chat({ steering: { emotions: { joy: 'NaN' } } }), 400, /'steering.emotions.joy' must be a number, got a string/, 'steering.emotions.joy'],
  ['absurd alpha', '/v1/chat/completions', chat({ steering: { emotions: { joy: 1e30 } } }), 400, /alpha of 'joy' is 1e\+30: it must be a finite number in \[-100, 100\]/],
  ['alpha overflowing a double', '/v1/chat/completions', '{"messages":[{"role":"user","content":"hi"}],"steering":{"emotions":{"joy":1e999}}}', 400, /malformed JSON.*overflow/],
  ['layer beyond the model', '/v1/chat/completions', chat({ steering: { emotions: { joy: 1 }, layers: [2, 99] } }), 400, /asks for layer 99; the model has layers 0..7/, 'steering.layers'],
  ['bad hook', '/v1/chat/completions', chat({ steering: { emotions: { joy: 1 }, hook: 'residual' } }), 400, /hooks are attn_out, mlp_out, block_out/, 'steering.hook'],
  ['bad positions', '/v1/chat/completions', chat({ steering: { emotions: { joy: 1 }, positions: 'middle' } }), 400, /positions are all, prompt, generated, last/, 'steering.positions'],
  ['unknown vector set', '/v1/chat/completions', chat({ steering: { emotions: { joy: 1 }, set: 'other' } }), 400, /vector set 'other', which is not loaded \(loaded: demo-16m.ev\)/, 'steering.set'],
  ['steering a string', '/v1/chat/completions', chat({ steering: 'joy' }), 400, /'steering' must be an object, false or null/, 'steering'],
  ['EasySteer vector from a file path', '/v1/chat/completions', chat({ steering: { vectors: [{ source: '/etc/passwd', scale: 1 }] } }), 400, /steers only with the vectors it loaded at start/],
  ['EasySteer normalize', '/v1/chat/completions', chat({ steering: { vectors: [{ name: 'joy', scale: 1, normalize: true }] } }), 400, /'normalize': true is not supported/],
  ['prompt longer than the context', '/v1/completions', { prompt: 'word '.repeat(300), max_tokens: 4 }, 400, /the prompt has \d+ tokens; the context holds 128 per request/, 'prompt'],
  ['completions without a prompt', '/v1/completions', { max_tokens: 4 }, 400, /'prompt' is required/, 'prompt'],
  ['empty prompt', '/v1/completions', { prompt: '' }, 400, /'prompt' is empty/, 'prompt'],
  ['body over --max-body', '/v1/chat/completions', JSON.stringify(chat({ pad: 'x'.repeat(20000) })), 413, /at most 8192 are accepted/],
];

for (const [name, p, body, status, re, param] of cases) {
  test(`${name}: ${status}`, async () => {
    const r = await post(p, body);
    assert.equal(r.status, status, r.text);
    assert.ok(r.json && r.json.error, `OpenAI error shape: ${r.text}`);
    assert.match(r.json.error.message, re);
    assert.equal(typeof r.json.error.type, 'string');
    assert.ok('param' in r.json.error && 'code' in r.json.error);
    if (param !== undefined) assert.equal(r.json.error.param, param);
    rows.push({ name, status: r.status, message: r.json.error.message });
    await stillServing();
  });
}

test('missing API key: 401; /health needs none', async () => {
  const r = await post('/v1/chat/completions', chat({}), { 'content-type': 'application/json' });
  assert.equal(r.status, 401);
  assert.match(r.json.error.message, /missing API key/);
  assert.equal(r.json.error.type, 'authentication_error');
  rows.push({ name: 'missing API key', status: r.status, message: r.json.error.message });
  const models = await fetch(srv.url + '/v1/models');
  assert.equal(models.status, 401);
  assert.equal((await fetch(srv.url + '/health')).status, 200);
  await stillServing();
});

test('wrong API key: 401', async () => {
  for (const k of ['sekret-key-123', 'sekret-key-12345', 'x']) {
    const r = await post('/v1/chat/completions', chat({}), { authorization: `Bearer ${k}` });
    assert.equal(r.status, 401);
    assert.match(r.json.error.message, /invalid API key/);
  }
  rows.push({ name: 'wrong API key', status: 401, message: 'invalid API key' });
  await stillServing();
});

test('wrong method and unknown path: 405, 404', async () => {
  const g = await fetch(srv.url + '/v1/chat/completions', { headers: AUTH });
  assert.equal(g.status, 405);
  const gj = await g.json();
  assert.match(gj.error.message, /use POST/);
  rows.push({ name: 'GET /v1/chat/completions', status: 405, message: gj.error.message });
  const u = await fetch(srv.url + '/v1/embeddings', { method: 'POST', headers: AUTH, body: '{}' });
  assert.equal(u.status, 404);
  const uj = await u.json();
  assert.match(uj.error.message, /no such endpoint: POST \/v1\/embeddings/);
  rows.push({ name: 'unknown endpoint', status: 404, message: uj.error.message });
  await stillServing();
});

// A raw exchange on one socket: writes `data`, then collects what comes back until the
// server closes the connection (or ms pass).
function rawExchange(data, { ms = 8000, keepWriting } = {}) {
  return new Promise((resolve) => {
    const s = net.connect(srv.port, '127.0.0.1');
    let got = '', t0 = Date.now();
    s.on('data', (d) => (got += d));
    s.on('error', () => {});
    s.on('close', () => { clearTimeout(timer); resolve({ got, closed: true, ms: Date.now() - t0 }); });
    const timer = setTimeout(() => { s.destroy(); resolve({ got, closed: false, ms }); }, ms);
    s.write(data);
    if (keepWriting) keepWriting(s);
  });
}

test('oversized headers: refused, connection closed', async () => {
  const big = 'x'.repeat(100000);
  const r = await rawExchange(`GET /health HTTP/1.1\r\nHost: a\r\nX-Big: ${big}\r\n\r\n`);
  const status = Number((r.got.match(/^HTTP\/1\.1 (\d+)/) || [])[1]);
  assert.ok(status === 431 || status === 413 || status === 400, r.got.slice(0, 200));
  rows.push({ name: 'oversized headers (100 KB)', status, message: '(libmicrohttpd) ' + r.got.split('\r\n')[0] });
  await stillServing();
});

test('a client that stalls mid-body is dropped after --timeout', async () => {
  const r = await rawExchange('POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n' +
    `Authorization: Bearer ${KEY}\r\nContent-Length: 1000\r\n\r\n{"messages": [`, { ms: 10000 });
  assert.ok(r.closed, 'the server closed the stalled connection');
  assert.ok(r.ms < 8000, `closed after ${r.ms} ms`);
  rows.push({ name: 'client stalls mid-body', status: '-', message: `connection closed after ${(r.ms / 1000).toFixed(1)} s (--timeout 5)` });
  await stillServing();
});

async function health() { return (await fetch(srv.url + '/health')).json(); }

test('a client that disconnects mid-stream is cancelled and frees its slot', async () => {
  const body = JSON.stringify({ prompt: 'Once upon a time', max_tokens: 100000 > 120 ? 120 : 120, stream: true, temperature: 0 });
  await new Promise((resolve, reject) => {
    const s = net.connect(srv.port, '127.0.0.1', () => {
      s.write(`POST /v1/completions HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nAuthorization: Bearer ${KEY}\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    });
    s.on('data', (d) => { if (String(d).includes('data: ')) { s.destroy(); resolve(); } });
    s.on('error', reject);
  });
  let h;
  for (let i = 0; i < 50; i++) {
    h = await health();
    if (h.slots_busy === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(h.slots_busy, 0, 'slot freed');
  rows.push({ name: 'disconnect mid-stream', status: '-', message: 'job cancelled, slot freed' });
  await stillServing();
});

test('every slot busy and no queue: 503 with Retry-After', async () => {
  // two long streams occupy both slots (-c 128 lets each run ~120 tokens)
  const ctrls = [new AbortController(), new AbortController()];
  const streams = ctrls.map((c) => fetch(srv.url + '/v1/completions', { method: 'POST', headers: AUTH, signal: c.signal,
    body: JSON.stringify({ prompt: 'Once upon a time', max_tokens: 120, stream: true, temperature: 0 }) }));
  const resps = await Promise.all(streams);
  const readers = resps.map((r) => r.body.getReader());
  await Promise.all(readers.map((rd) => rd.read())); // both have started
  const r = await post('/v1/chat/completions', chat({}));
  ctrls.forEach((c) => c.abort());
  assert.equal(r.status, 503, r.text);
  assert.ok(Number(r.headers.get('retry-after')) >= 1);
  assert.match(r.json.error.message, /every slot is busy and the queue is full/);
  rows.push({ name: 'all slots busy, queue full', status: 503, message: r.json.error.message + ` (Retry-After: ${r.headers.get('retry-after')})` });
  for (let i = 0; i < 50 && (await health()).slots_busy; i++) await new Promise((res) => setTimeout(res, 100));
  await stillServing();
});
