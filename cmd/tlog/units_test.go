package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// Sizes are read as the docs write them, and shown the same way.
func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"8MiB": 8 << 20, "1GiB": 1 << 30, "256mib": 256 << 20, "64KiB": 64 << 10, "1.5GiB": 3 << 29,
		"10MB": 10_000_000, "1048576": 1 << 20, "0": 0, " 2 GiB ": 2 << 30, "512B": 512, "1TiB": 1 << 40,
	} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "MiB", "-1", "-1MiB", "8 megs", "1e30", "9223372036854775807GiB", "abc"} {
		if n, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", bad, n)
		}
	}
	for n, want := range map[int64]string{8 << 20: "8MiB", 1 << 30: "1GiB", 1000: "1000", 0: "0", 3 << 29: "1536MiB", 64 << 10: "64KiB"} {
		if got := formatSize(n); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", n, got, want)
		}
	}
}

// A size flag takes units on the command line; bad usage anywhere in the
// command tree ends with one line and exit status 2, not the whole help.
func TestSizeFlagsAndUsageErrors(t *testing.T) {
	var got int64
	app := func() *cli.App { // flags hold their values: one app a run, as main has
		return &cli.App{Name: "t", Flags: []cli.Flag{sizeFlag("flush-bytes", 8<<20, "x")},
			Action: func(c *cli.Context) error { got = sizeOf(c, "flush-bytes"); return nil }}
	}
	if err := app().Run([]string{"t", "--flush-bytes", "4MiB"}); err != nil || got != 4<<20 {
		t.Fatalf("--flush-bytes 4MiB: %d, %v", got, err)
	}
	if err := app().Run([]string{"t"}); err != nil || got != 8<<20 {
		t.Fatalf("default: %d, %v", got, err)
	}
	for _, args := range [][]string{
		{"tlog", "dev", "--flush-bytes", "8megs"},
		{"tlog", "topic", "create", "--bogus", "x"},
		{"tlog", "--bogus"},
	} {
		var out bytes.Buffer
		app := newApp()
		app.Writer, app.ErrWriter = &out, &out
		err := app.Run(args)
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != 2 {
			t.Errorf("%v: %v, want exit status 2", args, err)
			continue
		}
		if strings.Contains(out.String(), "OPTIONS") || !strings.Contains(ee.msg, "--help") {
			t.Errorf("%v: printed %q, message %q; want one line pointing to --help", args, out.String(), ee.msg)
		}
	}
}
