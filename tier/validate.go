package tier

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrInvalidKey: a key that is not a clean slash-separated path. Every
// in-tree backend applies the same rules (ValidateKey) so that a key a test
// gets away with in memory is not rejected by the filesystem or S3 later.
var ErrInvalidKey = errors.New("invalid key")

// MaxKeyLen matches S3's limit on object key length, in bytes.
const MaxKeyLen = 1024

// ValidateKey reports whether key is a usable object key: non-empty, valid
// UTF-8, at most MaxKeyLen bytes, no leading slash, no empty, "." or ".."
// segments, no backslash and no NUL. The error wraps ErrInvalidKey.
func ValidateKey(key string) error {
	reason := ""
	switch {
	case key == "":
		reason = "empty"
	case len(key) > MaxKeyLen:
		reason = fmt.Sprintf("longer than %d bytes", MaxKeyLen)
	case !utf8.ValidString(key):
		reason = "not valid UTF-8"
	case strings.HasPrefix(key, "/"):
		reason = "leading slash"
	case strings.ContainsRune(key, '\\'):
		reason = "contains a backslash"
	case strings.ContainsRune(key, 0):
		reason = "contains NUL"
	default:
		for seg := range strings.SplitSeq(key, "/") {
			switch seg {
			case "":
				reason = "empty path segment"
			case ".", "..":
				reason = fmt.Sprintf("%q path segment", seg)
			}
			if reason != "" {
				break
			}
		}
	}
	if reason == "" {
		return nil
	}
	return fmt.Errorf("%w %q: %s", ErrInvalidKey, key, reason)
}

// RangeBounds turns GetRange arguments into [start, end) within an object of
// size bytes. A range starting at or past the end is invalid, except that an
// empty object read from offset 0, or a zero-length read ending at size,
// returns nothing; a range running past the end is truncated. The error
// wraps ErrInvalidRange. Every Bucket implementation uses it, so that they
// agree on the edge cases GetRange documents.
func RangeBounds(offset, length, size int64) (start, end int64, err error) {
	if offset < 0 || length < 0 {
		return 0, 0, fmt.Errorf("%w: offset %d length %d", ErrInvalidRange, offset, length)
	}
	if offset > size || (offset == size && length > 0 && size > 0) {
		return 0, 0, fmt.Errorf("%w: offset %d beyond size %d", ErrInvalidRange, offset, size)
	}
	n := size - offset // no offset+length: it could overflow
	if length < n {
		n = length
	}
	return offset, offset + n, nil
}
