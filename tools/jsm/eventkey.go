package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/jsmplatform/jsm/libs/eventsig"
)

// runEventKeyCommand makes an event signing key for a deployment: the
// private key goes to the service (JSM_EVENT_SIGNING_KEY), the public one
// to the trail (JSM_TRAIL_SIGNER_KEYS).
func runEventKeyCommand(args []string, stdout, stderr io.Writer) error {
	var area string
	fs := newFlagSet("event-key", stderr)
	fs.StringVar(&area, "area", "", "the service's area, which the key may sign for (contracts, incidents, ...)")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if area == "" {
		return errors.New("event-key: --area is required")
	}
	skey, vkey, err := eventsig.GenerateKey(area)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "JSM_EVENT_SIGNING_KEY of %s (secret), then its public key for the trail's JSM_TRAIL_SIGNER_KEYS:\n", area)
	_, err = fmt.Fprintf(stdout, "%s\n%s\n", skey, vkey)
	return err
}
