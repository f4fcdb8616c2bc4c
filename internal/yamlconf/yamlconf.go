package yamlconf

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// envRef matches ${env:NAME} references.
var envRef = regexp.MustCompile(`\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}`)

// Decode decodes data into v (a pointer to a struct), rejecting unknown
// keys and expanding ${env:NAME} with lookupEnv. The returned error joins
// every problem found; each one starts with its key path.
func Decode(data []byte, v any, lookupEnv func(string) (string, bool)) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("yaml: %w", err)
	}
	if len(doc.Content) == 0 {
		return errors.New("the file is empty")
	}
	root := doc.Content[0]
	rt := reflect.TypeOf(v)
	if rt.Kind() != reflect.Pointer || rt.Elem().Kind() != reflect.Struct {
		return errors.New("yamlconf: Decode needs a pointer to a struct")
	}
	w := walker{lookupEnv: lookupEnv, lines: map[int]string{}}
	w.walk(root, rt.Elem(), "")
	if len(w.errs) > 0 {
		return errors.Join(w.errs...)
	}
	if err := root.Decode(v); err != nil {
		return w.typeErrors(err)
	}
	return nil
}

type walker struct {
	lookupEnv func(string) (string, bool)
	errs      []error
	lines     map[int]string // line → key path, to name the key of yaml's type errors
}

func (w *walker) errorf(path string, n *yaml.Node, format string, args ...any) {
	w.errs = append(w.errs, fmt.Errorf("%s (line %d): %s", displayPath(path), n.Line, fmt.Sprintf(format, args...)))
}

func displayPath(p string) string {
	if p == "" {
		return "(top level)"
	}
	return p
}

func (w *walker) walk(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if _, seen := w.lines[n.Line]; !seen && path != "" {
		w.lines[n.Line] = path
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.ScalarNode {
		w.expandEnv(n, path)
		if n.Tag == "!!null" {
			return
		}
	}
	switch {
	case t == reflect.TypeOf(time.Duration(0)):
		if n.Kind != yaml.ScalarNode {
			w.errorf(path, n, "want a duration such as 90s, 5m or 720h")
			return
		}
		if _, err := time.ParseDuration(n.Value); err != nil {
			w.errorf(path, n, "want a duration such as 90s, 5m or 720h, got %q", n.Value)
			return
		}
		// yaml.v3 parses duration strings itself; make sure a bare number
		// is not read as nanoseconds.
		n.Tag = "!!str"
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			w.errorf(path, n, "want a mapping of keys")
			return
		}
		fields := yamlFields(t)
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			kp := join(path, k.Value)
			w.lines[k.Line] = kp
			if seen[k.Value] {
				w.errorf(kp, k, "key given twice")
				continue
			}
			seen[k.Value] = true
			ft, ok := fields[k.Value]
			if !ok {
				w.errorf(kp, k, "unknown key%s", suggest(k.Value, fields))
				continue
			}
			w.walk(val, ft, kp)
		}
	case t.Kind() == reflect.Slice && t.Elem().Kind() != reflect.Uint8:
		if n.Kind != yaml.SequenceNode {
			w.errorf(path, n, "want a list")
			return
		}
		for i, c := range n.Content {
			w.walk(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case t.Kind() == reflect.Map:
		if n.Kind != yaml.MappingNode {
			w.errorf(path, n, "want a mapping")
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			w.walk(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value))
		}
	}
}

func (w *walker) expandEnv(n *yaml.Node, path string) {
	if !strings.Contains(n.Value, "${env:") {
		return
	}
	n.Value = envRef.ReplaceAllStringFunc(n.Value, func(m string) string {
		name := envRef.FindStringSubmatch(m)[1]
		v, ok := w.lookupEnv(name)
		if !ok {
			w.errorf(path, n, "environment variable %s is not set", name)
		}
		return v
	})
	// The expanded value is resolved as if it had been written in the
	// file: "42" or "true" can fill number and boolean fields, and an
	// empty value, "~" or "null" leaves the field unset (a string field
	// then stays "", which the sections' validation reports where a value
	// is required).
	if n.Style == 0 && n.Tag == "!!str" {
		n.Tag = ""
	}
}

// typeErrors turns yaml's "line N: cannot unmarshal …" into key paths.
func (w *walker) typeErrors(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return fmt.Errorf("yaml: %w", err)
	}
	errs := make([]error, 0, len(te.Errors))
	for _, e := range te.Errors {
		msg := e
		if rest, ok := strings.CutPrefix(e, "line "); ok {
			if num, tail, ok := strings.Cut(rest, ": "); ok {
				if line, convErr := strconv.Atoi(num); convErr == nil {
					msg = fmt.Sprintf("%s (line %d): %s", displayPath(w.lines[line]), line, tail)
				}
			}
		}
		errs = append(errs, errors.New(msg))
	}
	return errors.Join(errs...)
}

func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if slices.Contains(strings.Split(opts, ","), "inline") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			for k, v := range yamlFields(ft) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// suggest names a known key one edit or a transposition away, if any.
func suggest(key string, fields map[string]reflect.Type) string {
	best, bestDist := "", 3
	for k := range fields {
		if d := distance(key, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// distance is the Levenshtein distance, capped work for short keys.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
