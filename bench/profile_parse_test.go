package bench

import (
	"strings"
	"testing"
)

// script is `perf script` output for five samples: signing with a full
// stack, a SHA-512 leaf whose stack was lost, a kernel sample under a
// socket write, the audit log, and one nothing claims.
const script = `bridge  2966  1177.572306:    1001001 cpu-clock:ppp: 
	          359457 crypto/internal/fips140/nistec.p256SelectAffine.abi0+0xd7 (/tmp/b/bridge)
	          3706d2 crypto/internal/fips140/ecdsa.Sign[go.shape.interface { BlockSize() int; Reset() }]+0x272 (/tmp/b/bridge)
	          2734d7 github.com/registry-bridge/bridge/tokens.(*Issuer).Issue+0x137 (/tmp/b/bridge)
	          25f790 net/http.(*conn).serve+0x690 (/tmp/b/bridge)

bridge  2965  1177.573156:    1001001 cpu-clock:ppp: 
	          331a63 crypto/internal/fips140/sha512.blockAVX2.abi0+0xca3 (/tmp/b/bridge)
	f67b7b8dee777799 [unknown] ([unknown])

bridge  2965  1177.573200:    1001001 cpu-clock:ppp: 
	ffffffff821f5b65 tcp_sendmsg+0x105 ([kernel.kallsyms])
	          4a1b2c internal/poll.(*FD).Write+0x1c (/tmp/b/bridge)
	          25f790 net/http.(*conn).serve+0x690 (/tmp/b/bridge)

bridge  2965  1177.573300:    1001001 cpu-clock:ppp: 
	          4a1b2c log/slog.(*JSONHandler).Handle+0x1c (/tmp/b/bridge)
	          4a1b2d github.com/registry-bridge/bridge/httpapi.(*Server).finishToken+0x1c (/tmp/b/bridge)

bridge  2965  1177.573400:    1001001 cpu-clock:ppp: 
	          4a1b2c somewhere.else+0x1c (/tmp/b/bridge)
`

func TestParsePerfScript(t *testing.T) {
	bd := parsePerfScript(script)
	if bd.samples != 5 || bd.kernel != 1 {
		t.Fatalf("samples %d, kernel %d; want 5, 1", bd.samples, bd.kernel)
	}
	want := map[string]int{
		"JWT signing (ES256, claims, base64)": 2,
		"socket I/O (read, write syscalls)":   1,
		"logging (log/slog)":                  1,
		"other":                               1,
	}
	for i, n := range bd.byBucket {
		name := "other"
		if i < len(buckets) {
			name = buckets[i].name
		}
		if n != want[name] {
			t.Errorf("bucket %q: %d samples, want %d", name, n, want[name])
		}
	}
	if n := bd.leaves["crypto/internal/fips140/sha512.blockAVX2.abi0"]; n != 1 {
		t.Errorf("leaf sha512.blockAVX2: %d samples, want 1", n)
	}
	out := bd.render(3)
	for _, s := range []string{"5 samples, 20.0% in the kernel", "40.0%  JWT signing", "hottest functions"} {
		if !strings.Contains(out, s) {
			t.Errorf("render lacks %q:\n%s", s, out)
		}
	}
}

func TestParseFrame(t *testing.T) {
	tests := []struct {
		line, sym, dso string
	}{
		{"\t  25f790 net/http.(*conn).serve+0x690 (/tmp/b/bridge)", "net/http.(*conn).serve", "/tmp/b/bridge"},
		{"\tffffffff821f5b65 tcp_sendmsg+0x105 ([kernel.kallsyms])", "tcp_sendmsg", "[kernel.kallsyms]"},
		{"\t 3706d2 ecdsa.Sign[go.shape.interface { Reset() }]+0x2 (/b)", "ecdsa.Sign[go.shape.interface { Reset() }]", "/b"},
		{"\tf67b7b8dee777799 [unknown] ([unknown])", "[unknown]", "[unknown]"},
	}
	for _, tt := range tests {
		t.Run(tt.sym, func(t *testing.T) {
			sym, dso := parseFrame(tt.line)
			if sym != tt.sym || dso != tt.dso {
				t.Errorf("parseFrame(%q) = %q, %q; want %q, %q", tt.line, sym, dso, tt.sym, tt.dso)
			}
		})
	}
}
