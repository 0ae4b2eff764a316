// Command tlog is tlog's one binary: the agent (`tlog dev`, `tlog agent`)
// and the client commands.
package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

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

func newApp() *cli.App {
	return &cli.App{
		Name:                 "tlog",
		Usage:                "a Kafka-compatible log whose durable home is object storage",
		EnableBashCompletion: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "brokers", Aliases: []string{"b"}, EnvVars: []string{"TLOG_BROKERS"},
				Value: "127.0.0.1:9092", Usage: "comma-separated Kafka addresses of tlog agents"},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error"},
		},
		Commands: []*cli.Command{
			devCommand(), agentCommand(),
			benchCommand(),
			topicCommand(), produceCommand(), consumeCommand(), groupCommand(), clusterCommand(),
		},
	}
}

func newLogger(c *cli.Context) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(strings.ToLower(c.String("log-level")))); err != nil {
		return nil, fail(2, "bad --log-level %q: use debug, info, warn or error", c.String("log-level"))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})), nil
}
