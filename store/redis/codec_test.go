package redis

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/registry-bridge/bridge/store"
)

func TestCodecRoundTrip(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 30, 15, 123_000_000, time.UTC)
	tests := []struct {
		name string
		p    store.Password
	}{
		{"zero", store.Password{}},
		{"full", store.Password{
			Subject: "CgVhbGljZRIEbGRhcA", Username: "alice", Groups: []string{"a", "", "ünï"},
			Name: "laptop", Digest: bytes.Repeat([]byte{1}, 32), RefreshDigest: bytes.Repeat([]byte{2}, 32),
			CreatedAt: at, ExpiresAt: at.Add(720 * time.Hour), LastUsedAt: at.Add(time.Minute),
			ReadOnly: true, CreatedBy: store.CreatedByAPI,
		}},
		{"other creator", store.Password{CreatedBy: "migration-2025", Username: "u"}},
		{"each known creator", store.Password{CreatedBy: store.CreatedByCLI}},
		{"browser", store.Password{CreatedBy: store.CreatedByBrowser, ReadOnly: true}},
		{"before 1970", store.Password{CreatedAt: time.Unix(-86400, 0), ExpiresAt: time.Unix(1, 0)}},
		{"long strings", store.Password{Name: strings.Repeat("n", 300), Groups: make([]string, 200)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := encode(tt.p)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decode(b)
			if err != nil {
				t.Fatalf("decode(encode(p)): %v", err)
			}
			if !equalRecords(tt.p, got) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, tt.p)
			}
		})
	}
}

func TestCodecRejects(t *testing.T) {
	good, err := encode(store.Password{Username: "alice", Groups: []string{"g"}, ExpiresAt: time.Unix(2e9, 0)})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"json", []byte(`{"user":"alice","expires":"2030-01-01T00:00:00Z"}`)},
		{"wrong version", append([]byte{2}, good[1:]...)},
		{"unknown flag", flagged(good, 1<<7)},
		{"truncated", good[:len(good)-1]},
		{"trailing byte", append(append([]byte(nil), good...), 0)},
		{"header only", good[:headerLen]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if p, err := decode(tt.b); !errors.Is(err, errCorrupt) {
				t.Fatalf("decode = %+v, %v; want errCorrupt", p, err)
			}
		})
	}
}

func TestEncodeLastUsedRange(t *testing.T) {
	for _, at := range []time.Time{time.Unix(-1, 0), time.Date(10900, 1, 1, 0, 0, 0, 0, time.UTC)} {
		if _, err := encode(store.Password{LastUsedAt: at}); err == nil {
			t.Errorf("encode accepted LastUsedAt %v", at)
		}
	}
}

func FuzzDecode(f *testing.F) {
	seed, _ := encode(store.Password{
		Subject: "s", Username: "u", Groups: []string{"g1", "g2"}, Digest: []byte{1, 2},
		ExpiresAt: time.Unix(2e9, 0), LastUsedAt: time.Unix(1e9, 0), ReadOnly: true,
	})
	f.Add(seed)
	f.Add([]byte{1})
	f.Add([]byte("\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff\x0f"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decode(b)
		if err != nil {
			return
		}
		// Whatever decodes must encode back to a value that decodes to
		// the same record.
		again, err := encode(p)
		if err != nil {
			t.Fatalf("decoded %+v but cannot encode it: %v", p, err)
		}
		q, err := decode(again)
		if err != nil || !equalRecords(p, q) {
			t.Fatalf("re-encoding changed the record: %+v → %+v, %v", p, q, err)
		}
	})
}

// flagged returns a copy of an encoded record with extra flag bits set.
func flagged(b []byte, bits byte) []byte {
	b = append([]byte(nil), b...)
	d := decoder{b: b[headerLen:]}
	d.varint()
	d.varint()
	b[len(b)-len(d.b)] |= bits
	return b
}

func equalRecords(a, b store.Password) bool {
	eqStrings := func(x, y []string) bool {
		if len(x) != len(y) {
			return false
		}
		for i := range x {
			if x[i] != y[i] {
				return false
			}
		}
		return true
	}
	// Times are kept to the millisecond.
	eqTime := func(x, y time.Time) bool { return x.Truncate(time.Millisecond).Equal(y) }
	return a.Subject == b.Subject && a.Username == b.Username && eqStrings(a.Groups, b.Groups) &&
		a.Name == b.Name && bytes.Equal(a.Digest, b.Digest) && bytes.Equal(a.RefreshDigest, b.RefreshDigest) &&
		eqTime(a.CreatedAt, b.CreatedAt) && eqTime(a.ExpiresAt, b.ExpiresAt) &&
		eqTime(a.LastUsedAt, b.LastUsedAt) && a.ReadOnly == b.ReadOnly && a.CreatedBy == b.CreatedBy
}
