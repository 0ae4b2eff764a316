// Command tlog is tlog's one binary: the agent (`tlog dev`, `tlog agent`)
// and the client commands.
package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
)

// exitError carries a message for people and a process exit code.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func fail(code int, format string, args ...any) error {
	return &exitError{code: code, msg: fmt.Sprintf(format, args...)}
}

func main() {
	app := newApp()
	if err := app.Run(hoistGlobalFlags(app, os.Args)); err != nil {
		fmt.Fprintln(os.Stderr, "tlog: "+err.Error())
		var ee *exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		os.Exit(1)
	}
}

// interruptWatchdog makes a client command end on the first Ctrl-C (or
// SIGTERM) even where a library call it waits on does not heed its
// context (a connection to a stopped agent): commands handle the signal
// themselves and return within moments; one that has not after
// interruptGrace is ended here, and a second signal ends it at once.
// The agents (dev, agent) shut down on their own terms instead.
func interruptWatchdog() {
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		select {
		case <-sig:
		case <-time.After(interruptGrace):
		}
		fmt.Fprintln(os.Stderr, "tlog: interrupted")
		os.Exit(130)
	}()
}

const interruptGrace = 2 * time.Second

// requiredMark ends the usage of a flag without a default: help shows
// it in place of "(default: …)".
const requiredMark = "(required)"

// defaultFlagStringer is urfave/cli's own, kept before newApp replaces it.
var defaultFlagStringer = cli.FlagStringer

// flagString is urfave/cli's flag stringer without the default of a flag
// marked required: `--id (default: 0)` read as if 0 would do.
func flagString(f cli.Flag) string {
	s := defaultFlagStringer(f)
	if !strings.Contains(s, requiredMark) {
		return s
	}
	if i := strings.LastIndex(s, " (default: "); i > strings.Index(s, requiredMark) {
		s = s[:i]
	}
	return s
}

func newApp() *cli.App {
	cli.FlagStringer = flagString
	app := &cli.App{
		Name:  "tlog",
		Usage: "a Kafka-compatible log whose durable home is object storage",
		Description: "Global options may also follow the command (tlog topic list -b HOST:9092), and\n" +
			"one-letter flags take kcat's meanings where they do not clash: -b brokers, -F a\n" +
			"properties file; on consume -o where to start, -c count, -e exit at the end,\n" +
			"-f format (%k %s %p %o %T %h); on produce -K key separator (-K: as well).\n" +
			"Sizes take units (8MiB, 1GiB) and durations Go's (250ms, 1m30s).",
		EnableBashCompletion: true,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "brokers", Aliases: []string{"b"}, EnvVars: []string{"TLOG_BROKERS"},
				Value: "127.0.0.1:9092", Usage: "comma-separated Kafka addresses of tlog agents"},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error"},
		}, securityFlags()...),
		Version: readBuildInfo().Version,
		Before: func(c *cli.Context) error {
			if cmd := c.Args().First(); cmd != "dev" && cmd != "agent" {
				interruptWatchdog()
			}
			return nil
		},
		Commands: []*cli.Command{
			devCommand(), agentCommand(),
			benchCommand(),
			topicCommand(), produceCommand(), consumeCommand(), groupCommand(), txnCommand(), clusterCommand(),
			userCommand(),
			aclCommand(),
			quotaCommand(),
			versionCommand(),
			completionCommand(),
		},
	}
	app.OnUsageError = func(c *cli.Context, err error, _ bool) error {
		return fail(2, "%v (see tlog --help)", err)
	}
	app.Action = unknownCommand("tlog", cli.ShowAppHelp)
	for _, cmd := range app.Commands {
		oneLineUsageErrors(cmd, "tlog")
	}
	return app
}

// unknownCommand is the action of the app and of commands made of
// subcommands: help when nothing follows, and a one-line error with exit
// status 2 for a name that is not one of them (urfave/cli's own answer is
// "No help topic for …" and status 3).
func unknownCommand(path string, help func(*cli.Context) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		if c.Args().Len() == 0 {
			return help(c)
		}
		return fail(2, "unknown command %q for %s (see %s --help)", c.Args().First(), path, path)
	}
}

// oneLineUsageErrors makes bad usage of cmd and its subcommands end with
// a one-line message and exit status 2, rather than the whole help and 1.
func oneLineUsageErrors(cmd *cli.Command, parent string) {
	name := parent + " " + cmd.Name
	cmd.OnUsageError = func(c *cli.Context, err error, _ bool) error {
		return fail(2, "%v (see %s --help)", err, name)
	}
	if len(cmd.Subcommands) > 0 && cmd.Action == nil {
		cmd.Action = unknownCommand(name, cli.ShowSubcommandHelp)
	}
	for _, sub := range cmd.Subcommands {
		oneLineUsageErrors(sub, name)
	}
}

// newLogger is the process's logger at --log-level, and that level, which
// an agent lets operators change at run time (Kafka's broker loggers).
func newLogger(c *cli.Context) (*slog.Logger, *slog.LevelVar, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(strings.ToLower(c.String("log-level")))); err != nil {
		return nil, nil, fail(2, "bad --log-level %q: use debug, info, warn or error", c.String("log-level"))
	}
	lv := new(slog.LevelVar)
	lv.Set(lvl)
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv})), lv, nil
}

// hoistGlobalFlags moves the app's own flags (--brokers, --log-level, the
// connection security ones) that follow a command name to the front, so
// that `tlog topic list -b HOST:9092` works as rpk's flags anywhere do:
// urfave/cli v2 parses a flag only on the command that defines it. A
// command's own flag of the same name wins, values of flags are skipped
// over, and nothing after "--" moves.
func hoistGlobalFlags(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	global := flagArity(app.Flags)
	var hoisted, rest []string
	cmds := app.Commands
	var local map[string]bool // the current command's flags; nil before one
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			rest = append(rest, a)
			cmd := findCommand(cmds, a)
			if cmd == nil {
				cmds = nil // a positional argument: no subcommands follow
				continue
			}
			local, cmds = flagArity(cmd.Flags), cmd.Subcommands
			continue
		}
		name, inline := strings.TrimLeft(a, "-"), false
		if k := strings.IndexByte(name, '='); k >= 0 {
			name, inline = name[:k], true
		}
		glued, isGlued := gluedValue(a, local, global)
		if isGlued {
			// kcat's -K: or -c10: a one-letter flag with its value.
			a, name = a[:2], a[1:2]
		}
		to := &rest
		takesValue, ok := local[name]
		if !ok {
			if takesValue, ok = global[name]; ok && local != nil {
				to = &hoisted
			}
		}
		*to = append(*to, a)
		switch {
		case isGlued:
			*to = append(*to, glued)
		case ok && takesValue && !inline && i+1 < len(args):
			i++
			*to = append(*to, args[i])
		}
	}
	return append(append([]string{args[0]}, hoisted...), rest...)
}

// gluedValue splits "-Kv" into the one-letter flag -K and its value v
// when -K takes a value and "Kv" is not a flag's name.
func gluedValue(a string, local, global map[string]bool) (string, bool) {
	if len(a) < 3 || a[0] != '-' || a[1] == '-' || strings.Contains(a, "=") {
		return "", false
	}
	if _, ok := local[a[1:]]; ok {
		return "", false
	}
	if _, ok := global[a[1:]]; ok {
		return "", false
	}
	takes, ok := local[a[1:2]]
	if !ok {
		takes, ok = global[a[1:2]]
	}
	if !ok || !takes {
		return "", false
	}
	return a[2:], true
}

// flagArity maps each name of each flag to whether it takes a value.
func flagArity(flags []cli.Flag) map[string]bool {
	m := map[string]bool{}
	for _, f := range flags {
		takes := true
		if tv, ok := f.(interface{ TakesValue() bool }); ok {
			takes = tv.TakesValue()
		}
		for _, n := range f.Names() {
			m[n] = takes
		}
	}
	return m
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}
