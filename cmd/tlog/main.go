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
	if err := app.Run(os.Args); err != nil {
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

func newApp() *cli.App {
	app := &cli.App{
		Name:                 "tlog",
		Usage:                "a Kafka-compatible log whose durable home is object storage",
		EnableBashCompletion: true,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "brokers", Aliases: []string{"b"}, EnvVars: []string{"TLOG_BROKERS"},
				Value: "127.0.0.1:9092", Usage: "comma-separated Kafka addresses of tlog agents"},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error"},
		}, securityFlags()...),
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
		},
	}
	app.OnUsageError = func(c *cli.Context, err error, _ bool) error {
		return fail(2, "%v (see tlog --help)", err)
	}
	for _, cmd := range app.Commands {
		oneLineUsageErrors(cmd, "tlog")
	}
	return app
}

// oneLineUsageErrors makes bad usage of cmd and its subcommands end with
// a one-line message and exit status 2, rather than the whole help and 1.
func oneLineUsageErrors(cmd *cli.Command, parent string) {
	name := parent + " " + cmd.Name
	cmd.OnUsageError = func(c *cli.Context, err error, _ bool) error {
		return fail(2, "%v (see %s --help)", err, name)
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
