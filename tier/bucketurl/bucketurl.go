// Package bucketurl opens a tier.Bucket from a URL (mem://, file://,
// s3://). It is the one package that imports every implementation, so that
// tier itself stays free of the AWS SDK.
package bucketurl

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"sync"

	"github.com/tlog-io/tlog/tier"
	"github.com/tlog-io/tlog/tier/fs"
	"github.com/tlog-io/tlog/tier/s3"
)

// supportedSchemes is quoted in errors so a typo'd URL says what would work.
const supportedSchemes = "mem://NAME[/PREFIX], file:///ABS/PATH, file://./REL/PATH, file:REL/PATH, s3://BUCKET[/PREFIX][?endpoint=URL&region=R&path_style=BOOL]"

var (
	memNamedMu sync.Mutex
	memNamed   = map[string]*tier.MemBucket{}
)

// sharedMem returns the process-wide tier.MemBucket called name, so that
// several in-process agents opening mem://NAME share one bucket.
func sharedMem(name string) *tier.MemBucket {
	memNamedMu.Lock()
	defer memNamedMu.Unlock()
	b, ok := memNamed[name]
	if !ok {
		b = tier.NewMemBucket()
		memNamed[name] = b
	}
	return b
}

// Open returns the tier.Bucket a URL names:
//
//	mem://NAME          process-wide in-memory bucket shared by all opens of NAME
//	mem://NAME/PREFIX   the same bucket, keys under PREFIX/ (see tier.WithPrefix)
//	mem://              a fresh private in-memory bucket
//	file:///ABS/PATH    an fs.Bucket rooted at /ABS/PATH (created if missing)
//	file://./REL/PATH   an fs.Bucket relative to the working directory
//	file:REL/PATH       likewise
//	s3://BUCKET/PREFIX  an s3.Bucket (see s3.New), keys under PREFIX/;
//	                    query parameters (all optional):
//	                      endpoint=http://127.0.0.1:9000  S3-compatible server
//	                      region=us-east-1                default: AWS config, then us-east-1
//	                      path_style=true|false           default: true iff endpoint is set
//	                    Credentials come from the standard AWS chain
//	                    (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, ...).
//
// Any other scheme is an error listing the supported forms.
func Open(ctx context.Context, rawURL string) (tier.Bucket, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("tier: open %q: %w", rawURL, err)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("tier: open %q: %w", rawURL, err)
	}
	if u.Fragment != "" || (u.RawQuery != "" && u.Scheme != "s3") {
		return nil, fmt.Errorf("tier: open %q: query and fragment are not supported", rawURL)
	}
	switch u.Scheme {
	case "s3":
		cfg, err := s3.ConfigFromURL(u)
		if err != nil {
			return nil, fmt.Errorf("tier: open %q: %w", rawURL, err)
		}
		b, err := s3.New(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("tier: open %q: %w", rawURL, err)
		}
		return b, nil
	case "mem":
		if u.Opaque != "" {
			return nil, fmt.Errorf("tier: open %q: want mem://NAME[/PREFIX]", rawURL)
		}
		var b tier.Bucket
		if u.Host == "" {
			b = tier.NewMemBucket()
		} else {
			b = sharedMem(u.Host)
		}
		return tier.WithPrefix(b, u.Path), nil
	case "file":
		dir, err := fileURLPath(u)
		if err != nil {
			return nil, fmt.Errorf("tier: open %q: %w", rawURL, err)
		}
		b, err := fs.New(dir)
		if err != nil {
			return nil, fmt.Errorf("tier: open %q: %w", rawURL, err)
		}
		return b, nil
	case "":
		return nil, fmt.Errorf("tier: open %q: missing URL scheme (supported: %s)", rawURL, supportedSchemes)
	default:
		return nil, fmt.Errorf("tier: open %q: unsupported scheme %q (supported: %s)", rawURL, u.Scheme, supportedSchemes)
	}
}

// fileURLPath maps a file URL to a directory. The host may only be empty or
// "localhost" (absolute path) or "." / ".." (relative path), because
// file://data/x is ambiguous: RFC 8089 says "data" is a host.
func fileURLPath(u *url.URL) (string, error) {
	var p string
	switch {
	case u.Opaque != "":
		p = u.Opaque // file:rel/path
		if unescaped, err := url.PathUnescape(p); err == nil {
			p = unescaped
		}
	case u.Host == "" || u.Host == "localhost":
		p = u.Path
	case u.Host == "." || u.Host == "..":
		p = u.Host + u.Path
	default:
		return "", fmt.Errorf("file URL host %q not supported; use file:///ABS/PATH or file:REL/PATH", u.Host)
	}
	if strings.TrimSpace(p) == "" {
		return "", fmt.Errorf("file URL has no path; use file:///ABS/PATH or file:REL/PATH")
	}
	return filepath.FromSlash(p), nil
}
