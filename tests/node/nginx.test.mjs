// nginx.test.mjs — two replicas of `emosteer serve` behind Debian's nginx, configured as
// docs/deploy.md says: requests land on both replicas, and a replica killed mid-run loses
// only the requests it had in flight (the others, and every later one, succeed).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer, freePort } from './serve_util.mjs';

const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => fs.existsSync(p));
let a, b, nginx, dir, url;

// The upstream block and the proxy settings of docs/deploy.md, on local ports.
function config(port, upstreams) {
  return `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 256; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream emosteer {
    least_conn;
${upstreams.map((p) => `    server 127.0.0.1:${p} max_fails=1 fail_timeout=10s;`).join('\n')}
    keepalive 16;
  }
  server {
    listen 127.0.0.1:${port};
    client_max_body_size 1m;
    location / {
      proxy_pass http://emosteer;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_read_timeout 300s;
      proxy_next_upstream error timeout http_502 http_503;
      proxy_next_upstream_tries 2;
      add_header X-Upstream $upstream_addr always;
    }
  }
}
`;
}

before(async () => {
  if (!NGINX) {
    if (process.env.CI || process.env.ES_REQUIRE_SHARED) throw new Error('nginx is not installed (scripts/setup.sh installs nginx-light)');
    return;
  }
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'es-nginx-'));
  a = await startServer({ args: ['--parallel', '2', '-t', '1'] });
  b = await startServer({ args: ['--parallel', '2', '-t', '1'] });
  const port = await freePort();
  fs.writeFileSync(path.join(dir, 'nginx.conf'), config(port, [a.port, b.port]));
  const check = spawnSync(NGINX, ['-t', '-p', dir, '-c', path.join(dir, 'nginx.conf')], { encoding: 'utf8' });
  assert.equal(check.status, 0, check.stderr);
  nginx = spawn(NGINX, ['-p', dir, '-c', path.join(dir, 'nginx.conf')], { stdio: 'ignore' });
  url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try { if ((await fetch(url + '/health')).ok) break; } catch { /* starting */ }
    await new Promise((r) => setTimeout(r, 100));
  }
});

after(async () => {
  if (nginx) nginx.kill('SIGTERM');
  if (a) await a.stop('SIGKILL');
  if (b) await b.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function ask(i, signal) {
  try {
    return await ask1(i, signal);
  } catch (e) { // the connection was cut (a replica died under it)
    return { ok: false, upstream: e.upstream ?? null, error: String(e.cause?.code || e) };
  }
}

async function ask1(i, signal) {
  const r = await fetch(url + '/v1/chat/completions', { method: 'POST', signal,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content: `Story number ${i} begins` }], max_tokens: 24,
      temperature: 0, stream: true, steering: { emotions: { joy: 0.5 + (i % 4) * 0.5 } } }) });
  const upstream = r.headers.get('x-upstream');
  if (r.status !== 200) return { ok: false, upstream, status: r.status };
  let text;
  try {
    text = await r.text(); // a replica killed mid-stream cuts this short
  } catch (e) {
    e.upstream = upstream;
    throw e;
  }
  return { ok: text.includes('data: [DONE]'), upstream, status: r.status };
}

test('requests land on both replicas', { skip: !NGINX && 'no nginx' }, async () => {
  const seen = new Map();
  const rs = await Promise.all(Array.from({ length: 8 }, (_, i) => ask(i)));
  for (const r of rs) {
    assert.ok(r.ok, JSON.stringify(r));
    seen.set(r.upstream, (seen.get(r.upstream) || 0) + 1);
  }
  assert.ok(seen.has(`127.0.0.1:${a.port}`) && seen.has(`127.0.0.1:${b.port}`), JSON.stringify([...seen]));
});

test('a replica killed mid-run loses only its in-flight requests', { skip: !NGINX && 'no nginx' }, async () => {
  const results = [];
  let killedAt = -1, inflightA = 0;
  const A = `127.0.0.1:${a.port}`;
  // 4 clients, 6 requests each; replica A is killed after the 6th request has started
  let started = 0;
  const client = async () => {
    for (let k = 0; k < 6; k++) {
      const i = started++;
      if (i === 6) {
        killedAt = results.length;
        a.proc.kill('SIGKILL');
      }
      const before = killedAt < 0;
      const r = await ask(i);
      results.push({ ...r, before, i });
    }
  };
  await Promise.all([client(), client(), client(), client()]);
  const failed = results.filter((r) => !r.ok);
  inflightA = results.filter((r) => r.before === false && r.upstream === A).length;
  // every failure was a request replica A had when it died (at most its 2 slots + what
  // nginx had already sent it), and everything started after the kill succeeded on B
  assert.ok(failed.length <= 4, `${failed.length} failed: ${JSON.stringify(failed)}`);
  for (const f of failed) assert.ok(f.upstream === A || f.upstream === null || f.upstream.includes(String(a.port)), JSON.stringify(f));
  const late = results.filter((r) => r.i >= 12);
  assert.ok(late.length >= 8 && late.every((r) => r.ok && r.upstream.endsWith(String(b.port))), JSON.stringify(late));
  assert.equal(results.length, 24);
  console.log(`replica A killed after 6 requests had started: ${failed.length} of 24 failed ` +
    `(${inflightA} later ones had reached A), ${late.length} started later all succeeded on B`);
});
