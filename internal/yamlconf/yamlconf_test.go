package yamlconf

import (
	"strings"
	"testing"
	"time"
)

type inner struct {
	Lifetime time.Duration `yaml:"lifetime"`
	Name     string        `yaml:"name"`
	Port     int           `yaml:"port"`
}

type file struct {
	Listen string   `yaml:"listen"`
	Token  inner    `yaml:"token"`
	Opt    *inner   `yaml:"opt"`
	Rules  []inner  `yaml:"rules"`
	Tags   []string `yaml:"tags"`
	On     bool     `yaml:"on"`
}

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestDecode(t *testing.T) {
	in := `
listen: 127.0.0.1:5001
token:
  lifetime: 5m
  name: ${env:NAME}-x
opt: {port: 3}
rules:
  - lifetime: 1h
tags: [a, b]
on: ${env:ON}
`
	var f file
	if err := Decode([]byte(in), &f, env(map[string]string{"NAME": "svc", "ON": "true"})); err != nil {
		t.Fatal(err)
	}
	if f.Listen != "127.0.0.1:5001" || f.Token.Lifetime != 5*time.Minute || f.Token.Name != "svc-x" ||
		f.Opt == nil || f.Opt.Port != 3 || len(f.Rules) != 1 || f.Rules[0].Lifetime != time.Hour ||
		len(f.Tags) != 2 || !f.On {
		t.Fatalf("decoded %+v", f)
	}
}

func TestDecodeErrorsAllAtOnce(t *testing.T) {
	in := `
listen: x
lisen: y
token:
  lifetme: 5m
  name: ${env:MISSING}
rules:
  - lifetime: soon
  - bogus: 1
listen: z
`
	var f file
	err := Decode([]byte(in), &f, env(nil))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`lisen (line 3): unknown key (did you mean "listen"?)`,
		`token.lifetme (line 5): unknown key (did you mean "lifetime"?)`,
		"token.name (line 6): environment variable MISSING is not set",
		`rules[0].lifetime (line 8): want a duration`,
		"rules[1].bogus (line 9): unknown key",
		"listen (line 10): key given twice",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q; got:\n%v", want, err)
		}
	}
}

func TestDecodeTypeErrorNamesKey(t *testing.T) {
	var f file
	err := Decode([]byte("token:\n  port: many\n"), &f, env(nil))
	if err == nil || !strings.Contains(err.Error(), "token.port (line 2)") {
		t.Fatalf("err = %v, want it to name token.port", err)
	}
}

func TestDecodeBareNumberDurationRejected(t *testing.T) {
	var f file
	err := Decode([]byte("token:\n  lifetime: 300\n"), &f, env(nil))
	if err == nil || !strings.Contains(err.Error(), "token.lifetime") {
		t.Fatalf("err = %v, want a duration error (300 would be 300ns)", err)
	}
}

func TestDecodeEmptyAndGarbage(t *testing.T) {
	var f file
	for _, in := range []string{"", "   \n", "[1, 2]", "listen: [", "\x00\xff"} {
		if err := Decode([]byte(in), &f, env(nil)); err == nil {
			t.Errorf("Decode(%q) succeeded", in)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add("listen: x\ntoken: {lifetime: 5m}\nrules: [{name: a}]\n")
	f.Add("opt: ${env:X}\n")
	f.Fuzz(func(t *testing.T, in string) {
		var v file
		_ = Decode([]byte(in), &v, env(map[string]string{"X": "1"}))
	})
}
