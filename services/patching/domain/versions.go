package domain

import (
	"strings"

	version "github.com/hashicorp/go-version"
)

// Affected versions are exact versions ("2.4.57") or ranges of
// hashicorp/go-version constraints (">= 2.4.0, < 2.4.58"). Versions that
// are not numeric (vendor strings such as "1.1.1w") match exact entries only.

// Matcher tells whether an installed version is affected.
type Matcher struct {
	exact       map[string]bool
	versions    []*version.Version // the exact entries that parse as versions
	constraints []version.Constraints
}

// NewMatcher parses the affected versions; it fails on an entry that is
// neither a version nor a constraint.
func NewMatcher(affected []string) (Matcher, error) {
	m := Matcher{exact: map[string]bool{}}
	for i, a := range affected {
		a = strings.TrimSpace(a)
		if a == "" {
			return Matcher{}, invalid("affected_versions", "entry %d is empty", i)
		}
		if !strings.ContainsAny(a, "<>=~!,") {
			m.exact[a] = true
			if v, err := version.NewVersion(a); err == nil {
				m.versions = append(m.versions, v)
			}
			continue
		}
		c, err := version.NewConstraint(a)
		if err != nil {
			return Matcher{}, invalid("affected_versions", "entry %d %q: %v", i, a, err)
		}
		m.constraints = append(m.constraints, c)
	}
	return m, nil
}

// Affects reports whether the installed version is affected.
func (m Matcher) Affects(installed string) bool {
	installed = strings.TrimSpace(installed)
	if m.exact[installed] {
		return true
	}
	v, err := version.NewVersion(installed)
	if err != nil {
		return false
	}
	for _, ev := range m.versions {
		if ev.Equal(v) {
			return true
		}
	}
	for _, c := range m.constraints {
		if c.Check(v) {
			return true
		}
	}
	return false
}

// SameProduct compares product names as the inventory and feeds write them.
func SameProduct(a, b string) bool {
	return strings.EqualFold(strings.TrimSpace(a), strings.TrimSpace(b))
}
