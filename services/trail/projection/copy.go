package projection

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"
)

// copyData is rows in PostgreSQL's binary COPY format (the format pgx's
// CopyFrom sends, see the COPY reference). A batch's rows are encoded by
// Prepare while the previous batch commits, so the commit only streams
// bytes; encoding them through pgx's CopyFrom, value by value through its
// type map, took a good part of the commit's time.
type copyData struct {
	buf []byte
}

// newCopyData starts a stream with room for about size bytes.
func newCopyData(size int) *copyData {
	d := &copyData{buf: make([]byte, 0, size)}
	d.buf = append(d.buf, "PGCOPY\n\377\r\n\000"...)
	d.buf = binary.BigEndian.AppendUint32(d.buf, 0) // flags: no OIDs
	d.buf = binary.BigEndian.AppendUint32(d.buf, 0) // no header extension
	return d
}

// row starts a row of n fields.
func (d *copyData) row(n int) { d.buf = binary.BigEndian.AppendUint16(d.buf, uint16(n)) }

func (d *copyData) int64(v int64) {
	d.buf = binary.BigEndian.AppendUint32(d.buf, 8)
	d.buf = binary.BigEndian.AppendUint64(d.buf, uint64(v))
}

func (d *copyData) int32(v int32) {
	d.buf = binary.BigEndian.AppendUint32(d.buf, 4)
	d.buf = binary.BigEndian.AppendUint32(d.buf, uint32(v))
}

func (d *copyData) int16(v int16) {
	d.buf = binary.BigEndian.AppendUint32(d.buf, 2)
	d.buf = binary.BigEndian.AppendUint16(d.buf, uint16(v))
}

// text is a text value: its bytes, as pgx sends a string.
func (d *copyData) text(s string) {
	d.buf = binary.BigEndian.AppendUint32(d.buf, uint32(len(s)))
	d.buf = append(d.buf, s...)
}

// bytea is a bytea value; nil is NULL, as pgx sends a nil []byte.
func (d *copyData) bytea(b []byte) {
	if b == nil {
		d.buf = binary.BigEndian.AppendUint32(d.buf, 0xFFFFFFFF) // -1: NULL
		return
	}
	d.buf = binary.BigEndian.AppendUint32(d.buf, uint32(len(b)))
	d.buf = append(d.buf, b...)
}

// hashes is a bytea value of concatenated hashes.
func (d *copyData) hashes(hs []tlog.Hash) {
	d.buf = binary.BigEndian.AppendUint32(d.buf, uint32(32*len(hs)))
	for _, h := range hs {
		d.buf = append(d.buf, h[:]...)
	}
}

// microsecondsToY2K is the Unix time of 2000-01-01, PostgreSQL's epoch, in
// microseconds.
const microsecondsToY2K = 946_684_800 * 1_000_000

// timestamptz is a time to the microsecond (truncated, as pgx does).
func (d *copyData) timestamptz(t time.Time) {
	d.int64(t.Unix()*1_000_000 + int64(t.Nanosecond())/1000 - microsecondsToY2K)
}

// bytes ends the stream and returns it.
func (d *copyData) bytes() []byte {
	return binary.BigEndian.AppendUint16(d.buf, 0xFFFF) // -1: the trailer
}

// copyFrom streams rows encoded with copyData into table's columns.
func copyFrom(ctx context.Context, tx pgx.Tx, table string, columns []string, data []byte) error {
	quoted := make([]string, len(columns))
	for i, c := range columns {
		quoted[i] = pgx.Identifier{c}.Sanitize()
	}
	sql := fmt.Sprintf("COPY %s (%s) FROM STDIN (FORMAT binary)", pgx.Identifier{Schema, table}.Sanitize(), strings.Join(quoted, ", "))
	_, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(data), sql)
	return err
}
