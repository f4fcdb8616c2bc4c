package bench

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/registry-bridge/bridge/internal/testenv"
)

const (
	module  = "github.com/registry-bridge/bridge"
	service = "registry.bench"
	// tokenQuery is the request every worker repeats: a pull-and-push
	// token for one repository, which the team-a rule grants in full.
	tokenQuery = "/token?service=" + service + "&scope=repository:team-a/app:pull,push"
	user       = "alice"
	// refKeyPrefix is refserver's KeyPrefix.
	refKeyPrefix = "ref:pw:"
)

// bridgeConfig is the bridge's configuration file; %s are the listen
// address (twice), the Redis address, the keys directory and the log level.
// The access rules, appended, are deploy/examples/bridge.yaml's.
const bridgeConfig = `listen: %[1]s
public_url: http://%[1]s
store:
  redis:
    url: redis://%[2]s/0
token:
  issuer: registry-bridge
  service: ` + service + `
  lifetime: 5m
  signing_key_file: %[3]s/signing.key
log:
  level: %[4]s
  format: json
`

// settings are the benchmark's knobs, from the environment.
type settings struct {
	concurrency     int
	warmup, measure time.Duration
	rounds          int
	perf            bool
}

func loadSettings(b *testing.B) settings {
	b.Helper()
	s := settings{concurrency: 64, warmup: time.Second, measure: 5 * time.Second, rounds: 5}
	if v := os.Getenv("BENCH_CONCURRENCY"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("BENCH_CONCURRENCY=%q: want a positive integer", v)
		}
		s.concurrency = n
	}
	if v := os.Getenv("BENCH_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("BENCH_ROUNDS=%q: want a positive integer", v)
		}
		s.rounds = n
	}
	for name, d := range map[string]*time.Duration{"BENCH_WARMUP": &s.warmup, "BENCH_MEASURE": &s.measure} {
		if v := os.Getenv(name); v != "" {
			p, err := time.ParseDuration(v)
			if err != nil || p <= 0 {
				b.Fatalf("%s=%q: want a positive duration such as 5s", name, v)
			}
			*d = p
		}
	}
	s.perf = os.Getenv("BENCH_PERF") == "1"
	return s
}

// target is one token server under load, with one credential.
type target struct {
	name string
	// key names the target in the benchmark's metrics.
	key      string
	url      string
	username string
	password string
	// subject is the registry token's sub the credential must yield.
	subject string
	pid     int
	// against, if set, is the target this one is compared with round by
	// round in the report (workload JWT against app password, current
	// bridge against the baseline binary).
	against *target
	rounds  []Result
	// profile summarises a perf profile, when BENCH_PERF=1.
	profile string
}

// BenchmarkThroughput compares the bridge's token endpoint with the
// reference server; see the package documentation. It runs its rounds once,
// whatever b.N.
func BenchmarkThroughput(b *testing.B) {
	redisBin := testenv.Require(b, "redis-server", testenv.RedisInstallHint)
	s := loadSettings(b)
	ctx := b.Context()
	dir := b.TempDir()

	redisSrv := testenv.StartRedisT(b)
	redisPID, redisAddr := redisSrv.PID(), redisSrv.Addr
	ref := startReference(b, dir, redisAddr)
	iss := startIssuer(b)
	bridges := startBridges(b, dir, redisAddr, iss)
	targets := append([]*target{ref}, bridges...)
	for _, t := range targets {
		checkGrant(b, t)
	}

	// The report goes to stdout: the testing package cuts a benchmark's
	// log to ten lines.
	fmt.Printf("%s\nload: %d workers, warm-up %v, measured %v, %d rounds; GET %s\n",
		machineFacts(redisBin), s.concurrency, s.warmup, s.measure, s.rounds, tokenQuery)

	b.ResetTimer()
	for round := range s.rounds {
		// Every second round runs backwards, so no server always goes first.
		order := slices.Clone(targets)
		if round%2 == 1 {
			slices.Reverse(order)
		}
		for _, t := range order {
			r, err := Run(ctx, Load{
				URL: t.url, Username: t.username, Password: t.password,
				Concurrency: s.concurrency, Warmup: s.warmup, Measure: s.measure,
				PIDs: []int{t.pid, redisPID, os.Getpid()},
			})
			if err != nil {
				b.Fatal(err)
			}
			fmt.Printf("round %d, %s: %.0f req/s, p99 %s\n", round+1, t.name, r.Throughput(), us(r.Percentile(99)))
			if r.Errors > 0 {
				b.Errorf("%s, round %d: %d failed requests; first: %s", t.name, round+1, r.Errors, r.FirstError)
			}
			t.rounds = append(t.rounds, r)
		}
	}
	first := firstUse(b, s, targets, iss, redisPID)
	if s.perf {
		for _, t := range targets {
			profile(b, dir, t, s)
		}
	}
	b.StopTimer()

	fmt.Print(report(targets, loadAverage()))
	if first != nil {
		fmt.Print(first.line)
	}
	for _, t := range targets {
		if t.profile != "" {
			fmt.Printf("\nperf profile of %s under the same load:\n%s", t.name, t.profile)
		}
	}
	b.ReportMetric(0, "ns/op")
	for _, t := range targets {
		m := medians(t.rounds)
		b.ReportMetric(m.rps, t.key+"_req/s")
		b.ReportMetric(float64(m.p99)/1e3, t.key+"_p99-µs")
		b.ReportMetric(float64(m.cpu)/1e3, t.key+"_cpu-µs/token")
	}
	if first != nil {
		s := summarize(first.r)
		b.ReportMetric(s.rps, "workload-first-use_req/s")
		b.ReportMetric(float64(s.cpu)/1e3, "workload-first-use_cpu-µs/token")
	}
}

// startReference builds and starts refserver with a record for user in
// Redis, and returns it as a target.
func startReference(b *testing.B, dir, redisAddr string) *target {
	b.Helper()
	bin := goBuild(b, dir, "refserver", module+"/bench/internal/refserver")
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer rdb.Close()
	// The record: SHA-256 of a random 256-bit password.
	var secret [32]byte
	_, _ = rand.Read(secret[:])
	password := base64.RawURLEncoding.EncodeToString(secret[:])
	digest := sha256.Sum256([]byte(password))
	if err := rdb.Set(b.Context(), refKeyPrefix+user, `{"sha256":"`+hex.EncodeToString(digest[:])+`"}`, 0).Err(); err != nil {
		b.Fatalf("seed the reference's record: %v", err)
	}
	addr := freeAddr(b)
	p := testenv.Start(b, testenv.Cmd{
		Name:     "refserver",
		Path:     bin,
		Args:     []string{"-listen", addr, "-redis", redisAddr, "-service", service},
		ReadyURL: "http://" + addr + "/healthz",
	})
	return &target{name: "reference", key: "reference", url: "http://" + addr + tokenQuery,
		username: user, password: password, subject: user, pid: p.PID()}
}

// startBridges builds the bridge (testenv.BuildBridge), generates its key, mints an app password
// for user in team-a, and starts two bridges on the same Redis, both
// trusting iss as a workload issuer: with the audit log off (log.level
// warn) and on (info, to a file). The one with the audit log on is also
// a second target: the same process and request with a workload JWT of
// iss as the password, the same token every time (the cached path).
func startBridges(b *testing.B, dir, redisAddr string, iss *issuer) []*target {
	b.Helper()
	bin := testenv.BuildBridge(b)
	keys := filepath.Join(dir, "keys")
	runCmd(b, bin, "keys", "generate", "--out", keys)
	jwt, err := iss.token(time.Now(), 0)
	if err != nil {
		b.Fatal(err)
	}
	var bridges []*target
	var password string
	for _, level := range []string{"warn", "info"} {
		addr := freeAddr(b)
		config := filepath.Join(dir, "bridge-"+level+".yaml")
		data := fmt.Appendf(nil, bridgeConfig, addr, redisAddr, keys, level)
		data = append(data, iss.workloadSection()...)
		data = append(data, testenv.ExampleAccess(b)...)
		if err := os.WriteFile(config, data, 0o600); err != nil {
			b.Fatal(err)
		}
		if password == "" {
			password = strings.TrimSpace(runCmd(b, bin, "passwords", "create", "--config", config,
				"--user", user, "--groups", "team-a", "--name", "bench"))
		}
		p := testenv.Start(b, testenv.Cmd{
			Name:     "bridge-" + level,
			Path:     bin,
			Args:     []string{"serve", "--config", config},
			ReadyURL: "http://" + addr + "/readyz",
		})
		t := &target{name: "bridge (audit off)", key: "bridge", url: "http://" + addr + tokenQuery,
			username: user, password: password, subject: user, pid: p.PID()}
		if level == "info" {
			t.name, t.key = "bridge (audit on)", "bridge-audit"
		}
		bridges = append(bridges, t)
	}
	app := bridges[1]
	wl := &target{name: "bridge, workload JWT (audit on)", key: "workload-audit", url: app.url,
		username: workloadUser, password: jwt, subject: workloadSubject, pid: app.pid, against: app}
	// BENCH_BASELINE_BIN, a bridge binary built from an earlier commit,
	// runs beside them with the audit log on (the production default), so
	// a change on the token path is measured before and after in one run.
	// It has no workloads section: the baseline may predate it.
	if bin := os.Getenv("BENCH_BASELINE_BIN"); bin != "" {
		addr := freeAddr(b)
		config := filepath.Join(dir, "bridge-baseline.yaml")
		if err := os.WriteFile(config, append(fmt.Appendf(nil, bridgeConfig, addr, redisAddr, keys, "info"), testenv.ExampleAccess(b)...), 0o600); err != nil {
			b.Fatal(err)
		}
		p := testenv.Start(b, testenv.Cmd{
			Name:     "bridge-baseline",
			Path:     bin,
			Args:     []string{"serve", "--config", config},
			ReadyURL: "http://" + addr + "/readyz",
		})
		base := &target{name: "baseline (audit on)", key: "baseline-audit", url: "http://" + addr + tokenQuery,
			username: user, password: password, subject: user, pid: p.PID()}
		app.against = base
		bridges = append(bridges, base)
	}
	return append(bridges, wl)
}

// disturbedCores is how much CPU, in cores, the rest of the machine may
// use during a window before the report calls the window disturbed. On a
// quiet machine it is about 0: the kernel's network work is charged to
// the processes.
const disturbedCores = 0.2

// summary is one server's numbers from one round, or their medians.
type summary struct {
	rps                          float64
	p50, p99, cpu, redis, client time.Duration
	// others is the machine's busy CPU time that none of the measured
	// processes used (kernel network work outside them, other programs),
	// and idle its idle time, both in cores.
	others, idle float64
}

func summarize(r Result) summary {
	s := summary{
		rps: r.Throughput(), p50: r.Percentile(50), p99: r.Percentile(99),
		cpu: r.CPUPerRequest(0), redis: r.CPUPerRequest(1), client: r.CPUPerRequest(2),
	}
	if r.Elapsed > 0 {
		others := r.MachineBusy
		for _, c := range r.CPU {
			others -= c
		}
		s.others = others.Seconds() / r.Elapsed.Seconds()
		s.idle = r.MachineIdle.Seconds() / r.Elapsed.Seconds()
	}
	return s
}

// median returns the median of v; with an even count, the mean of the
// middle two. It sorts v.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// medians returns each number's median over the rounds.
func medians(rs []Result) summary {
	med := func(get func(summary) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = get(summarize(r))
		}
		return median(v)
	}
	dur := func(get func(summary) time.Duration) time.Duration {
		return time.Duration(med(func(s summary) float64 { return float64(get(s)) }))
	}
	return summary{
		rps:    med(func(s summary) float64 { return s.rps }),
		p50:    dur(func(s summary) time.Duration { return s.p50 }),
		p99:    dur(func(s summary) time.Duration { return s.p99 }),
		cpu:    dur(func(s summary) time.Duration { return s.cpu }),
		redis:  dur(func(s summary) time.Duration { return s.redis }),
		client: dur(func(s summary) time.Duration { return s.client }),
		others: med(func(s summary) float64 { return s.others }),
		idle:   med(func(s summary) float64 { return s.idle }),
	}
}

// pairedRatios returns the medians over the rounds of t's throughput and
// p99 divided by ref's in the same round. Neighbouring windows share the
// machine's mood, so these ratios are steadier than ratios of medians.
func pairedRatios(t, ref *target) (rps, p99 float64) {
	var rv, pv []float64
	for i := range min(len(t.rounds), len(ref.rounds)) {
		a, b := summarize(t.rounds[i]), summarize(ref.rounds[i])
		rv = append(rv, a.rps/b.rps)
		pv = append(pv, float64(a.p99)/float64(b.p99))
	}
	return median(rv), median(pv)
}

// pairedCPU returns the median over the rounds of t's server CPU per
// token divided by ref's in the same round.
func pairedCPU(t, ref *target) float64 {
	var v []float64
	for i := range min(len(t.rounds), len(ref.rounds)) {
		a, b := summarize(t.rounds[i]), summarize(ref.rounds[i])
		if b.cpu > 0 {
			v = append(v, float64(a.cpu)/float64(b.cpu))
		}
	}
	return median(v)
}

// report renders every round, the medians and the ratios to the targets;
// targets[0] is the reference.
func report(targets []*target, loadAvg string) string {
	var buf bytes.Buffer
	w := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "round\tserver\treq/s\tp50\tp99\tserver CPU/token\tredis CPU/token\tclient CPU/req\tothers\tidle\terrors\treq/s vs ref\tp99 vs ref\t")
	row := func(round, name string, s summary, errs string, rps, p99 float64) {
		ratios := "\t"
		if rps > 0 {
			ratios = fmt.Sprintf("%.2f×\t%.2f×", rps, p99)
		}
		fmt.Fprintf(w, "%s\t%s\t%.0f\t%s\t%s\t%s\t%s\t%s\t%.2f\t%.2f\t%s\t%s\t\n", round, name, s.rps,
			us(s.p50), us(s.p99), us(s.cpu), us(s.redis), us(s.client), s.others, s.idle, errs, ratios)
	}
	ref := targets[0]
	for i := range ref.rounds {
		r := summarize(ref.rounds[i])
		for j, t := range targets {
			s := summarize(t.rounds[i])
			var rps, p99 float64
			if j > 0 {
				rps, p99 = s.rps/r.rps, float64(s.p99)/float64(r.p99)
			}
			row(strconv.Itoa(i+1), t.name, s, strconv.Itoa(t.rounds[i].Errors), rps, p99)
		}
	}
	for j, t := range targets {
		var rps, p99 float64
		if j > 0 {
			rps, p99 = pairedRatios(t, ref)
		}
		row("median", t.name, medians(t.rounds), "", rps, p99)
	}
	w.Flush()
	refm := medians(ref.rounds)
	for _, t := range targets[1:] {
		m := medians(t.rounds)
		rps, p99 := pairedRatios(t, ref)
		fmt.Fprintf(&buf, "%s vs reference: throughput %.2f× (target ≥ 1.25×), p99 %.2f× (target ≤ 1.5×), %.0f req/s (aim 15000: %.0f%%), CPU %s/token (aim ≤ 100µs; reference %s)\n",
			t.name, rps, p99, m.rps, 100*m.rps/15000, us(m.cpu), us(refm.cpu))
	}
	for _, t := range targets[1:] {
		if t.against == nil {
			continue
		}
		rps, p99 := pairedRatios(t, t.against)
		fmt.Fprintf(&buf, "%s vs %s: server CPU/token %.2f× (%s vs %s), throughput %.2f×, p99 %.2f×\n",
			t.name, t.against.name, pairedCPU(t, t.against), us(medians(t.rounds).cpu), us(medians(t.against.rounds).cpu), rps, p99)
	}
	var disturbed []string
	for i := range ref.rounds {
		for _, t := range targets {
			if summarize(t.rounds[i]).others > disturbedCores {
				disturbed = append(disturbed, fmt.Sprintf("%d %s", i+1, t.name))
			}
		}
	}
	if len(disturbed) > 0 {
		fmt.Fprintf(&buf, "DISTURBED: other work used more than %.2f cores in round %s; compare with a quiet run\n",
			disturbedCores, strings.Join(disturbed, ", round "))
	}
	fmt.Fprintf(&buf, "ratios are medians of per-round ratios; others and idle: the rest of the machine's busy and its idle CPU, in cores\n")
	fmt.Fprintf(&buf, "load average at the end (the benchmark's own included): %s\n", loadAvg)
	return buf.String()
}

// us formats d in microseconds below 1ms and in milliseconds above.
func us(d time.Duration) string {
	switch {
	case d < 10*time.Microsecond:
		return fmt.Sprintf("%.1fµs", float64(d)/1e3)
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/1e3)
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.1fms", float64(d)/1e6)
}

// checkGrant fails the benchmark unless t answers the benchmark's request
// with a well-formed token granting exactly pull and push: a server that
// granted less could look faster for it.
func checkGrant(b *testing.B, t *target) {
	b.Helper()
	req, err := http.NewRequestWithContext(b.Context(), http.MethodGet, t.url, nil)
	if err != nil {
		b.Fatal(err)
	}
	req.SetBasicAuth(t.username, t.password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatalf("%s: %v", t.name, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("%s: %s %s (%v)", t.name, resp.Status, body, err)
	}
	var tr struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		IssuedAt    string `json:"issued_at"`
	}
	if err := json.Unmarshal(body, &tr); err != nil || tr.Token == "" || tr.Token != tr.AccessToken || tr.ExpiresIn <= 0 || tr.IssuedAt == "" {
		b.Fatalf("%s: bad token response %s (%v)", t.name, body, err)
	}
	parts := strings.Split(tr.Token, ".")
	if len(parts) != 3 {
		b.Fatalf("%s: token is not a JWS: %s", t.name, tr.Token)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		b.Fatalf("%s: token payload: %v", t.name, err)
	}
	var claims struct {
		Sub    string `json:"sub"`
		Access []struct {
			Type    string   `json:"type"`
			Name    string   `json:"name"`
			Actions []string `json:"actions"`
		} `json:"access"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		b.Fatalf("%s: token claims: %v", t.name, err)
	}
	if len(claims.Access) != 1 {
		b.Fatalf("%s: access %+v, want one entry", t.name, claims.Access)
	}
	a := claims.Access[0]
	actions := slices.Sorted(slices.Values(a.Actions))
	if claims.Sub != t.subject || a.Type != "repository" || a.Name != "team-a/app" || !slices.Equal(actions, []string{"pull", "push"}) {
		b.Fatalf("%s: token for %q grants %+v, want %s: repository team-a/app pull,push", t.name, claims.Sub, a, t.subject)
	}
}

// goBuild builds pkg into dir/name and returns the binary's path.
func goBuild(b *testing.B, dir, name, pkg string) string {
	b.Helper()
	out := filepath.Join(dir, name)
	cmd := exec.CommandContext(b.Context(), "go", "build", "-o", out, pkg)
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build %s: %v\n%s", pkg, err, msg)
	}
	return out
}

// runCmd runs a short command with testenv.Run in a clean environment
// and returns its stdout.
func runCmd(b *testing.B, bin string, args ...string) string {
	b.Helper()
	var stderr bytes.Buffer
	out, err := testenv.Run(b.Context(), testenv.Command{Path: bin, Args: args, Env: []string{"HOME=" + b.TempDir()}, Stderr: &stderr})
	if err != nil {
		b.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr(b *testing.B) string {
	b.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(testenv.FreePort(b)))
}

// machineFacts describes the machine the numbers come from.
func machineFacts(redisBin string) string {
	model := "unknown CPU"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	redisVersion := "redis-server ?"
	if out, err := exec.Command(redisBin, "--version").Output(); err == nil {
		redisVersion = strings.TrimSpace(string(out))
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	load := loadAverage()
	// The benchmark keeps both cores busy, so only the load before it
	// starts tells whether other work disturbed it.
	if one, err := strconv.ParseFloat(strings.Fields(load + " x")[0], 64); err == nil && one >= 1.5 {
		load += " (busy machine: compare with a quiet run)"
	}
	return fmt.Sprintf("machine: %d × %s, Linux %s, %s %s/%s, GOMAXPROCS %d\n%s\nload average at the start: %s",
		runtime.NumCPU(), model, strings.TrimSpace(string(kernel)), runtime.Version(), runtime.GOOS, runtime.GOARCH,
		runtime.GOMAXPROCS(0), redisVersion, load)
}

// loadAverage returns the 1, 5 and 15 minute load averages.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
