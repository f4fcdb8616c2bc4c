package redis

import (
	"testing"

	"github.com/registry-bridge/bridge/store"
)

// A device login's password names its channel; the codec has no short
// code for it and writes the string.
func TestCodecCreatedByDevice(t *testing.T) {
	p := store.Password{ID: "x", Username: "alice", CreatedBy: store.CreatedByDevice}
	b, err := encode(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.CreatedBy != store.CreatedByDevice {
		t.Fatalf("CreatedBy %q, want %q", got.CreatedBy, store.CreatedByDevice)
	}
}
