// batch.test.mjs — per-sequence exactness in a batch: 8 concurrent requests with 8
// different steering settings return the same texts as the same 8 requests sent one at a
// time, on the default Q8_0 demo model and on its F16 version (../shared). This holds
// because the server's numerics are batch-invariant: a request's text does not depend on
// who else shares its decode steps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, repoRoot } from './serve_util.mjs';

const shared = process.env.ES_SHARED || path.join(repoRoot, '..', 'shared');
const F16 = path.join(shared, 'models', 'demo-16m.f16.gguf');
const EV = path.join(repoRoot, 'models', 'demo-16m.ev.gguf');

const settings = [
  { emotions: { joy: 1.5 } },
  { emotions: { anger: 2 }, layers: [2, 3, 4] },
  { emotions: { sadness: 1, fear: 0.5 } },
  { emotions: { disgust: 1.2 }, positions: 'generated' },
  { emotions: { joy: -1 }, preserve_norm: true },
  { emotions: { fear: 2 }, hook: 'block_out', layers: '1-5' },
  null, // unsteered
  { vectors: [{ name: 'joy', scale: 0.7 }, { name: 'sadness', scale: 0.7 }] },
];
const prompts = ['The letter arrived and', 'At the end of the road', 'My brother told me that',
  'When the rain stopped,', 'The old house was', 'She opened the box and', 'Yesterday the team',
  'In the morning we'];

function body(i) {
  return { messages: [{ role: 'user', content: prompts[i] }], max_tokens: 24 + 3 * i,
    temperature: i % 2 ? 0.9 : 0, seed: 100 + i, steering: settings[i] ?? false, stream: i % 3 === 0 };
}

async function run(url, i) {
  const r = await fetch(url + '/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body(i)) });
  assert.equal(r.status, 200);
  if (!body(i).stream) return (await r.json()).choices[0].message.content;
  let text = '';
  for (const line of (await r.text()).split('\n')) {
    if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
    text += JSON.parse(line.slice(6)).choices[0]?.delta?.content ?? '';
  }
  return text;
}

async function check(model) {
  const srv = await startServer({ args: ['-m', model, '--ev', EV, '--parallel', '8', '-t', '2', '--chunk', '5'] });
  try {
    const alone = [];
    for (let i = 0; i < 8; i++) alone.push(await run(srv.url, i));
    const together = await Promise.all(Array.from({ length: 8 }, (_, i) => run(srv.url, i)));
    for (let i = 0; i < 8; i++) {
      assert.ok(alone[i].length > 0, `request ${i} gave text`);
      assert.equal(together[i], alone[i], `request ${i} (${JSON.stringify(settings[i])}) alone vs in a batch of 8`);
    }
    assert.equal(new Set(alone).size, 8, 'eight different texts');
    // and again with the cache warm (prefix reuse) and in a different order
    const again = await Promise.all([7, 3, 5, 1, 0, 6, 2, 4].map((i) => run(srv.url, i).then((t) => [i, t])));
    for (const [i, t] of again) assert.equal(t, alone[i], `request ${i}, second round`);
  } finally {
    assert.equal(await srv.stop(), 0);
  }
}

test('8 concurrent steered requests = the same 8 alone (Q8_0)', async () => {
  await check(path.join(repoRoot, 'models', 'demo-16m.q8_0.gguf'));
});

test('8 concurrent steered requests = the same 8 alone (F16)', async (t) => {
  if (!fs.existsSync(F16)) {
    if (process.env.CI || process.env.ES_REQUIRE_SHARED) throw new Error(`${F16} is missing`);
    t.skip('no ../shared');
    return;
  }
  await check(F16);
});

// --timeout is libmicrohttpd's idle limit, counted from the last byte sent. A request that
// waits in the queue (or whose prompt is being read) sends nothing for a while: a stream
// gets ": ping" comments meanwhile, and a non-streamed request has the limit lifted until
// its answer is ready, so neither is cut. Here -np 1 -t 1 and --timeout 1: four long requests
// (1000 tokens each, ~0.6 s apiece on a 2024 CPU core) run one after the other while a stream
// waits behind them.
test('requests waiting longer than --timeout are answered in full', async () => {
  const srv = await startServer({ args: ['--parallel', '1', '--queue', '6', '--timeout', '1', '-c', '1024', '-t', '1'] });
  try {
    const long = (seed) => fetch(srv.url + '/v1/completions', { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'Once upon a time', max_tokens: 1000, ignore_eos: true, seed, temperature: 0.8 }) });
    const t0 = Date.now();
    const longs = [];
    for (let seed = 1; seed <= 4; seed++) {
      longs.push([`long request ${seed}`, long(seed)]);
      await new Promise((r) => setTimeout(r, 50));
    }
    const c = fetch(srv.url + '/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'Hello' }], max_tokens: 8, ignore_eos: true, stream: true,
        stream_options: { include_usage: true }, steering: { emotions: { joy: 1 } } }) });
    for (const [name, p] of longs) {
      const r = await p;
      assert.equal(r.status, 200, `${name} long request`);
      const j = await r.json();
      assert.equal(j.usage.completion_tokens, 1000, `${name} long request: all 1000 tokens`);
    }
    const waited = Date.now() - t0;
    const rc = await c;
    assert.equal(rc.status, 200);
    const lines = (await rc.text()).split('\n');
    assert.ok(waited > 1500, `the stream waited ${waited} ms, more than --timeout (else this test shows nothing)`);
    assert.ok(lines.includes(': ping'), 'keep-alive comments while it waited');
    assert.equal(lines.filter((l) => l.startsWith('data: ')).at(-1), 'data: [DONE]', 'the stream ended with [DONE]');
    const usage = lines.filter((l) => l.startsWith('data: {')).map((l) => JSON.parse(l.slice(6))).find((o) => o.usage);
    assert.equal(usage.usage.completion_tokens, 8);
  } finally {
    assert.equal(await srv.stop(), 0);
  }
});

// With --queue 0 every free slot still takes a request: requests that arrive together wait
// in the engine's queue until its loop moves them into slots, so that queue must hold all of
// them (it held one, and four at once wrote past it: ASan's heap-buffer-overflow in
// srv_engine_submit, the ASan run of this test fails with the old size).
test('requests arriving together for free slots are all admitted (--queue 0)', async () => {
  const srv = await startServer({ args: ['--parallel', '4', '--queue', '0', '-c', '256', '-t', '1'] });
  try {
    for (let round = 0; round < 6; round++) {
      const rs = await Promise.all([0, 1, 2, 3].map((i) => fetch(srv.url + '/v1/completions', {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: prompts[i], max_tokens: 2, temperature: 0 }) })));
      const statuses = rs.map((r) => r.status);
      await Promise.all(rs.map((r) => r.text()));
      assert.deepEqual(statuses, [200, 200, 200, 200], `round ${round}: all four admitted`);
    }
  } finally {
    assert.equal(await srv.stop(), 0, `serve exits 0; its log ends:\n${srv.log().slice(-6000)}`);
  }
});
