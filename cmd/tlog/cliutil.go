package main

// Helpers shared by the client commands (topic, produce, consume): mixing
// flags and arguments, repeatable flags, connecting to an agent, turning
// broker errors into messages for people, and live progress lines.

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/urfave/cli/v2"
)

const (
	dialTimeout  = 3 * time.Second  // per connection attempt
	pingTimeout  = 5 * time.Second  // the first request, which proves an agent answers
	adminTimeout = 30 * time.Second // a whole admin command
)

// exitCodesHelp ends the description of every client command.
const exitCodesHelp = "Exit status: 0 on success, 1 when the agent refuses or cannot be reached, 2 for bad arguments."

// withArgs wraps a command's action so that flags may follow positional
// arguments (`tlog topic create orders --partitions 3`). urfave/cli v2 stops
// parsing flags at the first argument that is not one; the rest is parsed
// here and applied with Context.Set. It checks the number of positional
// arguments (max < 0: no limit) against usage.
func withArgs(usage string, min, max int, fn func(c *cli.Context, args []string) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		args, help, err := splitArgs(c)
		if err != nil {
			return fail(2, "%v (see tlog %s --help)", err, commandPath(c))
		}
		if help {
			return showHelp(c)
		}
		if len(args) < min || (max >= 0 && len(args) > max) {
			return fail(2, "usage: tlog %s %s (see --help)", commandPath(c), usage)
		}
		return fn(c, args)
	}
}

// commandPath is the command's name with its parents' ("topic create").
func commandPath(c *cli.Context) string {
	var names []string
	for _, ctx := range c.Lineage() {
		if ctx.Command != nil && ctx.Command.Name != "" && ctx.Command.Name != c.App.Name {
			names = append([]string{ctx.Command.Name}, names...)
		}
	}
	return strings.Join(names, " ")
}

// showHelp prints a leaf command's help, as `--help` before its arguments
// would.
func showHelp(c *cli.Context) error {
	cli.HelpPrinter(c.App.Writer, cli.CommandHelpTemplate, c.Command)
	return nil
}

// splitArgs separates what urfave/cli left unparsed into positional
// arguments and flags, setting the flags on c. A lone "-" is an argument;
// "--" ends flags.
func splitArgs(c *cli.Context) (args []string, help bool, err error) {
	in := c.Args().Slice()
	for i := 0; i < len(in); i++ {
		a := in[i]
		if a == "--" {
			args = append(args, in[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			args = append(args, a)
			continue
		}
		name := strings.TrimLeft(a, "-")
		value, hasValue := "", false
		if k := strings.IndexByte(name, '='); k >= 0 {
			name, value, hasValue = name[:k], name[k+1:], true
		}
		if name == "help" || name == "h" {
			return nil, true, nil
		}
		f := lookupFlag(c, name)
		if f == nil {
			return nil, false, fmt.Errorf("flag provided but not defined: %s", a)
		}
		if !hasValue {
			if tv, ok := f.(interface{ TakesValue() bool }); ok && !tv.TakesValue() {
				value = "true"
			} else {
				if i+1 >= len(in) {
					return nil, false, fmt.Errorf("flag needs an argument: %s", a)
				}
				i++
				value = in[i]
			}
		}
		// Set the flag by its main name: urfave/cli copies values between
		// a flag's names only while it parses, before this runs.
		if err := c.Set(f.Names()[0], value); err != nil {
			return nil, false, fmt.Errorf("invalid value %q for flag %s: %v", value, a, err)
		}
	}
	return args, false, nil
}

// lookupFlag finds a flag by any of its names on the command, its parents
// or the app.
func lookupFlag(c *cli.Context, name string) cli.Flag {
	var sets [][]cli.Flag
	for _, ctx := range c.Lineage() {
		if ctx.Command != nil {
			sets = append(sets, ctx.Command.Flags)
		}
	}
	sets = append(sets, c.App.Flags)
	for _, fs := range sets {
		for _, f := range fs {
			for _, n := range f.Names() {
				if n == name {
					return f
				}
			}
		}
	}
	return nil
}

// multiValue is a repeatable string flag that, unlike cli.StringSliceFlag,
// does not split values on commas (cleanup.policy=compact,delete is one
// config).
type multiValue struct{ vals []string }

func (m *multiValue) Set(v string) error { m.vals = append(m.vals, v); return nil }
func (m *multiValue) String() string     { return strings.Join(m.vals, " ") }

func multiFlag(name, usage string, aliases ...string) *cli.GenericFlag {
	return &cli.GenericFlag{Name: name, Aliases: aliases, Usage: usage, Value: &multiValue{}}
}

func multi(c *cli.Context, name string) []string {
	if m, ok := c.Generic(name).(*multiValue); ok {
		return m.vals
	}
	return nil
}

// parseKV splits the values of a repeatable NAME=VALUE flag.
func parseKV(flag string, vals []string) ([][2]string, error) {
	out := make([][2]string, 0, len(vals))
	for _, v := range vals {
		k, val, ok := strings.Cut(v, "=")
		if !ok || k == "" {
			return nil, fail(2, "bad --%s %q: use --%s NAME=VALUE", flag, v, flag)
		}
		out = append(out, [2]string{k, val})
	}
	return out, nil
}

// outputFormat checks a --format flag of the text-or-json kind.
func outputFormat(c *cli.Context) (json bool, err error) {
	switch f := c.String("format"); f {
	case "text", "":
		return false, nil
	case "json":
		return true, nil
	default:
		return false, fail(2, "bad --format %q: use text or json", f)
	}
}

// connect makes a franz-go client on --brokers and checks, within a few
// seconds, that an agent answers; otherwise it says how to point the
// command at one.
func connect(c *cli.Context, opts ...kgo.Opt) (*kgo.Client, error) {
	seeds := brokers(c)
	if len(seeds) == 0 {
		return nil, fail(2, "--brokers is empty: give HOST:PORT[,HOST:PORT...] or set TLOG_BROKERS")
	}
	base, err := clientOpts(c, seeds)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		return nil, fail(2, "bad --brokers %q: %v", c.String("brokers"), err)
	}
	ctx, cancel := context.WithTimeout(c.Context, pingTimeout)
	defer cancel()
	if err := cl.Ping(ctx); err != nil {
		cl.Close()
		if c.Context.Err() != nil {
			return nil, fail(1, "interrupted")
		}
		return nil, fail(1, "cannot reach a tlog agent at %s (set --brokers or TLOG_BROKERS): %v", strings.Join(seeds, ","), err)
	}
	return cl, nil
}

// clientOpts are the CLI's franz-go options: seeds, timeouts and the
// connection security settings (security.go).
func clientOpts(c *cli.Context, seeds []string) ([]kgo.Opt, error) {
	sec, err := securityOpts(c)
	if err != nil {
		return nil, err
	}
	return append([]kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.ClientID("tlog-cli"),
		kgo.DialTimeout(dialTimeout),
		kgo.RetryTimeout(15 * time.Second),
	}, sec...), nil
}

// requestErr describes a request that got no answer (as opposed to an
// answer with an error code).
func requestErr(c *cli.Context, what string, err error) error {
	switch {
	case c.Context.Err() != nil:
		return fail(1, "%s: interrupted", what)
	case errors.Is(err, context.DeadlineExceeded):
		return fail(1, "%s: no answer from the agent at %s within %v", what, c.String("brokers"), adminTimeout)
	}
	return fail(1, "%s: %v", what, err)
}

// brokerErr turns an error code (and the agent's message, if any) into a
// message for people. Unknown and existing topics get fixed wording that
// scripts may rely on.
func brokerErr(topic string, err error, msg string) error {
	switch {
	case errors.Is(err, kerr.TopicAlreadyExists):
		return fail(1, "topic %s already exists", topic)
	case errors.Is(err, kerr.UnknownTopicOrPartition), errors.Is(err, kerr.UnknownTopicID):
		return fail(1, "topic %s does not exist", topic)
	}
	if msg == "" {
		var ke *kerr.Error
		if errors.As(err, &ke) {
			msg = strings.ToLower(strings.ReplaceAll(ke.Message, "_", " ")) + ": " + ke.Description
		} else {
			msg = err.Error()
		}
	}
	return fail(1, "topic %s: %s", topic, msg)
}

// lookupTopic returns a topic's metadata, or "topic X does not exist".
func lookupTopic(ctx context.Context, c *cli.Context, adm *kadm.Client, topic string) (kadm.TopicDetail, error) {
	tds, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return kadm.TopicDetail{}, requestErr(c, "metadata for "+topic, err)
	}
	td, ok := tds[topic]
	if !ok {
		return td, fail(1, "topic %s does not exist", topic)
	}
	if td.Err != nil {
		return td, brokerErr(topic, td.Err, "")
	}
	return td, nil
}

// topicIDString prints a topic ID as Kafka's tools do (URL-safe base64,
// no padding).
func topicIDString(id kadm.TopicID) string {
	return base64.RawURLEncoding.EncodeToString(id[:])
}

// replicationFactor is the replica count of a topic's first partition.
func replicationFactor(td kadm.TopicDetail) int {
	if p, ok := td.Partitions[0]; ok {
		return len(p.Replicas)
	}
	for _, p := range td.Partitions {
		return len(p.Replicas)
	}
	return 0
}

// isTTY reports whether f is a terminal: a character device other than
// /dev/null.
func isTTY(f *os.File) bool {
	st, err := f.Stat()
	if err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(st, null)
}

// liveRate prints "label N records, R records/s" on stderr twice a second
// while work runs, if enabled; the returned function clears the line.
func liveRate(enabled bool, label string, count *atomic.Int64, total int64) func() {
	if !enabled {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		last, lastT := int64(0), time.Now()
		for {
			select {
			case <-done:
				fmt.Fprint(os.Stderr, "\r\033[K")
				return
			case now := <-t.C:
				n := count.Load()
				rate := float64(n-last) / now.Sub(lastT).Seconds()
				last, lastT = n, now
				if total > 0 {
					fmt.Fprintf(os.Stderr, "\r\033[K%s %d/%d records (%.0f%%), %.0f records/s", label, n, total, 100*float64(n)/float64(total), rate)
				} else {
					fmt.Fprintf(os.Stderr, "\r\033[K%s %d records, %.0f records/s", label, n, rate)
				}
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); wg.Wait() }) }
}

// unescape turns \n, \t, \r, \0 and \\ into the characters they name;
// other backslashes stay as they are.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch s[i] {
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case '0':
			b.WriteByte(0)
		case '\\':
			b.WriteByte('\\')
		default:
			b.WriteByte('\\')
			b.WriteByte(s[i])
		}
	}
	return b.String()
}
