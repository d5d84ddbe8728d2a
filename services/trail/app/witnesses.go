package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/jsmplatform/jsm/libs/telemetry"
	"github.com/jsmplatform/jsm/services/trail/ledger"
	"github.com/jsmplatform/jsm/services/trail/projection"
)

// Witness is a C2SP tlog-witness the trail submits its checkpoints to.
type Witness struct {
	// URL is the witness's prefix: requests go to URL + "/add-checkpoint".
	URL string
	// Key is the witness's verifier key (name+hash+key, type cosignature/v1).
	Key string
	// Verifier checks its cosignatures; built from Key.
	Verifier *ledger.CosignatureVerifier
}

// NewWitness reads a witness's URL and verifier key.
func NewWitness(url, key string) (Witness, error) {
	v, err := ledger.NewCosignatureVerifier(key)
	if err != nil {
		return Witness{}, err
	}
	if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
		return Witness{}, fmt.Errorf("witness %s: URL %q: want http(s)://...", v.Name(), url)
	}
	return Witness{URL: strings.TrimSuffix(url, "/"), Key: strings.TrimSpace(key), Verifier: v}, nil
}

var (
	witnessCosignedSize = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "jsm_trail_witness_cosigned_size",
		Help: "Largest tree size a witness has cosigned.",
	}, []string{"witness"})
	witnessFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "jsm_trail_witness_failures_total",
		Help: "Checkpoint submissions a witness refused or did not answer, by reason (conflict, unknown_log, no_endpoint, bad_proof, unavailable, error).",
	}, []string{"witness", "reason"})
)

func init() { telemetry.Registry.MustRegister(witnessCosignedSize, witnessFailures) }

// Why a witness refused a checkpoint, by its reply (c2sp.org/tlog-witness).
var (
	// ErrWitnessUnknownLog: 403, the witness does not follow this origin or
	// key (or the signature does not verify with the key it has).
	ErrWitnessUnknownLog = errors.New("the witness does not know this log or its key")
	// ErrWitnessNoEndpoint: 404, no add-checkpoint at that URL.
	ErrWitnessNoEndpoint = errors.New("the witness has no add-checkpoint endpoint at that URL")
	// ErrWitnessBadProof: 422, the witness holds another tree at the old
	// size: the log forked, or the witness was given another log of this origin.
	ErrWitnessBadProof = errors.New("the witness refused the consistency proof: it holds another tree of that size")
)

// witnessReason is a failure's metric label.
func witnessReason(err error) string {
	switch {
	case errors.Is(err, ErrWitnessUnknownLog):
		return "unknown_log"
	case errors.Is(err, ErrWitnessNoEndpoint):
		return "no_endpoint"
	case errors.Is(err, ErrWitnessBadProof):
		return "bad_proof"
	case errors.Is(err, errWitnessConflict):
		return "conflict"
	case errors.Is(err, errWitnessUnavailable):
		return "unavailable"
	}
	return "error"
}

var (
	errWitnessConflict    = errors.New("the witness keeps answering another known size")
	errWitnessUnavailable = errors.New("the witness did not answer")
)

// cosignedSize is the largest size w has cosigned, which is the size it holds.
func (a *App) cosignedSize(ctx context.Context, w Witness) (int64, error) {
	var size int64
	err := a.Pool.QueryRow(ctx, `SELECT coalesce(max(size), 0) FROM trail.cosignatures WHERE witness_key = $1`, w.Key).Scan(&size)
	if err != nil {
		return 0, fmt.Errorf("cosigned size of %s: %w", w.Verifier.Name(), err)
	}
	return size, nil
}

// latest is the latest signed checkpoint, if any.
func (a *App) latest(ctx context.Context) (Head, bool, error) {
	var h Head
	var ok bool
	err := pgx.BeginTxFunc(ctx, a.Pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var err error
		h, ok, err = latestHead(ctx, tx)
		return err
	})
	return h, ok, err
}

// Submit sends head to w (c2sp.org/tlog-witness add-checkpoint) as an
// extension of old, the size w is believed to hold, and stores the
// cosignature it returns. A 409 tells the size w really holds: Submit tries
// again from there, with the proof from that size. It returns the size w
// holds afterwards, also when it fails.
func (a *App) Submit(ctx context.Context, client *http.Client, w Witness, head Head, old int64) (int64, error) {
	for range 3 {
		if old > head.Size {
			return old, fmt.Errorf("%w: it holds %d entries, the checkpoint has %d", errWitnessConflict, old, head.Size)
		}
		proof, err := a.treeProof(ctx, head.Size, old)
		if err != nil {
			return old, err
		}
		status, body, err := post(ctx, client, w.URL+"/add-checkpoint", ledger.AddCheckpointRequest(old, proof, head.Note))
		if err != nil {
			return old, fmt.Errorf("%w: %v", errWitnessUnavailable, err)
		}
		switch status {
		case http.StatusOK:
			cosig, err := ledger.OpenCosignature(head.Note, body, w.Verifier)
			if err != nil {
				return head.Size, err
			}
			if _, err := a.Pool.Exec(ctx, `INSERT INTO trail.cosignatures (size, witness_key, line) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
				head.Size, w.Key, cosig.Line); err != nil {
				return head.Size, fmt.Errorf("store cosignature: %w", err)
			}
			witnessCosignedSize.WithLabelValues(w.Verifier.Name()).Set(float64(head.Size))
			return head.Size, nil
		case http.StatusConflict:
			known, err := ledger.ParseKnownSize(body)
			if err != nil {
				return old, err
			}
			if known == old {
				return old, fmt.Errorf("%w: 409 with the size asked, %d", errWitnessConflict, old)
			}
			old = known
		case http.StatusForbidden:
			return old, fmt.Errorf("%w (403): add origin %q and key %s to it: %s", ErrWitnessUnknownLog, head.Origin, a.Signer.VerifierKey(), snippet(body))
		case http.StatusNotFound:
			return old, fmt.Errorf("%w (404): %s", ErrWitnessNoEndpoint, w.URL)
		case http.StatusUnprocessableEntity:
			return old, fmt.Errorf("%w (422) %d: %s", ErrWitnessBadProof, old, snippet(body))
		default:
			if status >= 500 {
				return old, fmt.Errorf("%w: status %d: %s", errWitnessUnavailable, status, snippet(body))
			}
			return old, fmt.Errorf("witness replied %d: %s", status, snippet(body))
		}
	}
	return old, fmt.Errorf("%w: after three tries", errWitnessConflict)
}

// treeProof proves that the tree of size old is a prefix of the tree of size.
func (a *App) treeProof(ctx context.Context, size, old int64) (tlog.TreeProof, error) {
	if old == 0 || old == size {
		return nil, nil
	}
	var proof tlog.TreeProof
	err := pgx.BeginTxFunc(ctx, a.Pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var err error
		proof, err = tlog.ProveTree(size, old, projection.HashReader(ctx, tx))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("consistency proof %d to %d: %w", old, size, err)
	}
	return proof, nil
}

// maxWitnessReply bounds what is read of a witness's reply: a few
// signature lines, or a size.
const maxWitnessReply = 64 << 10

func post(ctx context.Context, client *http.Client, url string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(io.LimitReader(resp.Body, maxWitnessReply))
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, reply, nil
}

// snippet is the start of a witness's reply, for a log line.
func snippet(body []byte) string {
	s := strings.TrimSpace(string(body))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// Witnessing tunes WitnessEvery.
type Witnessing struct {
	Client *http.Client
	// Poll is how often the latest checkpoint is looked at.
	Poll time.Duration
	// MinBackoff and MaxBackoff bound the wait after a failure, doubled at each.
	MinBackoff, MaxBackoff time.Duration
	Log                    *slog.Logger
}

// WitnessEvery submits every new latest checkpoint to w until ctx ends,
// backing off after a failure.
func (a *App) WitnessEvery(ctx context.Context, w Witness, c Witnessing) error {
	name := w.Verifier.Name()
	log := c.Log.With("witness", name, "url", w.URL)
	tick := time.NewTicker(c.Poll)
	defer tick.Stop()
	known, backoff := int64(-1), time.Duration(0)
	var retryAt time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if a.Now().Before(retryAt) {
			continue
		}
		err := func() error {
			if known < 0 {
				size, err := a.cosignedSize(ctx, w)
				if err != nil {
					return err
				}
				known = size
				witnessCosignedSize.WithLabelValues(name).Set(float64(size))
			}
			head, ok, err := a.latest(ctx)
			if err != nil || !ok || head.Size <= known || head.Origin != a.Signer.Name() {
				return err
			}
			known, err = a.Submit(ctx, c.Client, w, head, known)
			return err
		}()
		if err == nil {
			backoff = 0
			continue
		}
		if ctx.Err() != nil {
			return nil
		}
		backoff = min(max(2*backoff, c.MinBackoff), c.MaxBackoff)
		retryAt = a.Now().Add(backoff)
		witnessFailures.WithLabelValues(name, witnessReason(err)).Inc()
		if errors.Is(err, ErrWitnessBadProof) {
			log.Error("trail: a witness holds another history of this log", "err", err, "retry_in", backoff)
		} else {
			log.Warn("trail: witness did not cosign", "err", err, "retry_in", backoff)
		}
	}
}

// Cosigned is the largest checkpoint that witnesses have cosigned, with
// their signature lines appended (ok is false while none has).
func (a *App) Cosigned(ctx context.Context) (h Head, note string, ok bool, err error) {
	err = pgx.BeginTxFunc(ctx, a.Pool, pgx.TxOptions{AccessMode: pgx.ReadOnly, IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		var root []byte
		err := tx.QueryRow(ctx, `SELECT h.size, h.root, h.note FROM trail.tree_heads h
			WHERE h.size = (SELECT max(size) FROM trail.cosignatures)`).Scan(&h.Size, &root, &h.Note)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("cosigned checkpoint: %w", err)
		}
		h.Root = tlog.Hash(root)
		h.Origin, _, _ = strings.Cut(h.Note, "\n")
		rows, err := tx.Query(ctx, `SELECT line FROM trail.cosignatures WHERE size = $1 ORDER BY witness_key`, h.Size)
		if err != nil {
			return fmt.Errorf("cosignatures: %w", err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("cosignatures: %w", err)
		}
		note, ok = ledger.Cosigned(h.Note, lines), true
		return nil
	})
	return h, note, ok, err
}
