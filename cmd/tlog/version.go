package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/urfave/cli/v2"
)

// version and commit are set by `task release` and `task install`
// (-ldflags "-X main.version=… -X main.commit=…"); otherwise they come from
// the build's own record: the module version of a `go install …@vX.Y.Z`,
// the VCS revision of a build in a checkout (unless -buildvcs=false).
var version, commit = "", ""

// buildInfo is what `tlog version` prints: the version, the commit it was
// built from (with +dirty for uncommitted changes) and the Go toolchain.
type buildInfo struct {
	Version, Commit, Go string
}

func readBuildInfo() buildInfo {
	b := buildInfo{Version: version, Commit: commit, Go: runtime.Version()}
	if b.Commit == "" {
		b.Commit = "unknown"
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		if b.Version == "" {
			b.Version = "unknown"
		}
		return b
	}
	if b.Version == "" {
		b.Version = info.Main.Version // "(devel)" for a build from a checkout
	}
	dirty := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			if commit == "" {
				b.Commit = s.Value
			}
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty {
		b.Commit += "+dirty"
	}
	return b
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print tlog's version, the commit it was built from and the Go version",
		Action: withArgs("", 0, 0, func(c *cli.Context, _ []string) error {
			b := readBuildInfo()
			fmt.Fprintf(c.App.Writer, "tlog %s\ncommit %s\n%s %s/%s\n", b.Version, b.Commit, b.Go, runtime.GOOS, runtime.GOARCH)
			return nil
		}),
	}
}
