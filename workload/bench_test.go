package workload

import (
	"testing"
)

// BenchmarkVerifyCached is the hot path: a token verified before.
func BenchmarkVerifyCached(b *testing.B) {
	w := newWorld(b)
	tok := w.gh.sign(githubClaims(w.env))
	if _, err := w.v.Verify(b.Context(), tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := w.v.Verify(b.Context(), tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyFirstUse is a token's first use: signature, claims and
// every expression (the keys are known already).
func BenchmarkVerifyFirstUse(b *testing.B) {
	w := newWorld(b)
	tok := w.gh.sign(githubClaims(w.env))
	if _, err := w.v.Verify(b.Context(), tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		w.v.cache = newCache(10, w.clk.now)
		if _, err := w.v.Verify(b.Context(), tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRules is the CEL part of a first use: GitHub's two claim rules
// and its two mappings.
func BenchmarkRules(b *testing.B) {
	w := newWorld(b)
	claims := githubClaims(w.env)
	claims["aud"] = aud
	r := w.v.byName["github"].rules
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := r.evaluate(claims, nil); err != nil {
			b.Fatal(err)
		}
	}
}
