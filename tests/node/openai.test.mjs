// openai.test.mjs — the official `openai` npm client (v7) against a real `emosteer serve`
// on the embedded demo model: models, chat (plain and streaming), completions, steering
// through the request body in our shape and EasySteer's, prefix reuse, and the streamed
// text of a steered request equal to `emosteer generate --chat` with the same steering.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import OpenAI from 'openai';
import { startServer, emosteerBin, repoRoot } from './serve_util.mjs';

const EV = path.join(repoRoot, 'models', 'demo-16m.ev.gguf');
let srv, client;

before(async () => {
  srv = await startServer({ args: ['--parallel', '4', '-t', '2'] });
  client = new OpenAI({ baseURL: srv.url + '/v1', apiKey: 'unused', maxRetries: 0 });
});
after(async () => {
  assert.equal(await srv.stop(), 0, 'serve exits 0 on SIGTERM');
});

// `emosteer generate --chat` with the same settings: what the server must stream.
function generate(message, { n, temp, seed, steer }) {
  const args = ['generate', '--chat', '--batch-invariant', '-t', '2', '-p', message, '-n', String(n),
    '--temp', String(temp), '--seed', String(seed)];
  if (steer) args.push('--ev', EV, '--steer', steer);
  const out = execFileSync(emosteerBin, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return out.replace(/\n$/, ''); // generate ends its output with one newline
}

async function streamText(params) {
  const stream = await client.chat.completions.create({ ...params, stream: true,
    stream_options: { include_usage: true } });
  let text = '', chunks = 0, usage = null, finish = null, role = null;
  for await (const c of stream) {
    if (c.usage) usage = c.usage;
    if (!c.choices.length) continue;
    const ch = c.choices[0];
    if (ch.delta.role) role = ch.delta.role;
    if (ch.delta.content) { text += ch.delta.content; chunks++; }
    if (ch.finish_reason) finish = ch.finish_reason;
  }
  return { text, chunks, usage, finish, role };
}

test('GET /v1/models lists the demo model', async () => {
  const models = await client.models.list();
  const ids = [];
  for await (const m of models) ids.push(m.id);
  assert.deepEqual(ids, ['demo-16m.q8_0']);
});

test('chat completion, plain', async () => {
  const r = await client.chat.completions.create({ model: 'demo-16m.q8_0',
    messages: [{ role: 'user', content: 'The letter arrived and' }], max_tokens: 12, temperature: 0 });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.ok(r.choices[0].message.content.length > 0);
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 12);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + 12);
  assert.equal(r.choices[0].message.content, generate('The letter arrived and', { n: 12, temp: 0, seed: 1 }));
});

test('streamed steered chat equals emosteer generate --chat with the same steering and seed', async () => {
  const msg = 'My friend called me this morning and';
  const s = await streamText({ model: 'm', messages: [{ role: 'user', content: msg }], max_tokens: 32,
    temperature: 0.8, seed: 7, steering: { emotions: { joy: 1.5 } } });
  assert.equal(s.role, 'assistant');
  assert.ok(s.chunks > 5, `streamed in ${s.chunks} chunks`);
  assert.equal(s.usage.completion_tokens, 32);
  const want = generate(msg, { n: 32, temp: 0.8, seed: 7, steer: 'joy=1.5' });
  assert.equal(s.text, want);
  // and steering changed it
  const plain = await streamText({ model: 'm', messages: [{ role: 'user', content: msg }], max_tokens: 32,
    temperature: 0.8, seed: 7 });
  assert.notEqual(plain.text, s.text);
  assert.equal(plain.text, generate(msg, { n: 32, temp: 0.8, seed: 7 }));
});

test('a mix of emotions with a negative alpha equals generate --steer', async () => {
  const msg = 'The meeting ended and';
  const r = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: msg }],
    max_tokens: 20, temperature: 0, steering: { emotions: { anger: 0.8, joy: -0.5 }, layers: [2, 3, 4] } });
  assert.deepEqual(r.steering.emotions, { anger: 0.8, joy: -0.5 }); // echoed as given, not as 0.800000012
  assert.deepEqual(r.steering.layers, [2, 3, 4]);
  assert.equal(r.choices[0].message.content, generate(msg, { n: 20, temp: 0, seed: 1, steer: 'anger=0.8,joy=-0.5' }));
});

test("EasySteer's steering shape gives the same text as ours", async () => {
  const base = { model: 'm', messages: [{ role: 'user', content: 'Tomorrow we will' }], max_tokens: 16, temperature: 0 };
  const ours = await client.chat.completions.create({ ...base, steering: { emotions: { sadness: 2 }, layers: [2, 3, 4] } });
  const easy = await client.chat.completions.create({ ...base, steering: { vectors: [{ name: 'sadness', scale: 2,
    layers: [2, 3, 4], algorithm: 'direct', apply: { prompt: 'all', generation: 'all' } }] } });
  assert.equal(easy.choices[0].message.content, ours.choices[0].message.content);
  const off = await client.chat.completions.create({ ...base, steering: false });
  assert.notEqual(off.choices[0].message.content, ours.choices[0].message.content);
  assert.equal(off.steering, null);
});

test('text completions, plain and streamed', async () => {
  const r = await client.completions.create({ model: 'm', prompt: 'Once upon a time', max_tokens: 10, temperature: 0 });
  assert.equal(r.object, 'text_completion');
  assert.ok(r.choices[0].text.length > 0);
  const stream = await client.completions.create({ model: 'm', prompt: 'Once upon a time', max_tokens: 10,
    temperature: 0, stream: true });
  let text = '';
  for await (const c of stream) text += c.choices[0]?.text ?? '';
  assert.equal(text, r.choices[0].text);
});

test('stop strings end the text before them', async () => {
  const r = await client.completions.create({ model: 'm', prompt: 'One, two, three, four,', max_tokens: 40,
    temperature: 0, stop: [','] });
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.ok(!r.choices[0].text.includes(','), JSON.stringify(r.choices[0].text));
});

test('a multi-turn chat that resends its history reuses the cached prefix', async () => {
  const m1 = [{ role: 'user', content: 'I walked to the old harbour and' }];
  const r1 = await client.chat.completions.create({ model: 'm', messages: m1, max_tokens: 16, temperature: 0,
    steering: { emotions: { fear: 1.2 } } });
  const m2 = [...m1, { role: 'assistant', content: r1.choices[0].message.content }, { role: 'user', content: 'Then I saw' }];
  const r2 = await client.chat.completions.create({ model: 'm', messages: m2, max_tokens: 16, temperature: 0,
    steering: { emotions: { fear: 1.2 } } });
  const cached = r2.usage.prompt_tokens_details.cached_tokens;
  assert.ok(cached >= r1.usage.prompt_tokens, `cached ${cached} of ${r2.usage.prompt_tokens}`);
  // the same text as computing the whole prompt afresh
  const joined = m2.map((m) => m.content).join('\n');
  assert.equal(r2.choices[0].message.content, generate(joined, { n: 16, temp: 0, seed: 1, steer: 'fear=1.2' }));
});

test('GET /v1/steering lists the loaded vectors', async () => {
  const r = await (await fetch(srv.url + '/v1/steering')).json();
  assert.equal(r.default_set, 'demo-16m.ev');
  assert.deepEqual(r.sets[0].recommended_layers, [2, 3, 4]);
  for (const e of ['joy', 'sadness', 'anger', 'fear', 'disgust']) assert.ok(r.sets[0].emotions.includes(e), e);
});
