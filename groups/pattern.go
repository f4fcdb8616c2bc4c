package groups

import (
	"errors"
	"fmt"
	"strings"
)

// Variables a repository pattern may use. They are replaced by literal text
// before matching; see Rule.
const (
	VarUsername = "${username}"
	VarGroup    = "${group}"
)

// maxSegments is the most path segments a repository name within
// scope.MaxNameLength (255 bytes) can have. Longer names are split on the heap.
const maxSegments = 128

type partKind uint8

const (
	partLiteral partKind = iota
	partStar             // '*': any run of characters except '/'
	partUser             // ${username}
	partGroup            // ${group}
)

// part is one piece of a path segment pattern.
type part struct {
	kind partKind
	text string // for partLiteral
}

// segment is one '/'-separated piece of a pattern. A segment is either "**"
// (deep) or a sequence of parts. Its parts are kept as chunks: the runs of
// non-star parts between '*'s, so a segment with n stars has n+1 chunks
// (some possibly empty) and a segment without stars has exactly one.
type segment struct {
	deep   bool
	star   bool
	chunks [][]part
}

// pattern is a compiled repository pattern. Its segments are kept as runs:
// the runs of ordinary segments between "**" segments, so a pattern with n
// "**" segments has n+1 runs (some possibly empty).
type pattern struct {
	segs      []segment
	runs      [][]segment
	deep      bool // has a "**" segment
	usesUser  bool
	usesGroup bool
}

// bindings are the values of the variables for one evaluation. A variable
// whose value is not usable (empty or containing '/') makes every pattern
// using it match nothing; callers check usable before calling match.
type bindings struct {
	user  string
	group string
}

// usable reports whether v may be substituted for a variable: a substituted
// value that is empty or spans several path segments matches nothing.
func usable(v string) bool {
	return v != "" && strings.IndexByte(v, '/') < 0
}

// parsePattern compiles a repository pattern. Its errors say what is wrong
// without repeating the pattern; Validate adds the key path.
func parsePattern(src string) (*pattern, error) {
	if src == "" {
		return nil, errors.New("empty pattern")
	}
	var segs []segment
	for text := range strings.SplitSeq(src, "/") {
		seg, err := parseSegment(text)
		if err != nil {
			return nil, err
		}
		segs = append(segs, seg)
	}
	return newPattern(segs), nil
}

func parseSegment(text string) (segment, error) {
	if text == "" {
		return segment{}, errors.New("empty path segment (a leading, trailing or doubled '/')")
	}
	if text == "**" {
		return segment{deep: true}, nil
	}
	var parts []part
	for i := 0; i < len(text); {
		switch c := text[i]; {
		case c == '*':
			if i+1 < len(text) && text[i+1] == '*' {
				return segment{}, fmt.Errorf("segment %q: ** must be a whole path segment", text)
			}
			parts = append(parts, part{kind: partStar})
			i++
		case c == '$':
			rest := text[i:]
			if !strings.HasPrefix(rest, "${") {
				return segment{}, fmt.Errorf("segment %q: '$' must start %s or %s", text, VarUsername, VarGroup)
			}
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				return segment{}, fmt.Errorf("segment %q: unterminated ${", text)
			}
			switch v := rest[:end+1]; v {
			case VarUsername:
				parts = append(parts, part{kind: partUser})
			case VarGroup:
				parts = append(parts, part{kind: partGroup})
			default:
				return segment{}, fmt.Errorf("unknown variable %s (want %s or %s)", v, VarUsername, VarGroup)
			}
			i += end + 1
		case nameChar(c):
			j := i + 1
			for j < len(text) && nameChar(text[j]) {
				j++
			}
			parts = append(parts, part{kind: partLiteral, text: text[i:j]})
			i = j
		default:
			return segment{}, fmt.Errorf("segment %q: character %q cannot appear in a repository name", text, c)
		}
	}
	return newSegment(parts), nil
}

// nameChar reports whether c may appear in a repository name: the path
// component characters, and the upper case letters, ':' and brackets of a
// registry host.
func nameChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', '0' <= c && c <= '9', 'A' <= c && c <= 'Z':
		return true
	}
	return c == '.' || c == '_' || c == '-' || c == ':' || c == '[' || c == ']'
}

// newSegment builds a segment from its parts, merging adjacent literals.
func newSegment(parts []part) segment {
	seg := segment{chunks: [][]part{nil}}
	for _, p := range parts {
		cur := &seg.chunks[len(seg.chunks)-1]
		switch {
		case p.kind == partStar:
			seg.star = true
			seg.chunks = append(seg.chunks, nil)
		case p.kind == partLiteral && len(*cur) > 0 && (*cur)[len(*cur)-1].kind == partLiteral:
			(*cur)[len(*cur)-1].text += p.text
		default:
			*cur = append(*cur, p)
		}
	}
	return seg
}

func newPattern(segs []segment) *pattern {
	p := &pattern{segs: segs, runs: [][]segment{nil}}
	for _, s := range segs {
		if s.deep {
			p.deep = true
			p.runs = append(p.runs, nil)
			continue
		}
		p.runs[len(p.runs)-1] = append(p.runs[len(p.runs)-1], s)
		for _, c := range s.chunks {
			for _, pt := range c {
				p.usesUser = p.usesUser || pt.kind == partUser
				p.usesGroup = p.usesGroup || pt.kind == partGroup
			}
		}
	}
	return p
}

// bind returns the pattern with every occurrence of the variable kind
// replaced by the literal value, or nil when the pattern uses the variable
// and the value is not usable (the pattern would match nothing).
func (p *pattern) bind(kind partKind, value string) *pattern {
	if (kind == partUser && !p.usesUser) || (kind == partGroup && !p.usesGroup) {
		return p
	}
	if !usable(value) {
		return nil
	}
	segs := make([]segment, len(p.segs))
	for i, s := range p.segs {
		if s.deep {
			segs[i] = s
			continue
		}
		var parts []part
		for j, c := range s.chunks {
			if j > 0 {
				parts = append(parts, part{kind: partStar})
			}
			for _, pt := range c {
				if pt.kind == kind {
					pt = part{kind: partLiteral, text: value}
				}
				parts = append(parts, pt)
			}
		}
		segs[i] = newSegment(parts)
	}
	return newPattern(segs)
}

// firstLiteral returns the first segment when it is plain literal text.
func (p *pattern) firstLiteral() (string, bool) {
	s := p.segs[0]
	if s.deep || s.star || len(s.chunks[0]) != 1 || s.chunks[0][0].kind != partLiteral {
		return "", false
	}
	return s.chunks[0][0].text, true
}

// firstVar returns the variable the first segment consists of, if it is
// exactly one variable.
func (p *pattern) firstVar() (partKind, bool) {
	s := p.segs[0]
	if s.deep || s.star || len(s.chunks[0]) != 1 || s.chunks[0][0].kind == partLiteral {
		return 0, false
	}
	return s.chunks[0][0].kind, true
}

// String returns the pattern with b substituted, e.g. "team-a/**".
func (p *pattern) String(b bindings) string {
	var sb strings.Builder
	for i, s := range p.segs {
		if i > 0 {
			sb.WriteByte('/')
		}
		if s.deep {
			sb.WriteString("**")
			continue
		}
		for j, c := range s.chunks {
			if j > 0 {
				sb.WriteByte('*')
			}
			for _, pt := range c {
				sb.WriteString(pt.value(b))
			}
		}
	}
	return sb.String()
}

func (pt part) value(b bindings) string {
	switch pt.kind {
	case partUser:
		return b.user
	case partGroup:
		return b.group
	}
	return pt.text
}

// splitName splits a repository name into its path segments, using buf when
// it is large enough. It reports false for a name with an empty segment,
// which no rule matches.
func splitName(name string, buf []string) ([]string, bool) {
	segs := buf[:0]
	for {
		i := strings.IndexByte(name, '/')
		if i < 0 {
			break
		}
		if i == 0 {
			return nil, false
		}
		segs = append(segs, name[:i])
		name = name[i+1:]
	}
	if name == "" {
		return nil, false
	}
	return append(segs, name), true
}

// match reports whether the repository name, split into segs, matches the
// pattern under b. The variables the pattern uses must be usable in b.
//
// "**" matches any run of segments, so a pattern is a glob over segments and
// each run between "**"s is matched at its leftmost possible place: the first
// run as a prefix, the last as a suffix, the ones between left to right. This
// is exact because every segment pattern matches exactly one segment.
func (p *pattern) match(segs []string, b *bindings) bool {
	if !p.deep {
		if len(segs) != len(p.segs) {
			return false
		}
		return runAt(p.segs, segs, b)
	}
	first, last := p.runs[0], p.runs[len(p.runs)-1]
	end := len(segs) - len(last)
	if end < len(first) || !runAt(first, segs, b) || !runAt(last, segs[end:], b) {
		return false
	}
	pos := len(first)
	for _, run := range p.runs[1 : len(p.runs)-1] {
		for ; ; pos++ {
			if pos+len(run) > end {
				return false
			}
			if runAt(run, segs[pos:], b) {
				pos += len(run)
				break
			}
		}
	}
	return true
}

// runAt reports whether run matches the first len(run) of segs.
func runAt(run []segment, segs []string, b *bindings) bool {
	for i := range run {
		if !run[i].match(segs[i], b) {
			return false
		}
	}
	return true
}

// match reports whether the segment matches s, by the same leftmost method
// as pattern.match with characters in place of segments.
func (s *segment) match(str string, b *bindings) bool {
	first := s.chunks[0]
	pos, ok := chunkAt(first, str, b)
	if !ok {
		return false
	}
	if !s.star {
		return pos == len(str)
	}
	last := s.chunks[len(s.chunks)-1]
	end := len(str) - chunkLen(last, b)
	if end < pos {
		return false
	}
	if _, ok := chunkAt(last, str[end:], b); !ok {
		return false
	}
	for _, c := range s.chunks[1 : len(s.chunks)-1] {
		for ; ; pos++ {
			if pos+chunkLen(c, b) > end {
				return false
			}
			if n, ok := chunkAt(c, str[pos:end], b); ok {
				pos += n
				break
			}
		}
	}
	return true
}

// chunkAt reports whether str starts with the text of chunk, and its length.
func chunkAt(chunk []part, str string, b *bindings) (int, bool) {
	n := 0
	for _, pt := range chunk {
		v := pt.value(*b)
		if !strings.HasPrefix(str[n:], v) {
			return 0, false
		}
		n += len(v)
	}
	return n, true
}

func chunkLen(chunk []part, b *bindings) int {
	n := 0
	for _, pt := range chunk {
		n += len(pt.value(*b))
	}
	return n
}
