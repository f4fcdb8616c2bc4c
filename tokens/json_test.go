package tokens

import (
	"encoding/json"
	"testing"
)

func TestAppendJSONString(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", `""`},
		{"alice", `"alice"`},
		{`a"b\c`, `"a\"b\\c"`},
		{"tab\tnl\ncr\r", `"tab\tnl\ncr\r"`},
		{"\x00\x1f\x7f", `"\u0000\u001f` + "\x7f" + `"`},
		{"<é&>", `"<é&>"`},
		{"\u2028\u2029", `"\u2028\u2029"`},
		{"bad\xffutf8\xc3", `"bad\ufffdutf8\ufffd"`},
		{"😀", `"😀"`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := string(appendJSONString([]byte("x"), tt.in)); got != "x"+tt.want {
				t.Fatalf("appendJSONString(%q) = %s, want %s", tt.in, got[1:], tt.want)
			}
		})
	}
}

// FuzzAppendJSONString checks that the hand-written encoder, which writes
// the subject (from the IdP) and access names into tokens, always makes a
// JSON string that decodes to what encoding/json would make of the input.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "alice", "a\"b\\", "\x00\u2028\xff", "é\xc3("} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		enc := appendJSONString(nil, s)
		var got string
		if err := json.Unmarshal(enc, &got); err != nil {
			t.Fatalf("appendJSONString(%q) = %s: invalid JSON: %v", s, enc, err)
		}
		ref, _ := json.Marshal(s)
		var want string
		if err := json.Unmarshal(ref, &want); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("appendJSONString(%q) decodes to %q, encoding/json to %q", s, got, want)
		}
	})
}
