package groups

import "strings"

// glob is a compiled group or user name glob: '*' matches any run of
// characters, '/' included (group names are not paths); every other
// character matches itself.
type glob struct {
	chunks []string // the text between the '*'s; len = number of '*' + 1
}

// isGlob reports whether a groups or users entry is a glob rather than a
// literal name.
func isGlob(s string) bool { return strings.IndexByte(s, '*') >= 0 }

func newGlob(src string) glob {
	return glob{chunks: strings.Split(src, "*")}
}

// match reports whether s matches the glob. The chunks between stars are
// found leftmost first, which is exact for a glob whose only wildcard is '*'.
func (g *glob) match(s string) bool {
	first, last := g.chunks[0], g.chunks[len(g.chunks)-1]
	if len(g.chunks) == 1 {
		return s == first
	}
	if len(s) < len(first)+len(last) || !strings.HasPrefix(s, first) || !strings.HasSuffix(s, last) {
		return false
	}
	rest := s[len(first) : len(s)-len(last)]
	for _, c := range g.chunks[1 : len(g.chunks)-1] {
		i := strings.Index(rest, c)
		if i < 0 {
			return false
		}
		rest = rest[i+len(c):]
	}
	return true
}
