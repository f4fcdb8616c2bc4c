package accounts

import (
	"strings"
	"testing"
)

func TestValidUsername(t *testing.T) {
	for _, ok := range []string{"alice", "alice@example.com", "ci-bot", "Team.Bot_1", "ünïcode"} {
		if err := ValidUsername(ok); err != nil {
			t.Errorf("ValidUsername(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a:b", "a b", "a\tb", "a\nb", "a\x00b", "a\xffb", "a/b", "../alice", strings.Repeat("a", 256)} {
		if ValidUsername(bad) == nil {
			t.Errorf("ValidUsername(%q) accepted", bad)
		}
	}
}
