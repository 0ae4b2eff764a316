package tlogcontainer

// What the agents left in MinIO, read with minio-go (not tlog's own S3
// client, so a fault in that cannot hide in the check): the cluster
// metadata the journal builds, and the objects its segment manifests
// reference.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/tlog-io/tlog/metadata"
	"github.com/tlog-io/tlog/tier"
)

// ClusterPrefix is where the agents of a Run keep their objects.
const ClusterPrefix = "cluster/"

// State is the cluster metadata as the bucket holds it now (the newest
// snapshot and the journal after it).
func (m *MinIO) State(ctx context.Context) (*metadata.State, error) {
	// A reader under an id no agent has; the bucket view refuses writes.
	st, err := metadata.Open(ctx, metadata.Config{Bucket: tier.WithPrefix(readOnly{m}, ClusterPrefix), AgentID: math.MaxInt32, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, fmt.Errorf("tlogcontainer: read the metadata: %w", err)
	}
	defer st.Close()
	return st.State(), nil
}

// CheckSegments checks every segment range the metadata references
// against the objects in MinIO: each object exists and holds the range,
// no range is referenced twice, and each partition's ranges follow one
// another without overlap.
func (m *MinIO) CheckSegments(ctx context.Context) (ranges int, err error) {
	st, err := m.State(ctx)
	if err != nil {
		return 0, err
	}
	objs, err := m.Objects(ctx, ClusterPrefix)
	if err != nil {
		return 0, err
	}
	size := map[string]int64{}
	for _, o := range objs {
		size[strings.TrimPrefix(o.Key, ClusterPrefix)] = o.Size
	}
	type at struct {
		object string
		offset int64
	}
	seen := map[at]string{}
	var errs []error
	for _, t := range st.Topics {
		for i, p := range t.Partitions {
			where := fmt.Sprintf("%s/%d", t.Name, i)
			prev := int64(-1)
			for _, s := range p.Segments {
				n, ok := size[s.Object]
				switch {
				case !ok:
					errs = append(errs, fmt.Errorf("%s: range %d-%d in %s, which is not in the bucket", where, s.FirstOffset, s.LastOffset, s.Object))
				case s.Offset+s.Length > n:
					errs = append(errs, fmt.Errorf("%s: range %d-%d at %s[%d,+%d), past its %d bytes", where, s.FirstOffset, s.LastOffset, s.Object, s.Offset, s.Length, n))
				}
				k := at{s.Object, s.Offset}
				if other, dup := seen[k]; dup {
					errs = append(errs, fmt.Errorf("%s[%d] referenced by %s and %s", s.Object, s.Offset, other, where))
				}
				seen[k] = where
				if s.FirstOffset <= prev {
					errs = append(errs, fmt.Errorf("%s: range %d-%d overlaps the one ending at %d", where, s.FirstOffset, s.LastOffset, prev))
				}
				prev = s.LastOffset
				ranges++
			}
		}
	}
	return ranges, errors.Join(errs...)
}

// Orphans lists what garbage collection should have removed by now:
// segment objects (under data/) that no partition references and that
// were written more than olderThan ago, and multipart uploads left
// incomplete that long. An agent run with --orphan-grace G and
// --retention-check-interval I deletes such objects within G + I of
// their upload, or within I of their last reference going.
func (m *MinIO) Orphans(ctx context.Context, olderThan time.Duration) ([]string, error) {
	// List before reading the state: an object committed in between is
	// then seen as referenced.
	objs, err := m.Objects(ctx, ClusterPrefix+"data/")
	if err != nil {
		return nil, err
	}
	st, err := m.State(ctx)
	if err != nil {
		return nil, err
	}
	referenced := map[string]bool{}
	for _, t := range st.Topics {
		for _, p := range t.Partitions {
			for _, s := range p.Segments {
				referenced[ClusterPrefix+s.Object] = true
			}
		}
	}
	cutoff := time.Now().Add(-olderThan)
	var out []string
	for _, o := range objs {
		if !referenced[o.Key] && o.LastModified.Before(cutoff) {
			out = append(out, fmt.Sprintf("%s (%d bytes, written %s)", o.Key, o.Size, o.LastModified.UTC().Format(time.RFC3339)))
		}
	}
	for u := range m.Client.ListIncompleteUploads(ctx, m.Bucket, ClusterPrefix, true) {
		if u.Err != nil {
			return nil, fmt.Errorf("tlogcontainer: list incomplete uploads: %w", u.Err)
		}
		if u.Initiated.Before(cutoff) {
			out = append(out, fmt.Sprintf("incomplete upload %s of %s (started %s)", u.UploadID, u.Key, u.Initiated.UTC().Format(time.RFC3339)))
		}
	}
	return out, nil
}

// readOnly is the bucket as a tier.Bucket that only reads.
type readOnly struct{ m *MinIO }

var errReadOnly = errors.New("tlogcontainer: the fixtures' bucket view is read-only")

func (readOnly) Put(context.Context, string, []byte) (string, error) { return "", errReadOnly }
func (readOnly) PutIfAbsent(context.Context, string, []byte) (string, error) {
	return "", errReadOnly
}
func (readOnly) PutIfMatch(context.Context, string, []byte, string) (string, error) {
	return "", errReadOnly
}
func (readOnly) Delete(context.Context, string) error { return errReadOnly }
func (readOnly) Close() error                         { return nil }

func (r readOnly) Get(ctx context.Context, key string) ([]byte, tier.ObjectInfo, error) {
	obj, err := r.m.Client.GetObject(ctx, r.m.Bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, tier.ObjectInfo{}, notFound(err)
	}
	defer obj.Close()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, obj); err != nil {
		return nil, tier.ObjectInfo{}, notFound(err)
	}
	info, err := obj.Stat()
	if err != nil {
		return nil, tier.ObjectInfo{}, notFound(err)
	}
	return buf.Bytes(), tier.ObjectInfo{Key: key, Size: info.Size, ETag: info.ETag, Modified: info.LastModified}, nil
}

func (r readOnly) GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	if offset < 0 || length < 0 {
		return nil, tier.ErrInvalidRange
	}
	opts := minio.GetObjectOptions{}
	if length == 0 {
		return []byte{}, nil
	}
	if err := opts.SetRange(offset, offset+length-1); err != nil {
		return nil, err
	}
	obj, err := r.m.Client.GetObject(ctx, r.m.Bucket, key, opts)
	if err != nil {
		return nil, notFound(err)
	}
	defer obj.Close()
	b, err := io.ReadAll(obj)
	if err != nil {
		return nil, notFound(err)
	}
	return b, nil
}

func (r readOnly) Stat(ctx context.Context, key string) (tier.ObjectInfo, error) {
	info, err := r.m.Client.StatObject(ctx, r.m.Bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return tier.ObjectInfo{}, notFound(err)
	}
	return tier.ObjectInfo{Key: key, Size: info.Size, ETag: info.ETag, Modified: info.LastModified}, nil
}

func (r readOnly) List(ctx context.Context, prefix string) ([]tier.ObjectInfo, error) {
	objs, err := r.m.Objects(ctx, prefix)
	if err != nil {
		return nil, err
	}
	out := make([]tier.ObjectInfo, len(objs))
	for i, o := range objs {
		out[i] = tier.ObjectInfo{Key: o.Key, Size: o.Size, ETag: o.ETag, Modified: o.LastModified}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func notFound(err error) error {
	var resp minio.ErrorResponse
	if errors.As(err, &resp) && (resp.Code == "NoSuchKey" || resp.StatusCode == 404) {
		return fmt.Errorf("%w: %v", tier.ErrNotFound, err)
	}
	if resp := minio.ToErrorResponse(err); resp.Code == "NoSuchKey" {
		return fmt.Errorf("%w: %v", tier.ErrNotFound, err)
	}
	return err
}
