package s3

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// ConfigFromURL maps s3://BUCKET[/PREFIX][?endpoint=&region=&path_style=]
// to a Config (see tier/bucketurl for the query parameters). Credentials
// never come from the URL, which ends up in logs.
func ConfigFromURL(u *url.URL) (Config, error) {
	const form = "want s3://BUCKET[/PREFIX][?endpoint=URL&region=R&path_style=BOOL]"
	switch {
	case u.Opaque != "":
		return Config{}, errors.New(form)
	case u.User != nil:
		return Config{}, fmt.Errorf("credentials in the URL are not supported; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	case u.Host == "":
		return Config{}, fmt.Errorf("missing bucket name; %s", form)
	case u.Port() != "" || strings.HasSuffix(u.Host, ":"):
		return Config{}, fmt.Errorf("bucket name %q contains a port; give the server as ?endpoint=http://HOST:PORT", u.Host)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return Config{}, fmt.Errorf("query: %w", err)
	}
	cfg := Config{Bucket: u.Host, Prefix: u.Path}
	var pathStyle *bool
	for k, v := range q {
		if len(v) != 1 {
			return Config{}, fmt.Errorf("query parameter %q given %d times", k, len(v))
		}
		switch k {
		case "endpoint":
			if err := checkEndpoint(v[0]); err != nil {
				return Config{}, err
			}
			cfg.Endpoint = v[0]
		case "region":
			if v[0] == "" {
				return Config{}, fmt.Errorf("empty region")
			}
			cfg.Region = v[0]
		case "path_style":
			ps, err := strconv.ParseBool(v[0])
			if err != nil {
				return Config{}, fmt.Errorf("path_style=%q: want true or false", v[0])
			}
			pathStyle = &ps
		default:
			return Config{}, fmt.Errorf("unknown query parameter %q (known: endpoint, region, path_style)", k)
		}
	}
	cfg.PathStyle = cfg.Endpoint != ""
	if pathStyle != nil {
		cfg.PathStyle = *pathStyle
	}
	return cfg, nil
}
