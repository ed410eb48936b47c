// mmslib.loadgen.replay: send a precomputed schedule of requests, open loop.
// One VU runs one iteration that sets timers: each request is sent, asynchronously,
// when its scheduled offset comes (requests due by the time a timer fires go together, never
// one before its offset), whatever the responses before it are doing: arrivals are not bound
// to a VU pool.
// Clock: k6's execution clock (exec.instance.currentTestRunDuration: Go's monotonic clock, in
// milliseconds as a float, nanosecond resolution), not Date.now() (whole milliseconds).
// Every request writes one line to the log file (--log-format raw):
//   R,<rid>,<sent ms after start>,<latency ms>,<status>,<ok 0|1>
// (written in batches of CFG.logBatch lines: one log call per batch costs less CPU).
// sent: the clock reading that found the request due, just before it is handed to k6, written
// exactly (shortest round-trip form; the offsets come as the exact float64 milliseconds Python
// subtracts, so sent >= offset holds in the records bit for bit). latency: for REST, k6's
// timings.blocked + sending + waiting + receiving (from asking for a connection to the answer's
// last byte: time waiting for or opening a connection included; k6's timings.duration leaves it
// out), at most the time the script saw (the clock at the callback minus sent: k6 counts sending
// from the end of a dial, which overlaps blocked when the request waited for a dial and then got
// another connection, a few requests in a thousand under load); for gRPC and for REST requests
// without an answer, the clock at the callback minus sent.
// The start writes  S,<start epoch ms, fractional>  and the end  T,<timer wake-ups>,<wake-ups
// before the next request was due>,<most ms early>.  Python joins the lines with the schedule.
// The CFG placeholder below is replaced by the level's configuration (JSON) when the script is written.
import http from 'k6/http';
import grpc from 'k6/net/grpc';
import exec from 'k6/execution';
import encoding from 'k6/encoding';

const CFG = __CFG__;
const DATA = JSON.parse(open(CFG.dataFile));
const SCHED = JSON.parse(open(CFG.scheduleFile));

export const options = {
  scenarios: {
    replay: { executor: 'per-vu-iterations', vus: 1, iterations: 1, maxDuration: CFG.maxDuration },
  },
  systemTags: [],
  summaryTrendStats: ['count'],
  maxRedirects: 0,
  discardResponseBodies: false,
};

const TARGETS = DATA.targets, BODIES = DATA.bodies, HEADERS = DATA.headers, EXPECTS = DATA.expects;
const OFF = SCHED.off, TGT = SCHED.tgt;

const GRPC = CFG.grpcAddrs.map(() => {
  const c = new grpc.Client();
  c.load([CFG.protoDir], CFG.protoFile);
  return c;
});

function flat(x, out) {
  if (Array.isArray(x)) { for (const y of x) flat(y, out); } else { out.push(x); }
  return out;
}
function sameValue(got, want) {
  if (got === want) return true;
  const a = Number(got), b = Number(want);
  if (got === '' || want === '' || Number.isNaN(a) || Number.isNaN(b)) return false;
  return Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(a), Math.abs(b));
}
function matches(outputs, expect) {
  for (const name of Object.keys(expect)) {
    const got = outputs[name], want = expect[name];
    if (!got || got.length !== want.length) return false;
    for (let k = 0; k < want.length; k++) if (!sameValue(got[k], want[k])) return false;
  }
  return true;
}
const SEP = '\u0001';
function joinedOf(expect) {  // name -> the expected values joined: the fast path's comparison
  const j = {};
  for (const name of Object.keys(expect)) j[name] = expect[name].join(SEP);
  return j;
}
function restOk(res, expect, joined) {
  if (res.status < 200 || res.status >= 300) return false;
  if (!expect) return true;
  try {
    const outputs = JSON.parse(res.body).outputs || [];
    // fast path: flat data whose text equals the expected values exactly (one native join per output)
    let hits = 0;
    for (const o of outputs) {
      if (!(o.name in joined)) continue;
      if (!Array.isArray(o.data) || o.data.join(SEP) !== joined[o.name]) { hits = -1; break; }
      hits++;
    }
    if (hits === Object.keys(joined).length) return true;
    // otherwise: element by element, numbers to a relative 1e-6 (nested data, other number formats)
    const out = {};
    for (const o of outputs) out[o.name] = flat(o.data, []).map(String);
    return matches(out, expect);
  } catch (e) { return false; }
}
function grpcOk(res, expect) {
  if (!res || res.status !== grpc.StatusOK) return false;
  if (!expect) return true;
  try {
    const out = {};
    for (const o of (res.message.outputs || [])) {
      const c = o.contents || {};
      const bytes = c.bytesContents || c.bytes_contents;
      if (bytes && bytes.length) { out[o.name] = bytes.map((s) => encoding.b64decode(s, 'std', 's')); continue; }
      let vals = [];
      for (const k of Object.keys(c)) if (Array.isArray(c[k]) && c[k].length) { vals = c[k]; break; }
      out[o.name] = vals.map(String);
    }
    return matches(out, expect);
  } catch (e) { return false; }
}
function grpcCode(status) {  // k6 gives a Go code whose text is its name ('OK'): the number
  const n = Number(status);
  if (!Number.isNaN(n)) return n;
  for (const k of Object.keys(grpc)) if (k.startsWith('Status') && grpc[k] === status) return Number(grpc[k]);
  return 2;  // UNKNOWN
}
function toGrpcRequest(model, body) {
  const req = { model_name: model, inputs: [] };
  for (const t of body.inputs) {
    let data = flat(t.data, []);
    if (t.datatype === 'BYTES') data = data.map((s) => encoding.b64encode(String(s)));
    const contents = {};
    contents[CFG.grpcContents[t.datatype]] = data;
    req.inputs.push({ name: t.name, datatype: t.datatype, shape: t.shape, contents });
  }
  return req;
}

export default async function () {
  // per-target request parameters, built once
  const prepared = TARGETS.map((t) => {
    const expect = t.x >= 0 ? EXPECTS[t.x] : null;
    if (t.p === 'rest') {
      return { rest: true, url: t.u, body: BODIES[t.b], expect, joined: expect ? joinedOf(expect) : null,
        params: { headers: HEADERS[t.h], timeout: CFG.timeout, responseType: expect ? 'text' : 'none' } };
    }
    return { rest: false, g: t.g, expect, req: toGrpcRequest(t.m, JSON.parse(BODIES[t.b])),
      params: { timeout: CFG.timeout, metadata: HEADERS[t.h], discardResponseMessage: !expect } };
  });
  CFG.grpcAddrs.forEach((a, i) => GRPC[i].connect(a, { plaintext: true, timeout: CFG.timeout }));
  const inst = exec.instance;  // its currentTestRunDuration: ms since the test started, ns resolution
  // The epoch of the start, to a few microseconds: wait for Date.now() (whole ms) to tick over.
  const d0 = Date.now();
  let d1 = Date.now();
  while (d1 === d0) d1 = Date.now();
  const c1 = inst.currentTestRunDuration;
  const n = OFF.length;
  const base = inst.currentTestRunDuration;
  console.log(`S,${(d1 + base - c1).toFixed(6)}`);
  let next = 0, done = 0, wakes = 0, early = 0, mostEarly = 0;
  await new Promise((resolve) => {
    if (n === 0) { resolve(); return; }
    let lines = [];
    function flush() { if (lines.length) { console.log(lines.join('\n')); lines = []; } }
    function finish(k, sent, ms, status, ok) {
      lines.push(`R,${k},${sent},${ms.toFixed(6)},${status},${ok ? 1 : 0}`);
      if (lines.length >= CFG.logBatch) flush();
      if (++done === n) { flush(); resolve(); }
    }
    function fire(k, sent) {
      const p = prepared[TGT[k]];
      if (p.rest) {
        http.asyncRequest('POST', p.url, p.body, p.params).then(
          (r) => {
            const seen = inst.currentTestRunDuration - base - sent, t = r.timings;
            const x = t.blocked + t.sending + t.waiting + t.receiving;
            finish(k, sent, r.status && x < seen ? x : seen, r.status, restOk(r, p.expect, p.joined));
          },
          () => finish(k, sent, inst.currentTestRunDuration - base - sent, 0, false));
      } else {
        GRPC[p.g].asyncInvoke(CFG.grpcMethod, p.req, p.params).then(
          (r) => finish(k, sent, inst.currentTestRunDuration - base - sent, grpcCode(r.status),
            grpcOk(r, p.expect)),
          () => finish(k, sent, inst.currentTestRunDuration - base - sent, 14, false));
      }
    }
    // A request goes out at the first clock reading at or after its offset, never before it:
    // each reading decides one request, and that reading is its send time. k6's setTimeout takes
    // fractional milliseconds and never fires before its delay; a wake-up that still finds
    // nothing due (counted) sets the timer again.
    function send(now) {
      if (lines.length && OFF[next] - now > 50) flush();  // idle: write what is pending
      while (OFF[next] <= now) {
        fire(next, now);
        if (++next === n) return;
        now = inst.currentTestRunDuration - base;
      }
      setTimeout(wake, OFF[next] - now);
    }
    function wake() {
      const now = inst.currentTestRunDuration - base;
      wakes++;
      if (OFF[next] > now) { early++; mostEarly = Math.max(mostEarly, OFF[next] - now); }
      send(now);
    }
    send(inst.currentTestRunDuration - base);
  });
  console.log(`T,${wakes},${early},${mostEarly.toFixed(6)}`);
  GRPC.forEach((c) => { try { c.close(); } catch (e) { /* closed */ } });
}
