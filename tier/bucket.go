// Package tier is tlog's object storage: the Bucket interface, the rules
// every implementation shares (ValidateKey, RangeBounds, the error
// sentinels), the in-memory MemBucket and the WithPrefix and WithMetrics
// wrappers. The other implementations live in subpackages, so that
// importing tier costs no SDK: tier/fs (a directory), tier/s3 (S3 and MinIO,
// on aws-sdk-go-v2); tier/bucketurl opens any of them from a URL.
// tier/segment holds the object format of flushed record batches.
package tier

import (
	"context"
	"errors"
	"time"
)

// Errors every Bucket implementation returns (wrapped with context), so that
// callers can use errors.Is regardless of the backend.
var (
	// ErrNotFound: the key does not exist.
	ErrNotFound = errors.New("object not found")
	// ErrPreconditionFailed: a conditional write lost (the key already
	// exists for PutIfAbsent, or its ETag differs for PutIfMatch).
	ErrPreconditionFailed = errors.New("precondition failed")
	// ErrInvalidRange: a ranged get outside the object.
	ErrInvalidRange = errors.New("invalid range")
)

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	Key      string
	Size     int64
	ETag     string // opaque; changes whenever the content is replaced
	Modified time.Time
}

// Bucket is the narrow object-store interface tlog needs. Keys are
// slash-separated paths without a leading slash. Implementations must be
// safe for concurrent use. Conditional writes are atomic: of several
// concurrent PutIfAbsent calls on one key exactly one succeeds.
type Bucket interface {
	// Put stores body at key unconditionally and returns the new ETag.
	Put(ctx context.Context, key string, body []byte) (etag string, err error)
	// PutIfAbsent stores body only if key does not exist (If-None-Match: *);
	// otherwise it returns ErrPreconditionFailed.
	PutIfAbsent(ctx context.Context, key string, body []byte) (etag string, err error)
	// PutIfMatch replaces key only if its current ETag equals etag
	// (If-Match); otherwise, or if key does not exist, ErrPreconditionFailed.
	PutIfMatch(ctx context.Context, key string, body []byte, etag string) (newETag string, err error)
	// Get returns the whole object.
	Get(ctx context.Context, key string) ([]byte, ObjectInfo, error)
	// GetRange returns length bytes starting at offset. A range that
	// starts past the end is ErrInvalidRange; one that runs past the end
	// is truncated to the object's end. "Past the end" includes offset ==
	// size with length > 0 on a non-empty object; negative offset or
	// length is ErrInvalidRange too. Backends may return an empty slice
	// for offset 0 of an empty object.
	GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error)
	// Stat returns the object's size and ETag.
	Stat(ctx context.Context, key string) (ObjectInfo, error)
	// List returns every object whose key starts with prefix, sorted by key.
	List(ctx context.Context, prefix string) ([]ObjectInfo, error)
	// Delete removes key; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// Close releases resources.
	Close() error
}
