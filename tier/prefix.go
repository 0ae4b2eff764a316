package tier

import (
	"context"
	"strings"
)

// prefixed keeps a bucket's keys under a fixed "directory", so several users
// (tests, clusters, s3://BUCKET/PREFIX) can share one bucket.
type prefixed struct {
	inner  Bucket
	prefix string // "" or ends in "/"
}

// WithPrefix returns a Bucket whose keys are stored in b under prefix. The
// prefix is treated as a directory: surrounding slashes are trimmed and one
// "/" is added, so "logs", "logs/" and "/logs/" are the same. List results
// have the prefix stripped. An empty prefix returns b itself. Close closes b.
func WithPrefix(b Bucket, prefix string) Bucket {
	prefix = strings.Trim(prefix, "/")
	if prefix == "" {
		return b
	}
	return &prefixed{inner: b, prefix: prefix + "/"}
}

// Put implements Bucket.
func (p *prefixed) Put(ctx context.Context, key string, body []byte) (string, error) {
	return p.inner.Put(ctx, p.prefix+key, body)
}

// PutIfAbsent implements Bucket.
func (p *prefixed) PutIfAbsent(ctx context.Context, key string, body []byte) (string, error) {
	return p.inner.PutIfAbsent(ctx, p.prefix+key, body)
}

// PutIfMatch implements Bucket.
func (p *prefixed) PutIfMatch(ctx context.Context, key string, body []byte, etag string) (string, error) {
	return p.inner.PutIfMatch(ctx, p.prefix+key, body, etag)
}

// Get implements Bucket.
func (p *prefixed) Get(ctx context.Context, key string) ([]byte, ObjectInfo, error) {
	body, info, err := p.inner.Get(ctx, p.prefix+key)
	info.Key = strings.TrimPrefix(info.Key, p.prefix)
	return body, info, err
}

// GetRange implements Bucket.
func (p *prefixed) GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	return p.inner.GetRange(ctx, p.prefix+key, offset, length)
}

// Stat implements Bucket.
func (p *prefixed) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	info, err := p.inner.Stat(ctx, p.prefix+key)
	info.Key = strings.TrimPrefix(info.Key, p.prefix)
	return info, err
}

// List implements Bucket.
func (p *prefixed) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	infos, err := p.inner.List(ctx, p.prefix+prefix)
	if err != nil {
		return nil, err
	}
	for i := range infos {
		infos[i].Key = strings.TrimPrefix(infos[i].Key, p.prefix)
	}
	return infos, nil
}

// Delete implements Bucket.
func (p *prefixed) Delete(ctx context.Context, key string) error {
	return p.inner.Delete(ctx, p.prefix+key)
}

// Close implements Bucket.
func (p *prefixed) Close() error { return p.inner.Close() }
