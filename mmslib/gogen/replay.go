// mmslib.gogen: replay a precomputed schedule of REST requests, open loop (Go standard library only).
//
//	replay CONFIG.json
//
// CONFIG (written by mmslib.gogen) holds the targets (the same tables the k6 replay script gets:
// rows with url "u", body index "b", header index "h", expected-outputs index "x", protocol "p"),
// the bodies, headers and expected outputs, the timeout, the in-flight bound, and the paths of
// the schedule (binary, little-endian: n int64 offsets in nanoseconds, then n int32 target
// indices) and of the records file this program writes.
//
// One dispatcher goroutine sleeps until each request's offset (requests due within half a
// millisecond go together) and starts one goroutine per request: a slow answer never delays a
// later request (open loop). A request that would exceed max_inflight requests in flight is not
// sent (counted unsent). Connections are kept alive and reused.
//
// An answer is ok when its status is 2xx and, where the target has expected outputs, every named
// output's data (flattened) equals them: as text, or as numbers to a relative 1e-6 (as the k6
// replay script checks).
//
// Records file (little-endian), written once every request has finished:
//
//	"MMSGOR01" | n int64 | t0 unix ns int64 | errors int64
//	| sent ns after t0 int64[n] (-1: never sent) | latency ns int64[n] (-1: never sent)
//	| status int32[n] (0: no response) | ok uint8[n]
//
// The first few transport errors go to stderr. Exit code 0 when the records were written.
package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

type targetRow struct {
	URL      string `json:"u"`
	Body     int    `json:"b"`
	Header   int    `json:"h"`
	Expect   int    `json:"x"`
	Protocol string `json:"p"`
}

type config struct {
	Targets     []targetRow           `json:"targets"`
	Bodies      []string              `json:"bodies"`
	Headers     []map[string]string   `json:"headers"`
	Expects     []map[string][]string `json:"expects"`
	TimeoutMs   float64               `json:"timeout_ms"`
	MaxInflight int64                 `json:"max_inflight"`
	N           int                   `json:"n"`
	Schedule    string                `json:"schedule"`
	Out         string                `json:"out"`
}

type target struct {
	url    string
	body   []byte
	header http.Header
	expect map[string][]string
}

type outputs struct {
	Outputs []struct {
		Name string          `json:"name"`
		Data json.RawMessage `json:"data"`
	} `json:"outputs"`
}

func flatten(v interface{}, out []string) []string {
	switch x := v.(type) {
	case []interface{}:
		for _, y := range x {
			out = flatten(y, out)
		}
	case string:
		out = append(out, x)
	case json.Number:
		out = append(out, x.String())
	case bool:
		if x {
			out = append(out, "true")
		} else {
			out = append(out, "false")
		}
	case nil:
		out = append(out, "null")
	default:
		out = append(out, fmt.Sprint(x))
	}
	return out
}

func sameValue(got, want string) bool {
	if got == want {
		return true
	}
	if got == "" || want == "" {
		return false
	}
	a, err1 := strconv.ParseFloat(got, 64)
	b, err2 := strconv.ParseFloat(want, 64)
	if err1 != nil || err2 != nil || math.IsNaN(a) || math.IsNaN(b) {
		return false
	}
	return math.Abs(a-b) <= 1e-6*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

func answerOk(body []byte, expect map[string][]string) bool {
	var o outputs
	if err := json.Unmarshal(body, &o); err != nil {
		return false
	}
	seen := 0
	for _, out := range o.Outputs {
		want, named := expect[out.Name]
		if !named {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(out.Data))
		dec.UseNumber()
		var v interface{}
		if err := dec.Decode(&v); err != nil {
			return false
		}
		got := flatten(v, make([]string, 0, len(want)))
		if len(got) != len(want) {
			return false
		}
		for k := range want {
			if !sameValue(got[k], want[k]) {
				return false
			}
		}
		seen++
	}
	return seen == len(expect)
}

func fail(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "mmslib gogen: "+format+"\n", a...)
	os.Exit(2)
}

func main() {
	if len(os.Args) != 2 {
		fail("usage: replay CONFIG.json")
	}
	raw, err := os.ReadFile(os.Args[1])
	if err != nil {
		fail("%v", err)
	}
	var cfg config
	if err := json.Unmarshal(raw, &cfg); err != nil {
		fail("config: %v", err)
	}
	n := cfg.N
	sched, err := os.ReadFile(cfg.Schedule)
	if err != nil {
		fail("%v", err)
	}
	if len(sched) != 12*n {
		fail("schedule %s: %d bytes, want %d for %d requests", cfg.Schedule, len(sched), 12*n, n)
	}
	off := make([]int64, n)
	tgt := make([]int32, n)
	for i := 0; i < n; i++ {
		off[i] = int64(binary.LittleEndian.Uint64(sched[8*i:]))
		tgt[i] = int32(binary.LittleEndian.Uint32(sched[8*n+4*i:]))
		if int(tgt[i]) < 0 || int(tgt[i]) >= len(cfg.Targets) {
			fail("schedule: request %d names target %d of %d", i, tgt[i], len(cfg.Targets))
		}
	}
	targets := make([]target, len(cfg.Targets))
	for i, r := range cfg.Targets {
		if r.Protocol != "rest" {
			fail("target %d: protocol %q (this generator sends REST only)", i, r.Protocol)
		}
		h := http.Header{}
		for k, v := range cfg.Headers[r.Header] {
			h.Set(k, v)
		}
		t := target{url: r.URL, body: []byte(cfg.Bodies[r.Body]), header: h}
		if r.Expect >= 0 {
			t.expect = cfg.Expects[r.Expect]
		}
		targets[i] = t
	}
	debug.SetGCPercent(400) // fewer collections: the heap is small, CPU is what is measured

	timeout := time.Duration(cfg.TimeoutMs * float64(time.Millisecond))
	transport := &http.Transport{
		Proxy:               nil, // load goes to the URLs given, never through a proxy
		DialContext:         (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        0, // no limit
		MaxIdleConnsPerHost: 100000,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}

	sentNs := make([]int64, n)
	latNs := make([]int64, n)
	status := make([]int32, n)
	ok := make([]uint8, n)
	for i := range sentNs {
		sentNs[i], latNs[i] = -1, -1
	}
	var inflight, errCount int64
	var errMu sync.Mutex
	var wg sync.WaitGroup

	t0 := time.Now()
	do := func(i int, t *target) {
		defer wg.Done()
		defer atomic.AddInt64(&inflight, -1)
		// the timeout covers the whole exchange (connect, send, answer, body) via the context:
		// http.Client.Timeout would start a goroutine per request to enforce it
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, "POST", t.url, bytes.NewReader(t.body))
		if err != nil {
			fail("request %d: %v", i, err)
		}
		req.Header = t.header.Clone()
		start := time.Since(t0)
		sentNs[i] = int64(start)
		resp, err := transport.RoundTrip(req) // no redirects followed, no cookies: one exchange
		var body []byte
		if err == nil {
			if t.expect != nil {
				body, err = io.ReadAll(resp.Body)
			} else {
				_, err = io.Copy(io.Discard, resp.Body)
			}
			resp.Body.Close()
		}
		latNs[i] = int64(time.Since(t0) - start)
		if err != nil {
			if resp != nil {
				status[i] = int32(resp.StatusCode)
			}
			if c := atomic.AddInt64(&errCount, 1); c <= 5 {
				errMu.Lock()
				fmt.Fprintf(os.Stderr, "mmslib gogen: request %d: %v\n", i, err)
				errMu.Unlock()
			}
			return
		}
		status[i] = int32(resp.StatusCode)
		if resp.StatusCode >= 200 && resp.StatusCode < 300 && (t.expect == nil || answerOk(body, t.expect)) {
			ok[i] = 1
		}
	}

	const early = 500 * time.Microsecond // send at the wake-up nearest the offset, not after it
	for i := 0; i < n; {
		due := time.Duration(off[i])
		now := time.Since(t0)
		if due-early > now {
			time.Sleep(due - early - now)
			now = time.Since(t0)
		}
		for ; i < n && time.Duration(off[i]) <= now+early; i++ {
			if atomic.AddInt64(&inflight, 1) > cfg.MaxInflight {
				atomic.AddInt64(&inflight, -1)
				continue // unsent: sentNs stays -1
			}
			wg.Add(1)
			go do(i, &targets[tgt[i]])
		}
	}
	wg.Wait()
	transport.CloseIdleConnections()

	var buf bytes.Buffer
	buf.Grow(32 + 21*n)
	buf.WriteString("MMSGOR01")
	for _, v := range []int64{int64(n), t0.UnixNano(), errCount} {
		binary.Write(&buf, binary.LittleEndian, v)
	}
	for _, col := range []interface{}{sentNs, latNs, status, ok} {
		binary.Write(&buf, binary.LittleEndian, col)
	}
	tmp := cfg.Out + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		fail("%v", err)
	}
	if err := os.Rename(tmp, cfg.Out); err != nil {
		fail("%v", err)
	}
	if errCount > 5 {
		fmt.Fprintf(os.Stderr, "mmslib gogen: %d requests failed in all\n", errCount)
	}
}
