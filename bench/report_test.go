package bench

import (
	"strings"
	"testing"
	"time"
)

func TestUs(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0.0µs"},
		{2500 * time.Nanosecond, "2.5µs"},
		{87 * time.Microsecond, "87µs"},
		{6937 * time.Microsecond, "6.94ms"},
		{19100 * time.Microsecond, "19.1ms"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := us(tt.d); got != tt.want {
				t.Errorf("us(%v) = %q, want %q", tt.d, got, tt.want)
			}
		})
	}
}

// result returns a Result of n requests in one second, all of latency
// lat, with server CPU cpu in total.
func result(n int, lat, cpu time.Duration) Result {
	r := Result{Requests: n, Elapsed: time.Second, CPU: []time.Duration{cpu, 0, 0}}
	for range n {
		r.Latencies = append(r.Latencies, lat)
	}
	return r
}

func TestMedians(t *testing.T) {
	tests := []struct {
		name    string
		rounds  []Result
		wantRPS float64
		wantP99 time.Duration
		wantCPU time.Duration
	}{
		{"one round", []Result{result(100, time.Millisecond, 10*time.Millisecond)}, 100, time.Millisecond, 100 * time.Microsecond},
		{"two rounds: the mean of both",
			[]Result{result(100, time.Millisecond, 10*time.Millisecond), result(300, 3*time.Millisecond, 60*time.Millisecond)},
			200, 2 * time.Millisecond, 150 * time.Microsecond},
		{"three rounds: the middle one, metric by metric",
			[]Result{result(100, 5*time.Millisecond, 10*time.Millisecond), result(300, time.Millisecond, 60*time.Millisecond), result(200, 2*time.Millisecond, 60*time.Millisecond)},
			200, 2 * time.Millisecond, 200 * time.Microsecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := medians(tt.rounds)
			if m.rps != tt.wantRPS || m.p99 != tt.wantP99 || m.cpu != tt.wantCPU {
				t.Errorf("medians = %.1f req/s, p99 %v, cpu %v; want %.1f, %v, %v", m.rps, m.p99, m.cpu, tt.wantRPS, tt.wantP99, tt.wantCPU)
			}
		})
	}
}

func TestPairedRatios(t *testing.T) {
	// The machine halves its speed in round 2; both servers feel it.
	ref := &target{rounds: []Result{result(1000, 4*time.Millisecond, 0), result(500, 8*time.Millisecond, 0), result(1000, 4*time.Millisecond, 0)}}
	br := &target{rounds: []Result{result(1200, 2*time.Millisecond, 0), result(600, 4*time.Millisecond, 0), result(1500, 3*time.Millisecond, 0)}}
	rps, p99 := pairedRatios(br, ref)
	if rps != 1.2 || p99 != 0.5 {
		t.Errorf("pairedRatios = %v, %v; want 1.2, 0.5", rps, p99)
	}
}

func TestReport(t *testing.T) {
	ref := &target{name: "reference", rounds: []Result{result(1000, 4*time.Millisecond, 100*time.Millisecond)}}
	br := &target{name: "bridge (audit off)", rounds: []Result{result(1500, 5*time.Millisecond, 90*time.Millisecond)}}
	br.rounds[0].MachineBusy = 2 * time.Second // 1.81 cores of others
	wl := &target{name: "workload", against: br, rounds: []Result{result(1200, 5*time.Millisecond, 79200*time.Microsecond)}}
	out := report([]*target{ref, br, wl}, "0.10 0.20 0.30")
	for _, want := range []string{
		"bridge (audit off) vs reference: throughput 1.50× (target ≥ 1.25×), p99 1.25× (target ≤ 1.5×), 1500 req/s (aim 15000: 10%), CPU 60µs/token",
		"median  bridge (audit off)   1500",
		"1.50×       1.25×",
		"workload vs bridge (audit off): server CPU/token 1.10× (66µs vs 60µs), throughput 0.80×, p99 1.00×",
		"others",
		"DISTURBED: other work used more than 0.20 cores in round 1 bridge (audit off);",
		"0.10 0.20 0.30",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func TestSummarizeMachine(t *testing.T) {
	r := Result{Elapsed: 2 * time.Second, CPU: []time.Duration{time.Second, 500 * time.Millisecond, 500 * time.Millisecond},
		MachineBusy: 3 * time.Second, MachineIdle: time.Second}
	s := summarize(r)
	if s.others != 0.5 || s.idle != 0.5 {
		t.Errorf("others %v cores, idle %v cores; want 0.5, 0.5", s.others, s.idle)
	}
}
