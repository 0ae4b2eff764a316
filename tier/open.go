package tier

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// supportedSchemes is quoted in errors so a typo'd URL says what would work.
const supportedSchemes = "mem://NAME[/PREFIX], file:///ABS/PATH, file://./REL/PATH, file:REL/PATH, s3://BUCKET[/PREFIX][?endpoint=URL&region=R&path_style=BOOL]"

var (
	memNamedMu sync.Mutex
	memNamed   = map[string]*MemBucket{}
)

// sharedMem returns the process-wide MemBucket called name, so that several
// in-process agents opening mem://NAME share one bucket.
func sharedMem(name string) *MemBucket {
	memNamedMu.Lock()
	defer memNamedMu.Unlock()
	b, ok := memNamed[name]
	if !ok {
		b = NewMemBucket()
		memNamed[name] = b
	}
	return b
}

// Open returns the Bucket a URL names:
//
//	mem://NAME          process-wide in-memory bucket shared by all opens of NAME
//	mem://NAME/PREFIX   the same bucket, keys under PREFIX/ (see WithPrefix)
//	mem://              a fresh private in-memory bucket
//	file:///ABS/PATH    an FSBucket rooted at /ABS/PATH (created if missing)
//	file://./REL/PATH   an FSBucket relative to the working directory
//	file:REL/PATH       likewise
//	s3://BUCKET/PREFIX  an S3Bucket (see NewS3Bucket), keys under PREFIX/;
//	                    query parameters (all optional):
//	                      endpoint=http://127.0.0.1:9000  S3-compatible server
//	                      region=us-east-1                default: AWS config, then us-east-1
//	                      path_style=true|false           default: true iff endpoint is set
//	                    Credentials come from the standard AWS chain
//	                    (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, ...).
//
// Any other scheme is an error listing the supported forms.
func Open(ctx context.Context, rawURL string) (Bucket, error) {
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
		cfg, err := s3URLConfig(u)
		if err != nil {
			return nil, fmt.Errorf("tier: open %q: %w", rawURL, err)
		}
		b, err := NewS3Bucket(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("tier: open %q: %w", rawURL, err)
		}
		return b, nil
	case "mem":
		if u.Opaque != "" {
			return nil, fmt.Errorf("tier: open %q: want mem://NAME[/PREFIX]", rawURL)
		}
		var b Bucket
		if u.Host == "" {
			b = NewMemBucket()
		} else {
			b = sharedMem(u.Host)
		}
		return WithPrefix(b, u.Path), nil
	case "file":
		dir, err := fileURLPath(u)
		if err != nil {
			return nil, fmt.Errorf("tier: open %q: %w", rawURL, err)
		}
		b, err := NewFSBucket(dir)
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

// s3URLConfig maps s3://BUCKET[/PREFIX][?endpoint=&region=&path_style=] to
// an S3Config. Credentials never come from the URL, which ends up in logs.
func s3URLConfig(u *url.URL) (S3Config, error) {
	const form = "want s3://BUCKET[/PREFIX][?endpoint=URL&region=R&path_style=BOOL]"
	switch {
	case u.Opaque != "":
		return S3Config{}, errors.New(form)
	case u.User != nil:
		return S3Config{}, fmt.Errorf("credentials in the URL are not supported; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	case u.Host == "":
		return S3Config{}, fmt.Errorf("missing bucket name; %s", form)
	case u.Port() != "" || strings.HasSuffix(u.Host, ":"):
		return S3Config{}, fmt.Errorf("bucket name %q contains a port; give the server as ?endpoint=http://HOST:PORT", u.Host)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return S3Config{}, fmt.Errorf("query: %w", err)
	}
	cfg := S3Config{Bucket: u.Host, Prefix: u.Path}
	var pathStyle *bool
	for k, v := range q {
		if len(v) != 1 {
			return S3Config{}, fmt.Errorf("query parameter %q given %d times", k, len(v))
		}
		switch k {
		case "endpoint":
			if err := checkS3Endpoint(v[0]); err != nil {
				return S3Config{}, err
			}
			cfg.Endpoint = v[0]
		case "region":
			if v[0] == "" {
				return S3Config{}, fmt.Errorf("empty region")
			}
			cfg.Region = v[0]
		case "path_style":
			ps, err := strconv.ParseBool(v[0])
			if err != nil {
				return S3Config{}, fmt.Errorf("path_style=%q: want true or false", v[0])
			}
			pathStyle = &ps
		default:
			return S3Config{}, fmt.Errorf("unknown query parameter %q (known: endpoint, region, path_style)", k)
		}
	}
	cfg.PathStyle = cfg.Endpoint != ""
	if pathStyle != nil {
		cfg.PathStyle = *pathStyle
	}
	return cfg, nil
}
