#!/usr/bin/env node
// serve_load.mjs — load an OpenAI-compatible server (emosteer serve, llama-server) with N
// concurrent streaming clients, M requests each, back to back; print one JSON line.
//
//   node bench/serve_load.mjs --url http://127.0.0.1:8080 --clients 4 --requests 8 \
//        [--max-tokens 64] [--prompt-set short|long|FILE] [--steer on|off] \
//        [--api completions|chat] [--warmup ROUNDS] [--cache-prompt on|off] [--label TEXT]
//
// Every request: stream, stream_options.include_usage, temperature 0, ignore_eos (so every
// server generates exactly max_tokens tokens). Request i (over all clients) takes prompt
// i mod #prompts and, with --steer on, its own steering mix i mod #mixes made from the
// emotions the server lists at GET /v1/steering (emosteer only).
//
// Measured per request: TTFT = time to the first chunk carrying text (content / text not
// empty), latency = time to the end of the stream; generated tokens = the final usage
// chunk's completion_tokens. Aggregate tok/s = all generated tokens / wall time of the
// measured phase (from the first request sent to the last stream ended).
// No npm dependencies: Node 20's fetch, SSE parsed by hand.

import { readFileSync } from 'node:fs';

function parseArgs(argv) {
  const a = { url: 'http://127.0.0.1:8080', clients: 1, requests: 4, maxTokens: 64,
              promptSet: 'short', steer: 'off', api: 'completions', warmup: 1, label: '',
              cachePrompt: 'on' };
  const map = { '--url': 'url', '--clients': 'clients', '--requests': 'requests',
                '--max-tokens': 'maxTokens', '--prompt-set': 'promptSet', '--steer': 'steer',
                '--api': 'api', '--warmup': 'warmup', '--label': 'label', '--cache-prompt': 'cachePrompt' };
  for (let i = 2; i < argv.length; i++) {
    const k = map[argv[i]];
    if (!k || i + 1 >= argv.length) {
      console.error(`usage: serve_load.mjs [${Object.keys(map).join(' V] [')} V]`);
      process.exit(2);
    }
    a[k] = argv[++i];
  }
  for (const k of ['clients', 'requests', 'maxTokens', 'warmup']) {
    a[k] = Number(a[k]);
    if (!Number.isInteger(a[k]) || a[k] < 0) { console.error(`bad ${k}`); process.exit(2); }
  }
  if (!['on', 'off'].includes(a.steer)) { console.error('--steer on|off'); process.exit(2); }
  if (!['chat', 'completions'].includes(a.api)) { console.error('--api chat|completions'); process.exit(2); }
  if (!['on', 'off'].includes(a.cachePrompt)) { console.error('--cache-prompt on|off'); process.exit(2); }
  a.url = a.url.replace(/\/+$/, '');
  return a;
}

const PROMPTS = {
  short: [
    'Write a short story about a lighthouse keeper who finds a message in a bottle.',
    'Describe the city at night after a long summer rain.',
    'Tell me about your favourite season and why you like it.',
    'A letter to an old friend you have not seen in ten years:',
    'Explain to a child how rivers reach the sea.',
    'The train was late again, and the platform was crowded.',
    'Give three reasons to learn to play a musical instrument.',
    'She opened the door and saw that the garden had changed.',
  ],
  long: [
    'The following is a long description of a mountain village in winter. The houses are made of ' +
    'dark wood and stone, their roofs heavy with snow, and smoke rises from every chimney. In the ' +
    'morning the baker is the first to wake; the smell of bread drifts down the narrow streets ' +
    'while the children walk to the small school at the top of the hill. The old men gather at ' +
    'the café by the fountain, which is frozen, and talk about the weather and the price of wood. ' +
    'Continue the description, telling what happens in the village when a stranger arrives:',
    'Here is a conversation between two scientists who disagree about an experiment. The first ' +
    'one believes the results are a breakthrough that will change the field; the second one ' +
    'thinks the measurements were contaminated and that the whole run must be repeated. They ' +
    'have worked together for twenty years, and their friendship is at stake. Write how the ' +
    'conversation goes, and how they decide what to do next:',
  ],
};

function loadPrompts(set) {
  if (PROMPTS[set]) return PROMPTS[set];
  const lines = readFileSync(set, 'utf8').split('\n').map((s) => s.trim()).filter(Boolean);
  if (!lines.length) throw new Error(`no prompts in ${set}`);
  return lines;
}

// Steering mixes, one per request in turn: single emotions at both signs, then pairs.
function makeMixes(emotions) {
  const e = emotions.filter((x) => x !== 'base');
  if (!e.length) return [];
  const alphas = [1.5, 0.8, -1.0, 1.2, -0.6];
  const mixes = [];
  e.forEach((name, i) => mixes.push({ [name]: alphas[i % alphas.length] }));
  for (let i = 0; i < e.length; i++) {
    const j = (i + 1) % e.length;
    if (j !== i) mixes.push({ [e[i]]: 0.8, [e[j]]: -0.3 });
  }
  return mixes;
}

function pct(sorted, p) {
  if (!sorted.length) return null;
  const r = Math.ceil((p / 100) * sorted.length);            // nearest rank
  return sorted[Math.min(sorted.length, Math.max(1, r)) - 1];
}

async function oneRequest(args, prompt, mix) {
  const body = { max_tokens: args.maxTokens, temperature: 0, ignore_eos: true, stream: true,
                 stream_options: { include_usage: true } };
  if (args.api === 'chat') body.messages = [{ role: 'user', content: prompt }];
  else body.prompt = prompt;
  if (mix) body.steering = { emotions: mix };
  // llama-server's switch for reusing a slot's cached prompt prefix (on by default there)
  if (args.cachePrompt === 'off') body.cache_prompt = false;
  const path = args.api === 'chat' ? '/v1/chat/completions' : '/v1/completions';
  const t0 = performance.now();
  const res = { ok: false, ttft: null, latency: null, tokens: 0, promptTokens: 0, cachedTokens: 0,
                error: null };
  let r;
  try {
    r = await fetch(args.url + path, { method: 'POST', headers: { 'content-type': 'application/json' },
                                       body: JSON.stringify(body) });
  } catch (e) { res.error = `fetch: ${e.cause?.code || e.message} ${e.cause?.message ?? ""}`.trim(); return res; }
  if (r.status !== 200) {
    res.error = `HTTP ${r.status}: ${(await r.text().catch(() => '')).slice(0, 200)}`;
    return res;
  }
  const reader = r.body.getReader();
  const dec = new TextDecoder();
  let buf = '', done = false, usage = null, firstAny = null;
  const onEvent = (data) => {
    if (data === '[DONE]') { done = true; return; }
    let j;
    try { j = JSON.parse(data); } catch { res.error = `bad JSON chunk: ${data.slice(0, 100)}`; return; }
    if (j.error) { res.error = `stream error: ${JSON.stringify(j.error).slice(0, 200)}`; return; }
    if (j.usage) usage = j.usage;
    const c = j.choices?.[0];
    if (!c) return;
    if (firstAny === null) firstAny = performance.now();
    const piece = args.api === 'chat' ? c.delta?.content : c.text;
    if (res.ttft === null && typeof piece === 'string' && piece.length) res.ttft = performance.now() - t0;
  };
  try {
    for (;;) {
      const { value, done: eof } = await reader.read();
      if (eof) break;
      buf += dec.decode(value, { stream: true });
      let m;
      while ((m = buf.match(/\r?\n\r?\n/))) {
        const ev = buf.slice(0, m.index);
        buf = buf.slice(m.index + m[0].length);
        const data = ev.split(/\r?\n/).filter((l) => l.startsWith('data:'))
                       .map((l) => l.slice(5).replace(/^ /, '')).join('\n');
        if (data) onEvent(data);                 // comment-only events (": ping") carry no data
      }
    }
  } catch (e) { res.error = `read: ${e.cause?.code || e.message}`; }
  res.latency = performance.now() - t0;
  if (res.ttft === null && firstAny !== null) res.ttft = firstAny - t0;   // no text at all
  if (!res.error && !done) res.error = 'stream ended without [DONE]';
  if (!res.error && !usage) res.error = 'no usage chunk';
  res.tokens = usage?.completion_tokens ?? 0;
  res.promptTokens = usage?.prompt_tokens ?? 0;
  res.cachedTokens = usage?.prompt_tokens_details?.cached_tokens ?? 0;
  if (!res.error && res.tokens !== args.maxTokens) res.error = `completion_tokens ${res.tokens} != ${args.maxTokens}`;
  res.ok = !res.error;
  return res;
}

async function main() {
  const args = parseArgs(process.argv);
  const prompts = loadPrompts(args.promptSet);
  let mixes = [];
  if (args.steer === 'on') {
    const r = await fetch(args.url + '/v1/steering');
    if (r.status !== 200) throw new Error(`GET /v1/steering: HTTP ${r.status}`);
    const s = await r.json();
    const set = s.sets.find((x) => x.name === s.default_set) || s.sets[0];
    if (!set) throw new Error('the server has no vector set loaded');
    mixes = makeMixes(set.emotions);
    if (!mixes.length) throw new Error('the vector set has no emotions');
  }
  // Warm-up: WARMUP rounds of CLIENTS concurrent requests, not measured (a server's first
  // batch of a given size may allocate its buffers).
  for (let w = 0; w < args.warmup; w++) {
    const rs = await Promise.all(Array.from({ length: args.clients }, (_, i) =>
      oneRequest(args, prompts[i % prompts.length], mixes.length ? mixes[i % mixes.length] : null)));
    const bad = rs.find((r) => !r.ok);
    if (bad) throw new Error(`warm-up request failed: ${bad.error}`);
  }
  const results = [];
  let next = 0;
  const total = args.clients * args.requests;
  const t0 = performance.now();
  const client = async () => {
    for (let m = 0; m < args.requests; m++) {
      const i = next++;
      const r = await oneRequest(args, prompts[i % prompts.length], mixes.length ? mixes[i % mixes.length] : null);
      results.push(r);
    }
  };
  await Promise.all(Array.from({ length: args.clients }, client));
  const wall = (performance.now() - t0) / 1000;
  const ok = results.filter((r) => r.ok);
  const ttft = ok.map((r) => r.ttft).filter((x) => x !== null).sort((a, b) => a - b);
  const lat = ok.map((r) => r.latency).sort((a, b) => a - b);
  const tokens = results.reduce((s, r) => s + r.tokens, 0);
  const errors = {};
  for (const r of results) if (!r.ok) errors[r.error] = (errors[r.error] || 0) + 1;
  const round = (x, d = 1) => (x === null ? null : Math.round(x * 10 ** d) / 10 ** d);
  console.log(JSON.stringify({
    label: args.label, url: args.url, api: args.api, steer: args.steer, prompt_set: args.promptSet,
    clients: args.clients, requests_per_client: args.requests, max_tokens: args.maxTokens,
    requests: total, ok: ok.length, failed: total - ok.length, errors,
    mixes: mixes.length, wall_s: round(wall, 3), generated_tokens: tokens,
    prompt_tokens: results.reduce((s, r) => s + r.promptTokens, 0),
    cached_prompt_tokens: results.reduce((s, r) => s + r.cachedTokens, 0),
    cache_prompt: args.cachePrompt,
    tok_per_s: round(tokens / wall, 2),
    ttft_ms: { p50: round(pct(ttft, 50)), p99: round(pct(ttft, 99)) },
    latency_ms: { p50: round(pct(lat, 50)), p99: round(pct(lat, 99)) },
  }));
  if (ok.length !== total) process.exitCode = 1;
}

main().catch((e) => { console.error(`serve_load: ${e.message}`); process.exit(1); });
