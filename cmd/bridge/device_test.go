package main

import (
	"strings"
	"testing"
)

func TestDeviceSection(t *testing.T) {
	dir := t.TempDir()
	writeKeys(t, dir)
	for _, tt := range []struct {
		name, body string
		wantErr    []string // empty: accepted
	}{
		{"defaults", "", nil},
		{"set", "device:\n  lifetime: 8h\n  code_lifetime: 5m\n  interval: 3s\n  max_pending: 50\n  max_pending_per_address: 5\n", nil},
		{"disabled with a long lifetime", "device:\n  disabled: true\n  lifetime: 10000h\n", nil},
		{"lifetime over passwords.max_lifetime", "passwords:\n  max_lifetime: 24h\n  default_lifetime: 24h\ndevice:\n  lifetime: 48h\n",
			[]string{"device.lifetime", "passwords.max_lifetime"}},
		{"every bad value at once", "device:\n  code_lifetime: 2h\n  interval: 0.5s\n  max_pending: -1\n",
			[]string{"device.code_lifetime", "device.interval", "device.max_pending:", "device.max_pending_per_address"}},
		{"unknown key", "device:\n  max_pending_per_ip: 3\n", []string{"max_pending_per_ip"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, dir, validConfig(dir)+tt.body)
			_, stderr, err := runCLI(t, "config", "check", "--config", path)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("config check: %v\n%s", err, stderr)
				}
				return
			}
			if err == nil {
				t.Fatal("config check accepted it")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(stderr, w) {
					t.Errorf("the error does not name %s:\n%s", w, stderr)
				}
			}
		})
	}
}
