// Package cursor encodes the page tokens of keyset-paged lists: the sort
// key of the last row handed out, a time and an id. A token is opaque to
// clients; a list reads the rows after (or before) it.
package cursor

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
)

// ErrInvalid rejects a token that Encode did not make.
var ErrInvalid = errors.New("not a token from an earlier page")

// Encode returns the token of the row sorted by (t, id).
func Encode(t time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(t.UnixNano(), 10) + "/" + id))
}

// Decode returns the sort key of token; an empty token is the first page
// (nil time, empty id).
func Decode(token string) (*time.Time, string, error) {
	if token == "" {
		return nil, "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return nil, "", ErrInvalid
	}
	nanos, id, ok := strings.Cut(string(b), "/")
	n, err := strconv.ParseInt(nanos, 10, 64)
	if !ok || err != nil || id == "" {
		return nil, "", ErrInvalid
	}
	t := time.Unix(0, n).UTC()
	return &t, id, nil
}
