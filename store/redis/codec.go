package redis

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/registry-bridge/bridge/store"
)

// Record encoding, version 1. Integers are encoding/binary varints unless
// noted; strings are a uvarint length and the bytes.
//
//	offset 0     version byte (1)
//	offset 1..6  LastUsedAt: Unix milliseconds, 48-bit big-endian
//	             (0 when never used)
//	then         varint CreatedAt ms, varint ExpiresAt ms (0 = zero time)
//	             flags byte: bit 0 ReadOnly; bits 1–2 CreatedBy
//	             (1 cli, 2 browser, 3 api; 0: a string follows, as for
//	             "device")
//	             [CreatedBy], Subject, Username, Name, Digest, RefreshDigest
//	             uvarint group count, then the groups
//
// LastUsedAt has a fixed place, width and byte order so that touchScript
// can compare and overwrite it in place (SETRANGE keeps the key's TTL).
// The ID is the key and is not repeated. A realistic record (see
// TestMemoryBudget) stays under 252 bytes, the most that fits jemalloc's
// 256-byte class with Redis's string header.
const (
	codecVersion  = 1
	lastUsedOff   = 1
	lastUsedWidth = 6
	headerLen     = lastUsedOff + lastUsedWidth

	flagReadOnly     = 1 << 0
	creatorShift     = 1
	creatorMask      = 3 << creatorShift
	knownFlags       = flagReadOnly | creatorMask
	maxLastUsedMilli = 1<<(8*lastUsedWidth) - 1 // in the year 10889
)

// creators are the CreatedBy values coded in the flags byte, by code.
var creators = [...]string{1: store.CreatedByCLI, 2: store.CreatedByBrowser, 3: store.CreatedByAPI}

// errCorrupt: a stored value is not a record this version can read.
var errCorrupt = errors.New("corrupt record")

// encode returns p's compact encoding.
func encode(p store.Password) ([]byte, error) {
	lastUsed, err := lastUsedBytes(p.LastUsedAt)
	if err != nil {
		return nil, err
	}
	size := headerLen + 2*binary.MaxVarintLen64 + 1 + 7*binary.MaxVarintLen64 +
		len(p.Subject) + len(p.Username) + len(p.Name) + len(p.CreatedBy) +
		len(p.Digest) + len(p.RefreshDigest)
	for _, g := range p.Groups {
		size += binary.MaxVarintLen64 + len(g)
	}
	b := make([]byte, 0, size)
	b = append(b, codecVersion)
	b = append(b, lastUsed...)
	b = binary.AppendVarint(b, millis(p.CreatedAt))
	b = binary.AppendVarint(b, millis(p.ExpiresAt))
	var flags byte
	if p.ReadOnly {
		flags |= flagReadOnly
	}
	creator := creatorCode(p.CreatedBy)
	flags |= creator << creatorShift
	b = append(b, flags)
	if creator == 0 {
		b = appendBytes(b, p.CreatedBy)
	}
	for _, s := range []string{p.Subject, p.Username, p.Name} {
		b = appendBytes(b, s)
	}
	b = appendBytes(b, p.Digest)
	b = appendBytes(b, p.RefreshDigest)
	b = binary.AppendUvarint(b, uint64(len(p.Groups)))
	for _, g := range p.Groups {
		b = appendBytes(b, g)
	}
	return b, nil
}

// decode parses a value written by encode. The result's ID is empty.
func decode(b []byte) (store.Password, error) {
	var p store.Password
	if len(b) < headerLen || b[0] != codecVersion {
		return p, errCorrupt
	}
	var lastUsed [8]byte
	copy(lastUsed[8-lastUsedWidth:], b[lastUsedOff:headerLen])
	p.LastUsedAt = fromMillis(int64(binary.BigEndian.Uint64(lastUsed[:])))
	d := decoder{b: b[headerLen:]}
	p.CreatedAt = fromMillis(d.varint())
	p.ExpiresAt = fromMillis(d.varint())
	flags := d.byte()
	p.ReadOnly = flags&flagReadOnly != 0
	if creator := (flags & creatorMask) >> creatorShift; creator != 0 {
		p.CreatedBy = creators[creator]
	} else {
		p.CreatedBy = string(d.bytes())
	}
	p.Subject = string(d.bytes())
	p.Username = string(d.bytes())
	p.Name = string(d.bytes())
	p.Digest = d.bytesCopy()
	p.RefreshDigest = d.bytesCopy()
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)) { // every group takes at least a byte
		d.err = errCorrupt
	}
	if n > 0 && d.err == nil {
		p.Groups = make([]string, n)
		for i := range p.Groups {
			p.Groups[i] = string(d.bytes())
		}
	}
	if d.err != nil {
		return store.Password{}, d.err
	}
	if len(d.b) != 0 || flags&^knownFlags != 0 {
		return store.Password{}, errCorrupt
	}
	return p, nil
}

// lastUsedBytes renders t for the fixed LastUsedAt field.
func lastUsedBytes(t time.Time) ([]byte, error) {
	ms := millis(t)
	if ms < 0 || ms > maxLastUsedMilli {
		return nil, fmt.Errorf("last used time %s out of range", t.Format(time.RFC3339))
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(ms))
	return b[8-lastUsedWidth:], nil
}

// creatorCode returns the flags code of createdBy, or 0 when it has none.
func creatorCode(createdBy string) byte {
	for code, c := range creators {
		if code != 0 && c == createdBy {
			return byte(code)
		}
	}
	return 0
}

// millis maps the zero time to 0 and other times to Unix milliseconds.
func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

func appendBytes[T string | []byte](b []byte, s T) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decoder reads fields in order; the first error sticks and later reads
// return zero values.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.err = errCorrupt
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

// bytes returns the next length-prefixed field, aliasing the input.
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = errCorrupt
		return nil
	}
	s := d.b[:n:n]
	d.b = d.b[n:]
	return s
}

// bytesCopy is bytes for fields the record keeps; empty becomes nil.
func (d *decoder) bytesCopy() []byte {
	s := d.bytes()
	if len(s) == 0 {
		return nil
	}
	return append([]byte(nil), s...)
}
