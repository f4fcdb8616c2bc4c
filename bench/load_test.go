package bench

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// Fields 14 and 15 (utime, stime) are 250 and 50 in every valid line.
	const tail = " S 1 1 1 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 12345 1000000 500 18446744073709551615\n"
	tests := []struct {
		name    string
		line    string
		want    time.Duration
		wantErr bool
	}{
		{name: "plain", line: "4242 (bridge)" + tail, want: 3 * time.Second},
		{name: "name with spaces and parentheses", line: "4242 (a) b (c))" + tail, want: 3 * time.Second},
		{name: "no parenthesis", line: "4242 bridge" + tail, wantErr: true},
		{name: "truncated", line: "4242 (bridge) S 1 1 1 0 -1 4194560 100 0 0 0 250", wantErr: true},
		{name: "not a number", line: "4242 (bridge) S 1 1 1 0 -1 4194560 100 0 0 0 x 50 0", wantErr: true},
		{name: "empty", line: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStat(tt.line)
			if tt.wantErr {
				if !errors.Is(err, ErrStat) {
					t.Fatalf("parseStat(%q) = %v, %v; want ErrStat", tt.line, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parseStat(%q) = %v, %v; want %v", tt.line, got, err, tt.want)
			}
		})
	}
}

func TestParseMachineStat(t *testing.T) {
	tests := []struct {
		name       string
		line       string
		busy, idle time.Duration
		wantErr    bool
	}{
		{name: "full", line: "cpu  100 2 30 400 5 6 7 8 0 0", busy: 145 * clockTick, idle: 405 * clockTick},
		{name: "old kernel, no guest fields", line: "cpu 1 0 0 9 0 0 0 0", busy: clockTick, idle: 9 * clockTick},
		{name: "a single CPU's line", line: "cpu0 100 2 30 400 5 6 7 8 0 0", wantErr: true},
		{name: "too short", line: "cpu 1 2 3", wantErr: true},
		{name: "not a number", line: "cpu 1 2 x 4 5 6 7 8", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			busy, idle, err := parseMachineStat(tt.line)
			if tt.wantErr {
				if !errors.Is(err, ErrStat) {
					t.Fatalf("parseMachineStat(%q) = %v, %v, %v; want ErrStat", tt.line, busy, idle, err)
				}
				return
			}
			if err != nil || busy != tt.busy || idle != tt.idle {
				t.Fatalf("parseMachineStat(%q) = %v, %v, %v; want %v, %v", tt.line, busy, idle, err, tt.busy, tt.idle)
			}
		})
	}
}

func TestMachineCPU(t *testing.T) {
	busy, idle, err := MachineCPU()
	if err != nil {
		t.Fatal(err)
	}
	if busy <= 0 || idle < 0 {
		t.Fatalf("MachineCPU = %v busy, %v idle", busy, idle)
	}
}

func TestProcessCPUSelf(t *testing.T) {
	before, err := ProcessCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Burn CPU until the kernel's 10ms accounting shows it.
	deadline := time.Now().Add(5 * time.Second)
	x := 0
	for time.Now().Before(deadline) {
		for i := range 1_000_000 {
			x += i
		}
		after, err := ProcessCPU(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if after > before {
			return
		}
	}
	t.Fatalf("CPU time did not grow from %v after 5s of work (%d)", before, x)
}

func TestProcessCPUNoSuchProcess(t *testing.T) {
	if _, err := ProcessCPU(-1); err == nil {
		t.Fatal("ProcessCPU(-1) succeeded")
	}
}

func TestPercentile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		out := make([]time.Duration, len(ns))
		for i, n := range ns {
			out[i] = time.Duration(n) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	tests := []struct {
		name      string
		latencies []time.Duration
		p         float64
		want      time.Duration
	}{
		{"none", nil, 50, 0},
		{"one", ms(7), 99, 7 * time.Millisecond},
		{"median of four", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p99 of 100", ms(hundred...), 99, 99 * time.Millisecond},
		{"p50 of 100", ms(hundred...), 50, 50 * time.Millisecond},
		{"p100 is the maximum", ms(hundred...), 100, 100 * time.Millisecond},
		{"tiny p is the minimum", ms(hundred...), 0.001, time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Result{Latencies: tt.latencies}
			if got := r.Percentile(tt.p); got != tt.want {
				t.Errorf("Percentile(%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestResultRates(t *testing.T) {
	r := Result{Requests: 500, Elapsed: 2 * time.Second, CPU: []time.Duration{time.Second, 0}}
	if got := r.Throughput(); got != 250 {
		t.Errorf("Throughput = %v, want 250", got)
	}
	if got := r.CPUPerRequest(0); got != 2*time.Millisecond {
		t.Errorf("CPUPerRequest(0) = %v, want 2ms", got)
	}
	if got := r.CPUPerRequest(1); got != 0 {
		t.Errorf("CPUPerRequest(1) = %v, want 0", got)
	}
	if got := (Result{}).CPUPerRequest(0); got != 0 {
		t.Errorf("CPUPerRequest without requests = %v, want 0", got)
	}
}

func TestRun(t *testing.T) {
	tests := []struct {
		name       string
		failEvery  int64 // every n-th request gets a 500; 0 never
		wantErrors bool
	}{
		{name: "all ok"},
		{name: "errors counted", failEvery: 3, wantErrors: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var served, unauthenticated atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := served.Add(1)
				if u, p, ok := r.BasicAuth(); !ok || u != "alice" || p != "pw:with:colons" {
					unauthenticated.Add(1)
					http.Error(w, "no", http.StatusUnauthorized)
					return
				}
				if tt.failEvery > 0 && n%tt.failEvery == 0 {
					http.Error(w, "boom", http.StatusInternalServerError)
					return
				}
				_, _ = w.Write([]byte(`{"token":"x"}`))
			}))
			defer srv.Close()

			r, err := Run(t.Context(), Load{
				URL:         srv.URL + "/token",
				Username:    "alice",
				Password:    "pw:with:colons",
				Concurrency: 4,
				Warmup:      20 * time.Millisecond,
				Measure:     150 * time.Millisecond,
				PIDs:        []int{os.Getpid()},
			})
			if err != nil {
				t.Fatal(err)
			}
			if n := unauthenticated.Load(); n != 0 {
				t.Fatalf("%d requests arrived without the Basic credentials", n)
			}
			if r.Requests == 0 || len(r.Latencies) != r.Requests {
				t.Fatalf("Requests %d, %d latencies", r.Requests, len(r.Latencies))
			}
			if total := served.Load(); int64(r.Requests+r.Errors) > total {
				t.Fatalf("recorded %d + %d errors, but the server saw only %d requests", r.Requests, r.Errors, total)
			}
			if gotErrors := r.Errors > 0; gotErrors != tt.wantErrors {
				t.Fatalf("Errors = %d (%s), want errors: %t", r.Errors, r.FirstError, tt.wantErrors)
			}
			if tt.wantErrors && !strings.Contains(r.FirstError, "500") {
				t.Errorf("FirstError %q does not name the status", r.FirstError)
			}
			if r.Percentile(50) > r.Percentile(99) || r.Percentile(99) > r.Latencies[len(r.Latencies)-1] {
				t.Errorf("percentiles out of order: p50 %v, p99 %v, max %v", r.Percentile(50), r.Percentile(99), r.Latencies[len(r.Latencies)-1])
			}
			if len(r.CPU) != 1 || r.CPU[0] < 0 {
				t.Errorf("CPU = %v, want one non-negative sample", r.CPU)
			}
			if r.MachineBusy < 0 || r.MachineIdle < 0 || r.MachineBusy+r.MachineIdle == 0 {
				t.Errorf("machine busy %v, idle %v during the window", r.MachineBusy, r.MachineIdle)
			}
			if r.Elapsed != 150*time.Millisecond {
				t.Errorf("Elapsed = %v, want the measured window", r.Elapsed)
			}
		})
	}
}

func TestRunPasswords(t *testing.T) {
	// 4 workers cannot send 100,000 requests of 1ms in 200ms, and 20
	// requests take far less than a second.
	tests := []struct {
		name           string
		pool           int
		warmup, window time.Duration
		wantExhausted  bool
	}{
		{name: "pool outlasts the window", pool: 100000, warmup: 10 * time.Millisecond, window: 200 * time.Millisecond},
		{name: "pool runs out in the window", pool: 20, window: time.Second, wantExhausted: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				mu   sync.Mutex
				seen = map[string]int{}
			)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, p, _ := r.BasicAuth()
				mu.Lock()
				seen[p]++
				mu.Unlock()
				time.Sleep(time.Millisecond)
				_, _ = w.Write([]byte(`{"token":"x"}`))
			}))
			defer srv.Close()
			pool := make([]string, tt.pool)
			for i := range pool {
				pool[i] = "pw-" + strconv.Itoa(i)
			}
			r, err := Run(t.Context(), Load{
				URL: srv.URL + "/token", Username: "ci", Password: "unused", Passwords: pool,
				Concurrency: 4, Warmup: tt.warmup, Measure: tt.window,
				PIDs: []int{os.Getpid()},
			})
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			for p, n := range seen {
				if n != 1 || !strings.HasPrefix(p, "pw-") {
					t.Fatalf("password %q sent %d times, want each pool entry once", p, n)
				}
			}
			if r.Used != len(seen) || r.Requests == 0 || r.Errors != 0 {
				t.Fatalf("Used %d, %d passwords seen, %d requests, %d errors", r.Used, len(seen), r.Requests, r.Errors)
			}
			if r.Exhausted != tt.wantExhausted {
				t.Fatalf("Exhausted = %t, want %t (used %d of %d)", r.Exhausted, tt.wantExhausted, r.Used, tt.pool)
			}
			if tt.wantExhausted && (r.Used != tt.pool || r.Requests != tt.pool || r.Elapsed <= 0 || r.Elapsed >= tt.window) {
				t.Errorf("exhausted: used %d of %d, Elapsed %v; want all, and a window cut short", r.Used, tt.pool, r.Elapsed)
			}
			if !tt.wantExhausted && r.Elapsed != tt.window {
				t.Errorf("Elapsed = %v, want the whole window", r.Elapsed)
			}
		})
	}
}

func TestRunRejectsBadLoad(t *testing.T) {
	tests := []struct {
		name string
		load Load
	}{
		{"no workers", Load{URL: "http://127.0.0.1:1/", Measure: time.Second}},
		{"no window", Load{URL: "http://127.0.0.1:1/", Concurrency: 1}},
		{"negative warm-up", Load{URL: "http://127.0.0.1:1/", Concurrency: 1, Measure: time.Second, Warmup: -time.Second}},
		{"bad URL", Load{URL: "http://[::1", Concurrency: 1, Measure: time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Run(t.Context(), tt.load); err == nil {
				t.Fatal("Run succeeded")
			}
		})
	}
}
