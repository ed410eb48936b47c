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
// One dispatcher goroutine sleeps until each request's offset and starts one goroutine per
// request due by then (never one before its offset; a wake-up that finds nothing due, which Go's
// timers should never give, sleeps again and is counted): a slow answer never delays a later
// request (open loop). A request that would exceed max_inflight requests in flight is not
// sent (counted unsent). HTTP/1.1 over kept-alive connections, one pool per server address:
// each request's goroutine takes an idle connection (or dials one), writes the request in one
// write and reads the answer itself (net/http's client hands every request between three
// goroutines, which costs more CPU than the rest of the request here). A request that fails on
// a reused connection before any answer byte arrived (the server closed it while idle) is sent
// again once on a new connection, as net/http does.
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
// Send time: the monotonic clock in the request's goroutine, just before it takes an idle
// connection (or dials one); latency: from then to the answer's last byte (a new connection's
// set-up and any wait for it included). Nanoseconds.
//
// The first few transport errors go to stderr; the last line on stdout is
// T,<dispatcher wake-ups>,<wake-ups before the next request was due>,<most ms early>.
// Exit code 0 when the records were written.
package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
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
	addr   string // host:port
	wire   []byte // the whole request: line, headers, body
	expect map[string][]string
	pool   *pool
}

// ---------------------------------------------------------------- HTTP/1.1 client

type conn struct {
	c      net.Conn
	r      *bufio.Reader
	reused bool
}

type pool struct {
	mu   sync.Mutex
	idle []*conn
	addr string
}

func (p *pool) get(timeout time.Duration, fresh bool) (*conn, error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 && !fresh {
		c := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		c.reused = true
		return c, nil
	}
	p.mu.Unlock()
	c, err := net.DialTimeout("tcp", p.addr, timeout)
	if err != nil {
		return nil, err
	}
	return &conn{c: c, r: bufio.NewReaderSize(c, 8192)}, nil
}

func (p *pool) put(c *conn) {
	p.mu.Lock()
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

func (p *pool) closeAll() {
	p.mu.Lock()
	for _, c := range p.idle {
		c.c.Close()
	}
	p.idle = nil
	p.mu.Unlock()
}

var errNoAnswer = errors.New("connection closed before an answer")

// exchange sends t.wire on c and reads the answer: status, body (kept only when wanted),
// whether the connection may be reused, and whether any answer byte was read.
func exchange(c *conn, t *target, deadline time.Time, keepBody bool) (int, []byte, bool, bool, error) {
	c.c.SetDeadline(deadline)
	if _, err := c.c.Write(t.wire); err != nil {
		return 0, nil, false, false, err
	}
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		if err == io.EOF && len(line) == 0 {
			err = errNoAnswer
		}
		return 0, nil, false, len(line) > 0, err
	}
	// "HTTP/1.1 200 OK"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, nil, false, true, fmt.Errorf("bad status line %q", line)
	}
	code, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, nil, false, true, fmt.Errorf("bad status line %q", line)
	}
	keep := line[7] == '1'
	length, chunked := int64(-1), false
	for {
		h, err := c.r.ReadSlice('\n')
		if err != nil {
			return code, nil, false, true, err
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		colon := bytes.IndexByte(h, ':')
		if colon < 0 {
			continue
		}
		name, value := h[:colon], bytes.TrimSpace(h[colon+1:])
		switch {
		case bytes.EqualFold(name, []byte("content-length")):
			length, err = strconv.ParseInt(string(value), 10, 64)
			if err != nil || length < 0 {
				return code, nil, false, true, fmt.Errorf("bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("transfer-encoding")):
			chunked = bytes.Contains(bytes.ToLower(value), []byte("chunked"))
		case bytes.EqualFold(name, []byte("connection")):
			v := bytes.ToLower(value)
			if bytes.Contains(v, []byte("close")) {
				keep = false
			} else if bytes.Contains(v, []byte("keep-alive")) {
				keep = true
			}
		}
	}
	var body []byte
	switch {
	case code == 204 || code == 304 || (code >= 100 && code < 200):
	case chunked:
		var buf bytes.Buffer
		for {
			sz, err := c.r.ReadSlice('\n')
			if err != nil {
				return code, nil, false, true, err
			}
			sz = bytes.TrimRight(sz, "\r\n")
			if i := bytes.IndexByte(sz, ';'); i >= 0 {
				sz = sz[:i]
			}
			n, err := strconv.ParseInt(string(bytes.TrimSpace(sz)), 16, 64)
			if err != nil || n < 0 {
				return code, nil, false, true, fmt.Errorf("bad chunk size %q", sz)
			}
			if n == 0 { // trailers, then a blank line
				for {
					tl, err := c.r.ReadSlice('\n')
					if err != nil {
						return code, nil, false, true, err
					}
					if len(bytes.TrimRight(tl, "\r\n")) == 0 {
						break
					}
				}
				break
			}
			if keepBody {
				if _, err := io.CopyN(&buf, c.r, n); err != nil {
					return code, nil, false, true, err
				}
			} else if _, err := c.r.Discard(int(n)); err != nil {
				return code, nil, false, true, err
			}
			if _, err := c.r.Discard(2); err != nil { // CRLF after the chunk
				return code, nil, false, true, err
			}
		}
		body = buf.Bytes()
	case length >= 0:
		if keepBody {
			body = make([]byte, length)
			if _, err := io.ReadFull(c.r, body); err != nil {
				return code, nil, false, true, err
			}
		} else if _, err := c.r.Discard(int(length)); err != nil {
			return code, nil, false, true, err
		}
	default: // the body ends when the server closes the connection
		b, err := io.ReadAll(c.r)
		if err != nil {
			return code, nil, false, true, err
		}
		body, keep = b, false
	}
	return code, body, keep, true, nil
}

// wireRequest: the request's bytes, written once per target.
func wireRequest(rawURL string, header map[string]string, body []byte) ([]byte, string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, "", err
	}
	if u.Scheme != "http" {
		return nil, "", fmt.Errorf("%s: only http:// URLs (no TLS)", rawURL)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: %s\r\n", u.RequestURI(), u.Host)
	keys := make([]string, 0, len(header))
	for k := range header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		lk := strings.ToLower(k)
		if lk == "host" || lk == "content-length" || lk == "connection" || lk == "transfer-encoding" {
			continue
		}
		fmt.Fprintf(&b, "%s: %s\r\n", k, header[k])
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n", len(body))
	b.Write(body)
	return b.Bytes(), addr, nil
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
	pools := map[string]*pool{}
	for i, r := range cfg.Targets {
		if r.Protocol != "rest" {
			fail("target %d: protocol %q (this generator sends REST only)", i, r.Protocol)
		}
		wire, addr, err := wireRequest(r.URL, cfg.Headers[r.Header], []byte(cfg.Bodies[r.Body]))
		if err != nil {
			fail("target %d: %v", i, err)
		}
		if pools[addr] == nil {
			pools[addr] = &pool{addr: addr}
		}
		t := target{addr: addr, wire: wire, pool: pools[addr]}
		if r.Expect >= 0 {
			t.expect = cfg.Expects[r.Expect]
		}
		targets[i] = t
	}
	debug.SetGCPercent(400) // fewer collections: the heap is small, CPU is what is measured

	timeout := time.Duration(cfg.TimeoutMs * float64(time.Millisecond))
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
		start := time.Since(t0)
		sentNs[i] = int64(start)
		deadline := t0.Add(start + timeout) // the whole exchange: connect, send, answer, body
		var code int
		var body []byte
		var err error
		for attempt := 0; ; attempt++ {
			var c *conn
			c, err = t.pool.get(time.Until(deadline), attempt > 0) // a resend: on a new connection
			if err != nil {
				break
			}
			var keep, answered bool
			code, body, keep, answered, err = exchange(c, t, deadline, t.expect != nil)
			if err == nil && keep {
				t.pool.put(c)
			} else {
				c.c.Close()
			}
			// a kept-alive connection the server had closed: send again once, on a new one
			if err != nil && c.reused && !answered && attempt == 0 && time.Now().Before(deadline) {
				continue
			}
			break
		}
		latNs[i] = int64(time.Since(t0) - start)
		status[i] = int32(code)
		if err != nil {
			if c := atomic.AddInt64(&errCount, 1); c <= 5 {
				errMu.Lock()
				fmt.Fprintf(os.Stderr, "mmslib gogen: request %d: %v\n", i, err)
				errMu.Unlock()
			}
			return
		}
		if code >= 200 && code < 300 && (t.expect == nil || answerOk(body, t.expect)) {
			ok[i] = 1
		}
	}

	var wakes, early int64
	var mostEarly time.Duration
	for i := 0; i < n; {
		due := time.Duration(off[i])
		now := time.Since(t0)
		if due > now {
			time.Sleep(due - now)
			now = time.Since(t0)
			wakes++
			if due > now { // woke before the request was due: sleep again
				early++
				if due-now > mostEarly {
					mostEarly = due - now
				}
				continue
			}
		}
		for ; i < n && time.Duration(off[i]) <= now; i++ {
			if atomic.AddInt64(&inflight, 1) > cfg.MaxInflight {
				atomic.AddInt64(&inflight, -1)
				continue // unsent: sentNs stays -1
			}
			wg.Add(1)
			go do(i, &targets[tgt[i]])
		}
	}
	wg.Wait()
	for _, p := range pools {
		p.closeAll()
	}

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
	fmt.Printf("T,%d,%d,%.6f\n", wakes, early, float64(mostEarly)/float64(time.Millisecond))
}
