// mmslib.loadgen.run_level: open-loop load at a constant rate, one request per iteration.
// The CFG placeholder below is replaced by the level's configuration (JSON) when the script is written.
import http from 'k6/http';
import grpc from 'k6/net/grpc';
import exec from 'k6/execution';
import encoding from 'k6/encoding';
import { check } from 'k6';
import { Trend } from 'k6/metrics';
import { SharedArray } from 'k6/data';

const CFG = __CFG__;

export const options = {
  scenarios: {
    mms: {
      executor: 'constant-arrival-rate',
      rate: CFG.rate,
      timeUnit: CFG.timeUnit,
      duration: CFG.duration,
      preAllocatedVUs: CFG.preAllocatedVUs,
      maxVUs: CFG.maxVUs,
      gracefulStop: CFG.gracefulStop,
    },
  },
  systemTags: ['status', 'error_code'],
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)', 'count'],
  maxRedirects: 0,
};

const DATA_FILE = CFG.dataFile;
const TARGETS = new SharedArray('mms_targets', () => JSON.parse(open(DATA_FILE)).targets);
const BODIES = new SharedArray('mms_bodies', () => JSON.parse(open(DATA_FILE)).bodies);
const HEADERS = new SharedArray('mms_headers', () => JSON.parse(open(DATA_FILE)).headers);
const EXPECTS = new SharedArray('mms_expects', () => JSON.parse(open(DATA_FILE)).expects);
const CUM = CFG.cum;
const unsent = new Trend('mms_unsent', true);

// One gRPC client per server address (protos load in the init context only).
const GRPC = CFG.grpcAddrs.map(() => {
  const c = new grpc.Client();
  c.load([CFG.protoDir], CFG.protoFile);
  return c;
});
const grpcConnected = CFG.grpcAddrs.map(() => false);

function mix32(x) {  // lowbias32; mmslib.loadgen._mix32 is the same
  x = x >>> 0;
  x ^= x >>> 16; x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15; x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}
const SEED_MIX = mix32(CFG.seed);
function pick(i) {  // target index for iteration i: deterministic given the seed
  const u = mix32((SEED_MIX + Math.imul(i >>> 0, 0x9e3779b9)) >>> 0) / 4294967296;
  let lo = 0, hi = CUM.length - 1;
  while (lo < hi) { const mid = (lo + hi) >>> 1; if (CUM[mid] > u) hi = mid; else lo = mid + 1; }
  return lo;
}

function flat(x, out) {
  if (Array.isArray(x)) { for (const y of x) flat(y, out); } else { out.push(x); }
  return out;
}
const GRPC_FIELD = CFG.grpcContents;
function toGrpcRequest(model, body) {  // V2 JSON request -> ModelInferRequest (k6 JSON mapping)
  const req = { model_name: model, inputs: [] };
  if (body.id) req.id = String(body.id);
  for (const t of body.inputs) {
    let data = flat(t.data, []);
    if (t.datatype === 'BYTES') data = data.map((s) => encoding.b64encode(String(s)));
    const contents = {};
    contents[GRPC_FIELD[t.datatype]] = data;
    req.inputs.push({ name: t.name, datatype: t.datatype, shape: t.shape, contents });
  }
  if (Array.isArray(body.outputs)) req.outputs = body.outputs.map((o) => ({ name: o.name }));
  return req;
}

function sameValue(got, want) {
  if (got === want) return true;
  const a = Number(got), b = Number(want);
  if (got === '' || want === '' || Number.isNaN(a) || Number.isNaN(b)) return false;
  return Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(a), Math.abs(b));
}
function matches(outputs, expect) {  // outputs: name -> flat array of strings
  for (const name of Object.keys(expect)) {
    const got = outputs[name], want = expect[name];
    if (!got || got.length !== want.length) return false;
    for (let k = 0; k < want.length; k++) if (!sameValue(got[k], want[k])) return false;
  }
  return true;
}
function restOutputs(res) {
  const out = {};
  const body = res.json();
  for (const o of (body && body.outputs) || []) out[o.name] = flat(o.data, []).map(String);
  return out;
}
const RAW = { BOOL: [Uint8Array, 1], INT8: [Int8Array, 1], INT16: [Int16Array, 2], INT32: [Int32Array, 4],
  INT64: [BigInt64Array, 8], UINT8: [Uint8Array, 1], UINT16: [Uint16Array, 2], UINT32: [Uint32Array, 4],
  UINT64: [BigUint64Array, 8], FP32: [Float32Array, 4], FP64: [Float64Array, 8] };
function rawValues(datatype, b64) {
  const buf = encoding.b64decode(b64, 'std');
  if (datatype === 'BYTES') {  // 4-byte little-endian length, then the bytes
    const dv = new DataView(buf), vals = [];
    for (let p = 0; p + 4 <= buf.byteLength;) {
      const n = dv.getUint32(p, true); p += 4;
      vals.push(encoding.b64decode(encoding.b64encode(buf.slice(p, p + n)), 'std', 's')); p += n;
    }
    return vals;
  }
  const [T, size] = RAW[datatype] || [Uint8Array, 1];
  const vals = Array.from(new T(buf.slice(0, buf.byteLength - (buf.byteLength % size))), (v) => String(v));
  return datatype === 'BOOL' ? vals.map((v) => (v === '0' ? 'false' : 'true')) : vals;
}
function grpcOutputs(msg) {
  const out = {};
  const outs = (msg && msg.outputs) || [];
  const raw = (msg && (msg.rawOutputContents || msg.raw_output_contents)) || [];
  outs.forEach((o, i) => {
    if (raw.length > i) { out[o.name] = rawValues(o.datatype, raw[i]); return; }
    const c = o.contents || {};
    const bytes = c.bytesContents || c.bytes_contents;
    if (bytes && bytes.length) { out[o.name] = bytes.map((s) => encoding.b64decode(s, 'std', 's')); return; }
    let vals = [];
    for (const k of Object.keys(c)) if (Array.isArray(c[k]) && c[k].length) { vals = c[k]; break; }
    out[o.name] = vals.map(String);
  });
  return out;
}

const restBodies = {}, grpcBodies = {}, expects = {}, headers = {};  // per-VU caches (few distinct)
function expectOf(i) { if (i < 0) return null; if (!(i in expects)) expects[i] = EXPECTS[i]; return expects[i]; }
function headersOf(i) { if (!(i in headers)) headers[i] = HEADERS[i]; return headers[i]; }
function grpcBody(i, model) {
  const key = i + '\u0000' + model;
  if (!(key in grpcBodies)) grpcBodies[key] = toGrpcRequest(model, JSON.parse(BODIES[i]));
  return grpcBodies[key];
}

export default function () {
  const it = exec.scenario.iterationInTest;
  // k6's shortest scenario is 1 s and it also starts an iteration at its very
  // end: past the schedule, send nothing (only when warm-up + duration < 1 s + half an interval).
  if (it >= CFG.maxRequests) return;
  const t = TARGETS[pick(it)];
  const warm = Date.now() - exec.scenario.startTime < CFG.warmupMs;
  exec.vu.metrics.metadata.rid = String(it);
  const tags = { model: t.m, endpoint: t.e, warmup: warm ? 'true' : 'false' };
  const expect = expectOf(t.x);
  let ok = false;
  if (t.p === 'rest') {
    if (!(t.b in restBodies)) restBodies[t.b] = BODIES[t.b];
    const res = http.post(t.u, restBodies[t.b], {
      headers: headersOf(t.h), tags, timeout: CFG.timeout, responseType: expect ? 'text' : 'none',
    });
    ok = res.status >= 200 && res.status < 300;
    if (ok && expect) { try { ok = matches(restOutputs(res), expect); } catch (e) { ok = false; } }
  } else {
    const c = GRPC[t.g];
    const t0 = Date.now();
    let res;
    try {
      if (!grpcConnected[t.g]) {
        c.connect(CFG.grpcAddrs[t.g], { plaintext: true, timeout: CFG.timeout });
        grpcConnected[t.g] = true;
      }
      res = c.invoke(CFG.grpcMethod, grpcBody(t.b, t.m), {
        tags, timeout: CFG.timeout, metadata: headersOf(t.h), discardResponseMessage: !expect,
      });
    } catch (e) {  // no connection (14 UNAVAILABLE), or invoke refused to send (2 UNKNOWN)
      unsent.add(Date.now() - t0, Object.assign({ status: grpcConnected[t.g] ? '2' : '14' }, tags));
      if (grpcConnected[t.g]) console.error(`mmslib: gRPC invoke failed: ${e}`);
      try { c.close(); } catch (e2) { /* closed already */ }
      grpcConnected[t.g] = false;
      check(null, { ok: () => false }, tags);
      return;
    }
    ok = res.status === grpc.StatusOK;
    if (ok && expect) { try { ok = matches(grpcOutputs(res.message), expect); } catch (e) { ok = false; } }
    if (res.status === grpc.StatusUnavailable) {  // reconnect next time
      try { c.close(); } catch (e) { /* closed already */ }
      grpcConnected[t.g] = false;
    }
  }
  check(null, { ok: () => ok }, tags);
}

// k6's end-of-test summary, as the counts mmslib reads (iterations, dropped_iterations, checks):
// one JSON file {metrics: {name: values}}, written by k6 itself (no deprecated --summary-export).
export function handleSummary(data) {
  const metrics = {};
  for (const name of Object.keys(data.metrics)) metrics[name] = data.metrics[name].values;
  const out = {};
  out[CFG.summaryFile] = JSON.stringify({ metrics });
  return out;
}
