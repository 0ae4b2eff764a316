package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/help from the current help texts")

// Every command's --help is kept in testdata/help, so a change to what
// users read shows in review: `go test ./cmd/tlog -run TestHelpGolden
// -update` rewrites the files after a deliberate change.
func TestHelpGolden(t *testing.T) {
	saved := version
	version = "VERSION"
	defer func() { version = saved }()

	var paths [][]string
	var walk func(prefix []string, cmds []*cli.Command)
	walk = func(prefix []string, cmds []*cli.Command) {
		for _, c := range cmds {
			if c.Name == "help" {
				continue
			}
			p := append(append([]string(nil), prefix...), c.Name)
			paths = append(paths, p)
			walk(p, c.Subcommands)
		}
	}
	paths = append(paths, nil) // tlog --help itself
	walk(nil, newApp().Commands)

	dir := filepath.Join("testdata", "help")
	want := map[string]bool{}
	for _, p := range paths {
		name := strings.Join(append([]string{"tlog"}, p...), "_") + ".txt"
		want[name] = true
		app := newApp()
		var out bytes.Buffer
		app.Writer, app.ErrWriter = &out, &out
		if err := app.Run(append(append([]string{"tlog"}, p...), "--help")); err != nil {
			t.Fatalf("tlog %s --help: %v", strings.Join(p, " "), err)
		}
		file := filepath.Join(dir, name)
		if *updateGolden {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, out.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		golden, err := os.ReadFile(file)
		if err != nil {
			t.Errorf("tlog %s --help has no golden file (run with -update): %v", strings.Join(p, " "), err)
			continue
		}
		if !bytes.Equal(golden, out.Bytes()) {
			t.Errorf("tlog %s --help differs from %s (run with -update if the change is meant):\n%s", strings.Join(p, " "), file, out.String())
		}
	}
	// A golden file whose command is gone.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !want[e.Name()] {
			t.Errorf("%s: no such command any more; remove it", filepath.Join(dir, e.Name()))
		}
	}
}
