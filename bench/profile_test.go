package bench

import (
	"bytes"
	"cmp"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
)

// bucket is one part of a server's work, recognised by the functions on
// a sample's stack.
type bucket struct {
	name string
	// frames: the sample belongs here if any stack frame contains one.
	frames []string
	// leaves: or if its innermost frame does. Assembly without frame
	// pointers (P-256 arithmetic, SHA-512) often leaves only the leaf.
	leaves []string
}

// buckets split a token server's CPU samples. A sample goes to the first
// bucket that matches it, so the shares add up to 100%.
var buckets = []bucket{
	{name: "GC (background mark, assists, sweep)",
		frames: []string{"runtime.gcBgMarkWorker", "runtime.gcAssistAlloc", "runtime.bgsweep", "runtime.bgscavenge", "runtime.gcStart"}},
	{name: "JWT signing (ES256, claims, base64)",
		frames: []string{"golang-jwt/jwt", "bridge/tokens."},
		leaves: []string{"fips140/nistec", "fips140/sha512", "fips140/bigmod", "fips140/ecdsa", "fips140/drbg", "p256MulInternal", "p256SqrInternal"}},
	{name: "logging (log/slog)", frames: []string{"log/slog."}},
	{name: "metrics (prometheus)", frames: []string{"prometheus/client_golang"}},
	{name: "policy (groups, scope grant)", frames: []string{"bridge/groups.", "main.parseScopes"}},
	{name: "workload tokens (verifier, cache, CEL)", frames: []string{"bridge/workload.", "go-oidc", "go-jose", "cel-go"}},
	{name: "credentials (Basic, password, store, Redis)",
		frames: []string{"bridge/passwords.", "bridge/store", "go-redis", "crypto/subtle", "net/http.(*Request).BasicAuth"}},
	{name: "token handler, rest (query, JSON response)", frames: []string{"bridge/httpapi.", "main.(*server).handleToken"}},
	{name: "socket I/O (read, write syscalls)", frames: []string{"internal/poll.(*FD)", "syscall.Syscall", "syscall.RawSyscall"}},
	{name: "net/http server, rest", frames: []string{"net/http."}},
	{name: "Go scheduler, netpoll, other runtime", frames: []string{"runtime."}},
}

// breakdown is a perf profile summarised by buckets and by leaf function.
type breakdown struct {
	samples int
	// byBucket has one count per entry of buckets, then "other".
	byBucket []int
	// kernel counts samples whose innermost frame is in the kernel.
	kernel int
	// leaves counts samples by innermost function.
	leaves map[string]int
}

// parsePerfScript reads `perf script` output: one block per sample, a
// header line, then one line per frame, innermost first, like
//
//	4a1b2c crypto/ecdsa.Sign+0x37 (/path/to/binary)
func parsePerfScript(script string) breakdown {
	bd := breakdown{byBucket: make([]int, len(buckets)+1), leaves: map[string]int{}}
	var frames []string
	kernelLeaf := false
	flush := func() {
		if len(frames) == 0 {
			return
		}
		bd.samples++
		bd.leaves[frames[0]]++
		if kernelLeaf {
			bd.kernel++
		}
		bd.byBucket[classify(frames)]++
		frames, kernelLeaf = frames[:0], false
	}
	for line := range strings.Lines(script) {
		line = strings.TrimRight(line, "\n")
		if line == "" || (line[0] != ' ' && line[0] != '\t') {
			flush() // a blank line or the next sample's header
			continue
		}
		sym, dso := parseFrame(line)
		if len(frames) == 0 {
			kernelLeaf = dso == "[kernel.kallsyms]"
		}
		frames = append(frames, sym)
	}
	flush()
	return bd
}

// parseFrame splits "ADDR SYMBOL+0xOFF (DSO)" into symbol and DSO. The
// symbol may hold spaces (generic instantiations).
func parseFrame(line string) (sym, dso string) {
	line = strings.TrimSpace(line)
	_, rest, _ := strings.Cut(line, " ")
	if i := strings.LastIndex(rest, " ("); i >= 0 && strings.HasSuffix(rest, ")") {
		rest, dso = rest[:i], rest[i+2:len(rest)-1]
	}
	if i := strings.LastIndex(rest, "+0x"); i >= 0 {
		rest = rest[:i]
	}
	return rest, dso
}

// classify returns the index of the first bucket frames belong to, or
// len(buckets) for none.
func classify(frames []string) int {
	for i, b := range buckets {
		for _, p := range b.leaves {
			if strings.Contains(frames[0], p) {
				return i
			}
		}
		for _, f := range frames {
			for _, p := range b.frames {
				if strings.Contains(f, p) {
					return i
				}
			}
		}
	}
	return len(buckets)
}

// render prints the buckets' shares and the top leaf functions.
func (bd breakdown) render(top int) string {
	if bd.samples == 0 {
		return "no samples\n"
	}
	pct := func(n int) string { return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(bd.samples)) }
	var buf bytes.Buffer
	w := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "%d samples, %s in the kernel\n", bd.samples, pct(bd.kernel))
	for i, n := range bd.byBucket {
		name := "other"
		if i < len(buckets) {
			name = buckets[i].name
		}
		if n > 0 {
			fmt.Fprintf(w, "  %s\t%s\n", pct(n), name)
		}
	}
	w.Flush()
	type leaf struct {
		name string
		n    int
	}
	var leaves []leaf
	for name, n := range bd.leaves {
		leaves = append(leaves, leaf{name, n})
	}
	slices.SortFunc(leaves, func(a, b leaf) int { return cmp.Or(b.n-a.n, strings.Compare(a.name, b.name)) })
	fmt.Fprintf(&buf, "hottest functions (self):\n")
	for _, l := range leaves[:min(top, len(leaves))] {
		name := l.name
		if len(name) > 100 {
			name = name[:100] + "…"
		}
		fmt.Fprintf(&buf, "  %5s  %s\n", pct(l.n), name)
	}
	return buf.String()
}

// profile runs one more load window against t with `perf record`
// attached to its process, and keeps the summary in t.profile.
func profile(b *testing.B, dir string, t *target, s settings) {
	b.Helper()
	perfBin, err := exec.LookPath("perf")
	if err != nil {
		b.Fatalf("BENCH_PERF=1 needs perf (apt-get install -y linux-perf): %v", err)
	}
	data := filepath.Join(dir, "perf-"+strconv.Itoa(t.pid)+".data")
	window := s.warmup + s.measure
	rec := exec.CommandContext(b.Context(), perfBin, "record", "-F", "999", "-g", "-o", data,
		"-p", strconv.Itoa(t.pid), "--", "sleep", strconv.FormatFloat(window.Seconds(), 'f', 1, 64))
	var out bytes.Buffer
	rec.Stdout, rec.Stderr = &out, &out
	if err := rec.Start(); err != nil {
		b.Fatalf("perf record: %v", err)
	}
	if _, err := Run(b.Context(), Load{URL: t.url, Username: t.username, Password: t.password,
		Concurrency: s.concurrency, Warmup: s.warmup, Measure: s.measure}); err != nil {
		b.Fatal(err)
	}
	if err := rec.Wait(); err != nil {
		b.Fatalf("perf record: %v\n%s", err, out.String())
	}
	script, err := exec.CommandContext(b.Context(), perfBin, "script", "-i", data).Output()
	if err != nil {
		b.Fatalf("perf script: %v", err)
	}
	t.profile = parsePerfScript(string(script)).render(15)
}
