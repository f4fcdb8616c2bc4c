package scope

import (
	"errors"
	"fmt"
	"strings"
)

// ValidateRepository reports whether name is a repository name under the
// distribution reference grammar (github.com/distribution/reference):
//
//	name           := [domain '/'] path-component ['/' path-component]*
//	domain         := domain-component ['.' domain-component]* [':' port]
//	path-component := alnum [separator alnum]*   ; alnum = [a-z0-9]+
//	separator      := [_.] | '__' | [-]+
//
// and at most MaxNameLength bytes long. A first component that is not a
// path component is read as a domain.
func ValidateRepository(name string) error {
	if name == "" {
		return errors.New("empty repository name")
	}
	if len(name) > MaxNameLength {
		return fmt.Errorf("repository name longer than %d bytes", MaxNameLength)
	}
	rest := name
	if i := strings.IndexByte(name, '/'); i >= 0 {
		// Like the reference regexp, read the first component as a domain
		// when it is one, else as a path component.
		if first := name[:i]; !validPathComponent(first) {
			if err := validateDomain(first); err != nil {
				return fmt.Errorf("repository name %q: %v", name, err)
			}
			rest = name[i+1:]
		}
	}
	for c := range strings.SplitSeq(rest, "/") {
		if !validPathComponent(c) {
			return fmt.Errorf("repository name %q: path component %q: want lowercase letters and digits separated by '.', '_', '__' or '-'", name, c)
		}
	}
	return nil
}

func validPathComponent(c string) bool {
	if c == "" || !isAlnum(c[0]) || !isAlnum(c[len(c)-1]) {
		return false
	}
	for i := 0; i < len(c); {
		if isAlnum(c[i]) {
			i++
			continue
		}
		// A separator run: '.', '_', '__', or one or more '-'.
		j := i
		for j < len(c) && !isAlnum(c[j]) {
			j++
		}
		sep := c[i:j]
		switch {
		case sep == "." || sep == "_" || sep == "__":
		case strings.Trim(sep, "-") == "":
		default:
			return false
		}
		i = j
	}
	return true
}

func validateDomain(d string) error {
	host := d
	if i := strings.LastIndexByte(d, ':'); i >= 0 && !strings.HasSuffix(d, "]") {
		host = d[:i]
		port := d[i+1:]
		if port == "" || len(port) > 5 || strings.Trim(port, "0123456789") != "" {
			return fmt.Errorf("domain %q: bad port", d)
		}
	}
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		inner := host[1 : len(host)-1]
		if inner == "" || strings.Trim(inner, "0123456789abcdefABCDEF:.") != "" {
			return fmt.Errorf("domain %q: bad IPv6 literal", d)
		}
		return nil
	}
	for c := range strings.SplitSeq(host, ".") {
		if c == "" || c[0] == '-' || c[len(c)-1] == '-' {
			return fmt.Errorf("domain %q: bad component %q", d, c)
		}
		for i := 0; i < len(c); i++ {
			if !isAlnum(c[i]) && c[i] != '-' && (c[i] < 'A' || c[i] > 'Z') {
				return fmt.Errorf("domain %q: bad character %q", d, c[i])
			}
		}
	}
	return nil
}

func isAlnum(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') }
