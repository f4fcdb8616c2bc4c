package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Load describes one closed-loop load window against one URL.
type Load struct {
	// URL is requested with GET by every worker, over and over.
	URL string
	// Username and Password are sent as Basic credentials.
	Username, Password string
	// Passwords, if set, replace Password: each request takes the next
	// one, in order, and uses it once (a token's first use, say). When
	// none is left the workers stop; see Result.Exhausted.
	Passwords []string
	// Concurrency is the number of workers, each with at most one request
	// in flight. The client keeps twice that many idle connections to the host.
	Concurrency int
	// Warmup is run first and not recorded: connections are opened, the
	// servers' caches and pools fill.
	Warmup time.Duration
	// Measure is the recorded window that follows the warm-up.
	Measure time.Duration
	// PIDs are processes whose CPU time is read at the start and the end
	// of the measured window (see ProcessCPU); Result.CPU holds the
	// differences in the same order.
	PIDs []int
	// Timeout bounds each request; 0 means 10 seconds.
	Timeout time.Duration
}

// Result is what one Load window measured.
type Result struct {
	// Requests is the number of 200 responses that started and ended
	// within the measured window.
	Requests int
	// Errors counts responses other than 200 and failed requests during
	// the warm-up and the measured window.
	Errors int
	// FirstError describes the first error, if any.
	FirstError string
	// Elapsed is the measured window's length, Load.Measure; or, when
	// Load.Passwords ran out before the window ended, the time from its
	// start to the end of the last recorded request.
	Elapsed time.Duration
	// Exhausted: Load.Passwords ran out before the window ended. The CPU
	// samples still bracket the whole window, so CPU per request also
	// holds what the servers did after the last request (next to nothing).
	Exhausted bool
	// Used is how many of Load.Passwords were sent.
	Used int
	// Latencies are the Requests' latencies (request start to body fully
	// read), in ascending order.
	Latencies []time.Duration
	// CPU is the CPU time (user + system) each of Load.PIDs used during
	// the measured window.
	CPU []time.Duration
	// MachineBusy and MachineIdle are the whole machine's busy and idle
	// CPU time during the measured window, summed over its CPUs (see
	// MachineCPU).
	MachineBusy, MachineIdle time.Duration
}

// Throughput returns the recorded requests per second.
func (r Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// Percentile returns the latency that p (0 < p ≤ 100) percent of the
// requests did not exceed (the nearest-rank method), or 0 without requests.
func (r Result) Percentile(p float64) time.Duration {
	n := len(r.Latencies)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(float64(n) * p / 100))
	return r.Latencies[min(max(rank, 1), n)-1]
}

// CPUPerRequest returns the CPU time of the i-th of Load.PIDs per recorded
// request, or 0 without requests.
func (r Result) CPUPerRequest(i int) time.Duration {
	if r.Requests == 0 || i >= len(r.CPU) {
		return 0
	}
	return r.CPU[i] / time.Duration(r.Requests)
}

// worker is one worker's tally; it is merged when the window ends.
type worker struct {
	latencies  []time.Duration
	errors     int
	firstError error
	// lastEnd is the end of the last recorded request.
	lastEnd time.Time
}

// Run applies l: Concurrency workers loop GET requests for Warmup, then
// for Measure, and stop issuing requests when the window ends. It returns
// once every worker has finished its last request. It fails only when the
// load cannot be applied at all (bad URL, unreadable /proc); failed
// requests are counted in Result.Errors.
func Run(ctx context.Context, l Load) (Result, error) {
	if l.Concurrency < 1 || l.Measure <= 0 || l.Warmup < 0 {
		return Result{}, fmt.Errorf("bench: run: want concurrency ≥ 1, measure > 0, warmup ≥ 0; got %d, %v, %v",
			l.Concurrency, l.Measure, l.Warmup)
	}
	if l.Timeout == 0 {
		l.Timeout = 10 * time.Second
	}
	transport := &http.Transport{
		MaxIdleConns:        l.Concurrency * 2,
		MaxIdleConnsPerHost: l.Concurrency * 2,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: l.Timeout}

	reqs := make([]*http.Request, l.Concurrency)
	for i := range reqs {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.URL, nil)
		if err != nil {
			return Result{}, fmt.Errorf("bench: run: %w", err)
		}
		req.SetBasicAuth(l.Username, l.Password)
		reqs[i] = req
	}
	// next returns worker i's next request, or false when the pool of
	// passwords is used up.
	var taken, exhaustedAt atomic.Int64
	next := func(i int) (*http.Request, bool) { return reqs[i], true }
	if len(l.Passwords) > 0 {
		next = func(i int) (*http.Request, bool) {
			n := taken.Add(1) - 1
			if n >= int64(len(l.Passwords)) {
				exhaustedAt.CompareAndSwap(0, time.Now().UnixNano())
				return nil, false
			}
			req := reqs[i].Clone(ctx)
			req.SetBasicAuth(l.Username, l.Passwords[n])
			return req, true
		}
	}

	start := time.Now()
	measureStart := start.Add(l.Warmup)
	end := measureStart.Add(l.Measure)

	// The CPU samples are taken on a schedule, not after the workers, so
	// that they bracket the measured window whatever the workers do.
	var (
		cpuBefore, cpuAfter cpuSample
		cpuErr              error
		sampled             = make(chan struct{})
	)
	go func() {
		defer close(sampled)
		wait := func(t time.Time) bool {
			timer := time.NewTimer(time.Until(t))
			defer timer.Stop()
			select {
			case <-timer.C:
				return true
			case <-ctx.Done():
				return false
			}
		}
		if !wait(measureStart) {
			cpuErr = ctx.Err()
			return
		}
		if cpuBefore, cpuErr = sampleCPU(l.PIDs); cpuErr != nil {
			return
		}
		if !wait(end) {
			cpuErr = ctx.Err()
			return
		}
		cpuAfter, cpuErr = sampleCPU(l.PIDs)
	}()

	workers := make([]worker, l.Concurrency)
	perWorker := int(l.Measure.Seconds()*20000)/l.Concurrency + 64
	var wg sync.WaitGroup
	for i := range workers {
		w := &workers[i]
		w.latencies = make([]time.Duration, 0, perWorker)
		wg.Go(func() { w.loop(client, func() (*http.Request, bool) { return next(i) }, measureStart, end) })
	}
	wg.Wait()
	<-sampled
	if cpuErr != nil {
		return Result{}, fmt.Errorf("bench: run: sample CPU: %w", cpuErr)
	}

	r := Result{
		Elapsed:     l.Measure,
		CPU:         make([]time.Duration, len(l.PIDs)),
		MachineBusy: cpuAfter.busy - cpuBefore.busy,
		MachineIdle: cpuAfter.idle - cpuBefore.idle,
	}
	for i := range r.CPU {
		r.CPU[i] = cpuAfter.procs[i] - cpuBefore.procs[i]
	}
	for _, w := range workers {
		r.Latencies = append(r.Latencies, w.latencies...)
		r.Errors += w.errors
		if r.FirstError == "" && w.firstError != nil {
			r.FirstError = w.firstError.Error()
		}
	}
	slices.Sort(r.Latencies)
	r.Requests = len(r.Latencies)
	if len(l.Passwords) > 0 {
		r.Used = int(min(taken.Load(), int64(len(l.Passwords))))
		if at := exhaustedAt.Load(); at != 0 && at < end.UnixNano() {
			r.Exhausted = true
			var last time.Time
			for _, w := range workers {
				if w.lastEnd.After(last) {
					last = w.lastEnd
				}
			}
			r.Elapsed = max(last.Sub(measureStart), 0)
		}
	}
	return r, nil
}

// loop issues next's requests until end or until next has none,
// recording the latency of every 200 response that started at or after
// measureStart and ended before end.
func (w *worker) loop(client *http.Client, next func() (*http.Request, bool), measureStart, end time.Time) {
	for {
		t0 := time.Now()
		if !t0.Before(end) {
			return
		}
		req, ok := next()
		if !ok || req.Context().Err() != nil {
			return
		}
		err := do(client, req)
		t1 := time.Now()
		if err != nil {
			w.errors++
			if w.firstError == nil {
				w.firstError = err
			}
			continue
		}
		if !t0.Before(measureStart) && t1.Before(end) {
			w.latencies = append(w.latencies, t1.Sub(t0))
			w.lastEnd = t1
		}
	}
}

// errStatus is wrapped by do's error for a response other than 200.
var errStatus = errors.New("unexpected status")

// do sends req and reads the whole body, so that the connection is reused.
func do(client *http.Client, req *http.Request) error {
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		return fmt.Errorf("%w %s: %q", errStatus, resp.Status, body)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

// cpuSample is the CPU time of some processes and of the machine.
type cpuSample struct {
	procs      []time.Duration
	busy, idle time.Duration
}

func sampleCPU(pids []int) (cpuSample, error) {
	s := cpuSample{procs: make([]time.Duration, len(pids))}
	for i, pid := range pids {
		d, err := ProcessCPU(pid)
		if err != nil {
			return cpuSample{}, err
		}
		s.procs[i] = d
	}
	var err error
	s.busy, s.idle, err = MachineCPU()
	return s, err
}
