package tier

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
)

// supportedSchemes is quoted in errors so a typo'd URL says what would work.
const supportedSchemes = "mem://NAME[/PREFIX], file:///ABS/PATH, file://./REL/PATH, file:REL/PATH"

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
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("tier: open %q: query and fragment are not supported", rawURL)
	}
	switch u.Scheme {
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
