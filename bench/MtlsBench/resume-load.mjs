// Benchmark, not a test: the `resume` mode of bench/mtls-bench.sh — client-credentials tokens per second over mutual
// TLS (RFC 8705, tls_client_auth) with a new TCP connection per request that resumes an earlier TLS session.
//
// Why Node and not bench/MtlsBench: .NET's HttpClient on Linux never resumes a TLS session when it presents a client
// certificate (its OpenSSL session cache is keyed without the certificate, so it is bypassed), so MtlsBench's "resume"
// made a full handshake per request. Node's https.Agent caches the session of each connection (`maxCachedSessions`)
// and offers it on the next one, certificate included; `socket.isSessionReused()` says whether the server took it.
//
// Closed loop: WORKERS workers, each sends a token request on a new connection (Connection: close), waits for the
// answer, sends the next. Every measured request is counted as resumed or not; the result line carries
// `resumed_ratio`, and the exit code is 1 (with `resumption=FAILED`) when fewer than --min-resumed of the measured
// requests resumed: a figure without resumption is not this mode's figure.
//
//   node resume-load.mjs --token-url URL --client-id ID --cert PEM --key PEM --server-cert PEM
//        [--scope api:read] [--workers 32] [--warmup-s 5] [--seconds 15] [--server-pid PID] [--min-resumed 0.9]
//
// Prints one key=value line with the keys of MtlsBench's (tokens_per_s, p50_ms, p99_ms, errors, mode, ..., the CPU
// split) plus resumed_ratio, full_handshakes and node.

import { readFileSync, readdirSync } from 'node:fs';
import https from 'node:https';
import { X509Certificate } from 'node:crypto';

function parseArgs(argv) {
  const o = { scope: 'api:read', workers: 32, warmupS: 5, seconds: 15, serverPid: null, minResumed: 0.9 };
  const names = {
    '--token-url': (v) => { o.tokenUrl = new URL(v); },
    '--client-id': (v) => { o.clientId = v; },
    '--cert': (v) => { o.cert = v; },
    '--key': (v) => { o.key = v; },
    '--server-cert': (v) => { o.serverCert = v; },
    '--scope': (v) => { o.scope = v; },
    '--workers': (v) => { o.workers = number('--workers', v, 1, 1024); },
    '--warmup-s': (v) => { o.warmupS = number('--warmup-s', v, 0, 3600); },
    '--seconds': (v) => { o.seconds = number('--seconds', v, 0.5, 3600); },
    '--server-pid': (v) => { o.serverPid = number('--server-pid', v, 1, 2 ** 31); },
    '--min-resumed': (v) => { o.minResumed = number('--min-resumed', v, 0, 1); },
  };
  for (let i = 0; i < argv.length; i += 2) {
    const set = names[argv[i]];
    if (!set || i + 1 >= argv.length) throw new Error(`unknown option or missing value: ${argv[i]}`);
    set(argv[i + 1]);
  }
  for (const k of ['tokenUrl', 'clientId', 'cert', 'key', 'serverCert']) {
    if (!o[k]) throw new Error('--token-url, --client-id, --cert, --key and --server-cert are required');
  }
  return o;
}

function number(name, value, min, max) {
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max) throw new Error(`${name}: '${value}' is not a number in [${min}, ${max}]`);
  return n;
}

// --- CPU seconds from /proc (as bench/Shared/ProcCpu.cs): a process tree, this process, the whole machine. ---
const HZ = 100; // USER_HZ: 100 on every Linux architecture the bench runs on (getconf CLK_TCK)
function statFields(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields numbered as in proc(5): 1 pid, 2 comm (may hold spaces, in parentheses), 3 state, ...
    return [null, String(pid), 'comm', ...s.slice(s.lastIndexOf(')') + 2).trim().split(' ')];
  } catch {
    return null;
  }
}
const ticks = (f, i) => Number(f[i]);
function processCpu(pid) {
  const f = statFields(pid);
  return f ? (ticks(f, 14) + ticks(f, 15)) / HZ : 0;
}
function processTreeCpu(pid) {
  const self = statFields(pid);
  if (!self) return 0;
  let total = ticks(self, 14) + ticks(self, 15) + ticks(self, 16) + ticks(self, 17);
  const children = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === pid) continue;
    const f = statFields(name);
    if (!f) continue;
    const parent = ticks(f, 4);
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(f);
  }
  const stack = [...(children.get(pid) ?? [])];
  while (stack.length) {
    const f = stack.pop();
    total += ticks(f, 14) + ticks(f, 15) + ticks(f, 16) + ticks(f, 17);
    stack.push(...(children.get(Number(f[1])) ?? []));
  }
  return total / HZ;
}
function machineBusy() {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
  return (cpu[1] + cpu[2] + cpu[3] + cpu[6] + cpu[7] + cpu[8]) / HZ;
}
function cpuNow(o) {
  return {
    wall: performance.now() / 1000,
    server: o.serverPid ? processTreeCpu(o.serverPid) : 0,
    self: processCpu(process.pid),
    machine: machineBusy(),
  };
}

const o = (() => {
  try {
    return parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`resume-load: ${e.message}`);
    process.exit(2);
  }
})();

// The server certificate is pinned (the bench's CA made it), as MtlsBench does: a SHA-256 fingerprint comparison on
// every full handshake's response (the chain is not verified: the pin is the trust).
const pinned = new X509Certificate(readFileSync(o.serverCert)).fingerprint256;
const agent = new https.Agent({
  keepAlive: false, // a new TCP connection per request …
  maxCachedSessions: 4 * o.workers, // … resuming the TLS session cached from an earlier one (Node's default is 100)
  maxSockets: o.workers,
  cert: readFileSync(o.cert),
  key: readFileSync(o.key),
  rejectUnauthorized: false,
});
const body = new URLSearchParams({ grant_type: 'client_credentials', scope: o.scope, client_id: o.clientId }).toString();

function tokenRequest() {
  return new Promise((resolve) => {
    const req = https.request(o.tokenUrl, {
      method: 'POST',
      agent,
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'content-length': Buffer.byteLength(body),
        connection: 'close',
      },
    }, (res) => {
      // Read from the socket now: with Connection: close it may be gone by the end of the body. A resumed session shows
      // no server certificate to the client; it resumes one made by a full handshake whose certificate was checked
      // here, and only that server holds its key (RFC 8446 §2.2).
      const resumed = res.socket?.isSessionReused?.() === true;
      const serverPinned = resumed || res.socket?.getPeerX509Certificate?.()?.fingerprint256 === pinned;
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        if (!serverPinned) {
          unpinned += 1; // warm-up included: a session of an unpinned server must not be resumed unnoticed later
          resolve({ error: 'server_certificate_not_pinned', resumed });
        } else if (res.statusCode !== 200) {
          resolve({ error: `http_${res.statusCode}`, resumed });
        } else if (!text.includes('"access_token"')) {
          resolve({ error: 'no_access_token', resumed });
        } else {
          resolve({ error: null, resumed });
        }
      });
      res.on('error', (e) => resolve({ error: e.code ?? 'response_error', resumed: false }));
    });
    req.setTimeout(30_000, () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ error: e.code ?? e.message.replace(/\s+/g, '_'), resumed: false }));
    req.end(body);
  });
}

const start = performance.now();
const warmupEnd = start + o.warmupS * 1000;
const end = warmupEnd + o.seconds * 1000;
const latencies = [];
const kinds = new Map();
let resumed = 0;
let full = 0;
let unpinned = 0;

async function worker() {
  for (;;) {
    const t0 = performance.now();
    if (t0 >= end) return;
    const r = await tokenRequest();
    const t1 = performance.now();
    if (t0 >= warmupEnd && t1 <= end) {
      if (r.resumed) resumed += 1; else full += 1;
      if (r.error) kinds.set(r.error, (kinds.get(r.error) ?? 0) + 1);
      else latencies.push(t1 - t0);
    }
  }
}

const sleepUntil = (t) => new Promise((r) => { setTimeout(r, Math.max(0, t - performance.now())); });
const workers = Array.from({ length: o.workers }, () => worker());
await sleepUntil(warmupEnd);
const cpu0 = cpuNow(o);
await sleepUntil(end);
const cpu1 = cpuNow(o);
await Promise.all(workers);

latencies.sort((a, b) => a - b);
const ok = latencies.length;
const errors = [...kinds.values()].reduce((a, b) => a + b, 0);
const elapsed = cpu1.wall - cpu0.wall;
const pct = (q) => (ok === 0 ? 'n/a' : latencies[Math.min(ok - 1, Math.floor(q * ok))].toFixed(2));
const share = (a, b) => (((b - a) * 100) / elapsed).toFixed(0);
const server = cpu1.server - cpu0.server;
const self = cpu1.self - cpu0.self;
const other = (cpu1.machine - cpu0.machine) - server - self;
const measured = resumed + full;
const ratio = measured === 0 ? 0 : resumed / measured;
const resumptionOk = measured > 0 && ratio >= o.minResumed && unpinned === 0;
const fields = [
  // No figure when the sessions did not resume: this mode's figure would be the full-handshake one.
  resumptionOk ? `tokens_per_s=${(ok / elapsed).toFixed(1)}` : 'tokens_per_s=n/a',
  `p50_ms=${pct(0.5)} p99_ms=${pct(0.99)} errors=${errors}`,
  `mode=resume requests=${ok + errors} duration_s=${elapsed.toFixed(2)}`,
  `workers=${o.workers} warmup_s=${o.warmupS}`,
  `server_cpu_pct=${share(cpu0.server, cpu1.server)} bench_cpu_pct=${share(cpu0.self, cpu1.self)}`,
  `other_cpu_pct=${((other * 100) / elapsed).toFixed(0)}`,
  `server_cpu_us_per_token=${ok === 0 ? 'n/a' : ((server * 1e6) / ok).toFixed(0)}`,
  `bench_cpu_us_per_request=${ok + errors === 0 ? 'n/a' : ((self * 1e6) / (ok + errors)).toFixed(0)}`,
  `error_kinds=${errors === 0 ? 'none' : [...kinds].map(([k, n]) => `${k}:${n}`).join(',')}`,
  `resumed_ratio=${ratio.toFixed(3)} full_handshakes=${full} unpinned_server=${unpinned} resumption=${resumptionOk ? 'ok' : 'FAILED'}`,
  `load_generator=node node=${process.version}`,
];
console.log(fields.join(' '));
process.exitCode = errors === 0 && ok > 0 && resumptionOk ? 0 : 1;
