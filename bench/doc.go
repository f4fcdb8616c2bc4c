// Package bench measures the bridge's token endpoint side by side with a
// minimal reference token server (bench/internal/refserver), each in its
// own process, so that each one's CPU time can be read alone.
//
// BenchmarkThroughput builds both servers, starts a private redis-server,
// mints an app password with `bridge passwords create`, and loads the
// reference, the bridge with the audit log off (log.level warn) and the
// bridge with it on (info, to a file) in turns, several rounds, so that
// machine noise hits all of them. Both bridges trust a workload issuer
// (go-oidc's oidctest on loopback, RS256, GitHub-Actions-shaped claims and
// rules, docs/workloads.md); the audit-on bridge is loaded a second time
// in each round with the same workload JWT as the password every request
// (the cached path), so the two differ only by the credential. With
// BENCH_BASELINE_BIN, a bridge binary built from an earlier commit runs
// beside them with the audit log on. After the rounds one shorter window
// (0.5s warm-up, 2s measured) sends a fresh JWT, minted before it, with
// every request: each one a first use (signature, claims, CEL). It prints, per server and round,
// requests per second, p50 and p99 latency, and the CPU time per token of
// the server and of redis-server, then the medians and the bridge's ratios
// to the reference. It asserts nothing about timing; it fails only when a
// server misbehaves (a response other than 200, a wrong grant).
//
//	make bench        # or:
//	go test -run '^$' -bench Throughput ./bench
//
// Environment knobs: BENCH_CONCURRENCY (64), BENCH_WARMUP (1s),
// BENCH_MEASURE (5s), BENCH_ROUNDS (5), BENCH_FIRSTUSE_TOKENS (10000, the
// first-use window's pool), BENCH_BASELINE_BIN, and BENCH_PERF=1 to run one
// more window per target under `perf record` and print the hottest
// functions.
//
// The load generator is usable on its own:
//
//	r, err := bench.Run(ctx, bench.Load{
//		URL:         "http://127.0.0.1:5001/token?service=registry.bench&scope=repository:team-a/app:pull",
//		Username:    "alice",
//		Password:    password,
//		Concurrency: 64,
//		Warmup:      2 * time.Second,
//		Measure:     10 * time.Second,
//		PIDs:        []int{serverPID},
//	})
//	fmt.Println(r.Throughput(), r.Percentile(99), r.CPUPerRequest(0))
package bench
