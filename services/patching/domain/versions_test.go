package domain_test

import (
	"errors"
	"testing"

	"github.com/jsmplatform/jsm/services/patching/domain"
)

func TestMatcherAffects(t *testing.T) {
	t.Parallel()
	apache := ">= 2.4.0, < 2.4.58"
	cases := []struct {
		name      string
		affected  []string
		installed string
		want      bool
	}{
		// Exact versions.
		{name: "exact: the version", affected: []string{"2.4.57"}, installed: "2.4.57", want: true},
		{name: "exact: one below", affected: []string{"2.4.57"}, installed: "2.4.56"},
		{name: "exact: one above", affected: []string{"2.4.57"}, installed: "2.4.58"},
		{name: "exact: installed with blanks", affected: []string{"2.4.57"}, installed: " 2.4.57\t", want: true},
		{name: "exact: entry with blanks", affected: []string{" 2.4.57 "}, installed: "2.4.57", want: true},
		{name: "exact: written with a v", affected: []string{"2.4.57"}, installed: "v2.4.57", want: true},
		{name: "exact: entry with a v", affected: []string{"v2.4.57"}, installed: "2.4.57", want: true},
		{name: "exact: trailing zero segment", affected: []string{"2.4.57"}, installed: "2.4.57.0", want: true},
		{name: "exact: a prefix is not the version", affected: []string{"2.4"}, installed: "2.4.57"},
		{name: "exact: same digits, other segments", affected: []string{"2.45.7"}, installed: "2.4.57"},

		// Ranges and their boundaries.
		{name: "range: lower bound is affected", affected: []string{apache}, installed: "2.4.0", want: true},
		{name: "range: inside", affected: []string{apache}, installed: "2.4.30", want: true},
		{name: "range: last affected", affected: []string{apache}, installed: "2.4.57", want: true},
		{name: "range: upper bound is not affected", affected: []string{apache}, installed: "2.4.58"},
		{name: "range: below", affected: []string{apache}, installed: "2.3.99"},
		{name: "range: above", affected: []string{apache}, installed: "2.5.0"},
		{name: "range: compares numbers, not text (2.4.9 < 2.4.58)", affected: []string{apache}, installed: "2.4.9", want: true},
		{name: "range: compares numbers, not text (2.4.100 > 2.4.58)", affected: []string{apache}, installed: "2.4.100"},
		{name: "range: two segments", affected: []string{apache}, installed: "2.4", want: true},
		{name: "range: not a version installed", affected: []string{apache}, installed: "unknown"},
		{name: "range: nothing installed", affected: []string{apache}, installed: ""},
		{name: "pessimistic: inside", affected: []string{"~> 2.6.1"}, installed: "2.6.9", want: true},
		{name: "pessimistic: next minor", affected: []string{"~> 2.6.1"}, installed: "2.7.0"},
		{name: "not equal: other version", affected: []string{"!= 3.0.0"}, installed: "3.0.1", want: true},
		{name: "not equal: the version", affected: []string{"!= 3.0.0"}, installed: "3.0.0"},
		{name: "equal constraint", affected: []string{"= 3.0.0"}, installed: "3.0.0", want: true},
		{name: "at most", affected: []string{"<= 1.2.3"}, installed: "1.2.3", want: true},
		{name: "greater than excludes the bound", affected: []string{"> 1.2.3"}, installed: "1.2.3"},

		// Several entries: any one matching.
		{name: "several: the exact one", affected: []string{"2.2.34", apache, "~> 2.6.1"}, installed: "2.2.34", want: true},
		{name: "several: next to the exact one", affected: []string{"2.2.34", apache, "~> 2.6.1"}, installed: "2.2.35"},
		{name: "several: the first range", affected: []string{"2.2.34", apache, "~> 2.6.1"}, installed: "2.4.57", want: true},
		{name: "several: the second range", affected: []string{"2.2.34", apache, "~> 2.6.1"}, installed: "2.6.1", want: true},
		{name: "several: between the ranges", affected: []string{"2.2.34", apache, "~> 2.6.1"}, installed: "2.5.3"},
		{name: "several: above all", affected: []string{"2.2.34", apache, "~> 2.6.1"}, installed: "2.7.0"},

		// Vendor versions that are not numeric match exact entries only.
		{name: "vendor: exact", affected: []string{"1.1.1w"}, installed: "1.1.1w", want: true},
		{name: "vendor: other letter", affected: []string{"1.1.1w"}, installed: "1.1.1v"},
		{name: "vendor: the numeric base is not the vendor version", affected: []string{"1.1.1w"}, installed: "1.1.1"},
		{name: "vendor: the vendor version is not its numeric base", affected: []string{"1.1.1"}, installed: "1.1.1w"},
		{name: "vendor: not inside a range", affected: []string{">= 1.1.0, < 1.1.2"}, installed: "1.1.1w"},
		{name: "vendor: the range still holds numbers", affected: []string{">= 1.1.0, < 1.1.2"}, installed: "1.1.1", want: true},
		{name: "vendor: exact next to a range", affected: []string{"1.1.1w", "< 1.1.1"}, installed: "1.1.1w", want: true},
		{name: "vendor: another next to a range", affected: []string{"1.1.1w", "< 1.1.1"}, installed: "1.1.1u"},
		{name: "vendor: the range next to it", affected: []string{"1.1.1w", "< 1.1.1"}, installed: "1.1.0", want: true},
		{name: "vendor string: exact", affected: []string{"2:8.9p1-3ubuntu0.6"}, installed: "2:8.9p1-3ubuntu0.6", want: true},
		{name: "vendor string: other", affected: []string{"2:8.9p1-3ubuntu0.6"}, installed: "2:8.9p1-3ubuntu0.7"},

		{name: "no entries", affected: nil, installed: "1.0.0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			m, err := domain.NewMatcher(c.affected)
			if err != nil {
				t.Fatalf("NewMatcher(%q): %v", c.affected, err)
			}
			if got := m.Affects(c.installed); got != c.want {
				t.Fatalf("NewMatcher(%q).Affects(%q) = %t, want %t", c.affected, c.installed, got, c.want)
			}
		})
	}
}

func TestMatcherZeroValueAffectsNothing(t *testing.T) {
	t.Parallel()
	var m domain.Matcher
	for _, v := range []string{"", "1.0.0", "1.1.1w"} {
		if m.Affects(v) {
			t.Fatalf("the zero Matcher affects %q", v)
		}
	}
}

func TestNewMatcherRejects(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		affected []string
	}{
		{name: "empty entry", affected: []string{""}},
		{name: "blank entry", affected: []string{" \t"}},
		{name: "blank entry after good ones", affected: []string{"2.4.57", ">= 2.4.0, < 2.4.58", " "}},
		{name: "operator without version", affected: []string{">="}},
		{name: "version that is no version", affected: []string{">= banana"}},
		{name: "second constraint bad", affected: []string{">= 2.4.0, < two"}},
		{name: "trailing comma", affected: []string{">= 2.4.0,"}},
		{name: "unknown operator", affected: []string{"=> 2.4.0"}},
		{name: "bad entry after a good one", affected: []string{"2.4.57", "< x.y"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			m, err := domain.NewMatcher(c.affected)
			if !errors.Is(err, domain.ErrInvalid) {
				t.Fatalf("NewMatcher(%q) error = %v, want ErrInvalid", c.affected, err)
			}
			var ve domain.ValidationError
			if !errors.As(err, &ve) || ve.Field != "affected_versions" {
				t.Fatalf("error = %#v, want a validation error of affected_versions", err)
			}
			if m.Affects("2.4.57") {
				t.Fatal("the matcher returned with the error affects a version")
			}
		})
	}
}

func TestSameProduct(t *testing.T) {
	t.Parallel()
	cases := []struct {
		a, b string
		want bool
	}{
		{"Apache HTTP Server", "Apache HTTP Server", true},
		{"Apache HTTP Server", "apache http server", true},
		{"OPENSSL", "OpenSSL", true},
		{" openssl\t", "OpenSSL", true},
		{"openssl", "openssh", false},
		{"openssl", "openssl3", false},
		{"apache http server", "apache  http server", false},
		{"nginx", "", false},
	}
	for _, c := range cases {
		if got := domain.SameProduct(c.a, c.b); got != c.want {
			t.Errorf("SameProduct(%q, %q) = %t, want %t", c.a, c.b, got, c.want)
		}
		if got := domain.SameProduct(c.b, c.a); got != c.want {
			t.Errorf("SameProduct(%q, %q) = %t, want %t", c.b, c.a, got, c.want)
		}
	}
}
