package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/urfave/cli/v2"
)

func TestParseFrom(t *testing.T) {
	for in, want := range map[string]fromSpec{
		"beginning":                  {kind: fromBeginning},
		"earliest":                   {kind: fromBeginning},
		"end":                        {kind: fromEnd},
		"latest":                     {kind: fromEnd},
		"0":                          {kind: fromOffset},
		"42":                         {kind: fromOffset, n: 42},
		"-10":                        {kind: fromLast, n: 10},
		"@1700000000000":             {kind: fromTime, n: 1700000000000},
		"@2023-11-14T22:13:20Z":      {kind: fromTime, n: 1700000000000},
		"@2023-11-14T22:13:20.5Z":    {kind: fromTime, n: 1700000000500},
		"@2023-11-14T23:13:20+01:00": {kind: fromTime, n: 1700000000000},
	} {
		got, err := parseFrom(in)
		if err != nil || got != want {
			t.Errorf("parseFrom(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "yesterday", "@", "@soon", "@-5", "1.5", "-x", "--3"} {
		_, err := parseFrom(in)
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != 2 {
			t.Errorf("parseFrom(%q): %v, want an exit-2 error", in, err)
		}
	}
}

func TestCompileFormat(t *testing.T) {
	r := &kgo.Record{
		Topic: "orders", Partition: 2, Offset: 17, Key: []byte("k"), Value: []byte("v"),
		Timestamp: time.UnixMilli(1700000000123),
		Headers:   []kgo.RecordHeader{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("x=y")}},
	}
	for f, want := range map[string]string{
		`%v\n`:                       "v\n",
		`%t %k %v %s %p %o %T %h\t;`: "orders k v v 2 17 1700000000123 a=1,b=x=y\t;",
		`100%% %k\\n`:                `100% k\n`,
		"literal only":               "literal only",
		`\q`:                         `\q`,
	} {
		fn, err := compileFormat(f)
		if err != nil {
			t.Errorf("compileFormat(%q): %v", f, err)
			continue
		}
		if got := string(fn(nil, r)); got != want {
			t.Errorf("format %q: %q, want %q", f, got, want)
		}
	}
	r.Key, r.Headers = nil, nil
	fn, _ := compileFormat(`[%k][%h]`)
	if got := string(fn(nil, r)); got != "[][]" {
		t.Errorf("no key, no headers: %q", got)
	}
	for _, f := range []string{`%q`, `50%`, `%`} {
		if _, err := compileFormat(f); err == nil {
			t.Errorf("compileFormat(%q) should fail", f)
		}
	}
}

func TestFormatJSON(t *testing.T) {
	r := &kgo.Record{Topic: "t", Partition: 1, Offset: 2, Value: []byte("<v>"), Timestamp: time.UnixMilli(5),
		Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("1")}}}
	want := `{"topic":"t","partition":1,"offset":2,"timestamp":5,"key":null,"value":"<v>","headers":[{"key":"h","value":"1"}]}` + "\n"
	if got := string(formatJSON(nil, r)); got != want {
		t.Errorf("formatJSON:\n%s\nwant:\n%s", got, want)
	}
	r.Headers, r.Key = nil, []byte{}
	want = `{"topic":"t","partition":1,"offset":2,"timestamp":5,"key":"","value":"<v>","headers":[]}` + "\n"
	if got := string(formatJSON(nil, r)); got != want {
		t.Errorf("formatJSON:\n%s\nwant:\n%s", got, want)
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{`\t`: "\t", `a\nb`: "a\nb", `\\t`: `\t`, `\x`: `\x`, `end\`: `end\`, `::`: `::`} {
		if got := unescape(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

// Flags may follow positional arguments, by any of their names; repeated
// flags keep commas.
func TestWithArgs(t *testing.T) {
	type seen struct {
		args    []string
		n       int
		exit    bool
		configs []string
		brokers string
	}
	run := func(argv ...string) (seen, error) {
		var s seen
		app := &cli.App{
			Name:      "tlog",
			Writer:    io.Discard,
			ErrWriter: io.Discard,
			Flags:     []cli.Flag{&cli.StringFlag{Name: "brokers", Value: "default"}},
			Commands: []*cli.Command{{
				Name: "topic",
				Subcommands: []*cli.Command{{
					Name: "create",
					Flags: []cli.Flag{
						&cli.IntFlag{Name: "count", Aliases: []string{"n"}},
						&cli.BoolFlag{Name: "exit", Aliases: []string{"e"}},
						multiFlag("config", "", "c"),
					},
					Action: withArgs("NAME", 1, 2, func(c *cli.Context, args []string) error {
						s = seen{args, c.Int("count"), c.Bool("exit"), multi(c, "config"), c.String("brokers")}
						return nil
					}),
				}},
			}},
		}
		err := app.Run(append([]string{"tlog"}, argv...))
		return s, err
	}
	got, err := run("topic", "create", "-n", "3", "orders", "--exit", "-c", "cleanup.policy=compact,delete", "--config=a=b", "--brokers", "x:1", "-n", "4")
	want := seen{[]string{"orders"}, 4, true, []string{"cleanup.policy=compact,delete", "a=b"}, "x:1"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, %v; want %+v", got, err, want)
	}
	got, err = run("topic", "create", "a", "-e", "--", "-b")
	if want := (seen{[]string{"a", "-b"}, 0, true, nil, "default"}); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, %v; want %+v", got, err, want)
	}
	for _, argv := range [][]string{
		{"topic", "create"},                    // too few
		{"topic", "create", "a", "b", "c"},     // too many
		{"topic", "create", "a", "--nope"},     // unknown flag
		{"topic", "create", "a", "-n"},         // missing value
		{"topic", "create", "a", "-n", "many"}, // bad value
	} {
		_, err := run(argv...)
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != 2 {
			t.Errorf("%v: %v, want an exit-2 error", argv, err)
		}
	}
}

// Bad storage flags are refused (exit 2, naming the flag) before an agent
// opens anything.
func TestStorageFlagsRefused(t *testing.T) {
	for _, tc := range []struct{ flag, value string }{
		{"orphan-grace", "5s"},
		{"retention-check-interval", "0s"},
		{"compaction-interval", "-1s"},
	} {
		data := t.TempDir()
		app := newApp()
		app.Writer, app.ErrWriter = io.Discard, io.Discard
		err := app.Run([]string{"tlog", "dev", "--data", data, "--listen", "127.0.0.1:0", "--" + tc.flag, tc.value})
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(ee.msg, "--"+tc.flag) {
			t.Errorf("--%s %s: %v, want an exit-2 error naming the flag", tc.flag, tc.value, err)
		}
		if entries, _ := os.ReadDir(data); len(entries) != 0 {
			t.Errorf("--%s %s: the data directory was written: %v", tc.flag, tc.value, entries)
		}
	}
}

// The app's flags may come after a command name, even one that takes no
// arguments (`tlog topic list -b HOST`), and a command's own flag of the
// same name stays with it.
func TestHoistGlobalFlags(t *testing.T) {
	app := newApp()
	for _, tc := range []struct{ in, want []string }{
		{[]string{"tlog", "topic", "list", "-b", "h:1"}, []string{"tlog", "-b", "h:1", "topic", "list"}},
		{[]string{"tlog", "topic", "list", "--brokers=h:1", "--tls"}, []string{"tlog", "--brokers=h:1", "--tls", "topic", "list"}},
		{[]string{"tlog", "-b", "h:1", "topic", "list"}, []string{"tlog", "-b", "h:1", "topic", "list"}},
		{[]string{"tlog", "produce", "T", "--log-level", "debug", "-K", "-b"}, []string{"tlog", "--log-level", "debug", "produce", "T", "-K", "-b"}},
		{[]string{"tlog", "consume", "T", "--", "-b", "x"}, []string{"tlog", "consume", "T", "--", "-b", "x"}},
	} {
		if got := hoistGlobalFlags(app, tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("hoistGlobalFlags(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// kcat's glued short forms split into flag and value where the letter is a
// flag that takes one, on the command or the app.
func TestGluedShortFlags(t *testing.T) {
	app := newApp()
	for _, tc := range []struct{ in, want []string }{
		{[]string{"tlog", "produce", "T", "-K:"}, []string{"tlog", "produce", "T", "-K", ":"}},
		{[]string{"tlog", "consume", "T", "-o-10", "-c5", "-e"}, []string{"tlog", "consume", "T", "-o", "-10", "-c", "5", "-e"}},
		{[]string{"tlog", "consume", "T", "-bh:1"}, []string{"tlog", "-b", "h:1", "consume", "T"}},
		{[]string{"tlog", "consume", "T", "-eq"}, []string{"tlog", "consume", "T", "-eq"}}, // -e takes no value
	} {
		if got := hoistGlobalFlags(app, tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("hoistGlobalFlags(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// tlog version prints what the release build stamped in, and the Go
// toolchain; --version agrees.
func TestVersion(t *testing.T) {
	savedV, savedC := version, commit
	version, commit = "v1.2.3", "0123abcd"
	defer func() { version, commit = savedV, savedC }()
	for _, args := range [][]string{{"tlog", "version"}, {"tlog", "--version"}} {
		app := newApp()
		var out bytes.Buffer
		app.Writer = &out
		if err := app.Run(args); err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		if !strings.Contains(out.String(), "v1.2.3") {
			t.Errorf("%q printed %q, want the version", args, out.String())
		}
		if args[1] == "version" && (!strings.Contains(out.String(), "commit 0123abcd") || !strings.Contains(out.String(), runtime.Version())) {
			t.Errorf("%q printed %q, want the commit and %s", args, out.String(), runtime.Version())
		}
	}
}

// A command name that is not one ends with a one-line error and status
// 2, at the top and under a command; nothing after a command shows help.
func TestUnknownCommand(t *testing.T) {
	for _, args := range [][]string{{"tlog", "bogus"}, {"tlog", "topic", "lst"}, {"tlog", "cluster", "drian", "2"}} {
		app := newApp()
		app.Writer, app.ErrWriter = io.Discard, io.Discard
		err := app.Run(args)
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(ee.msg, "unknown command") || strings.Contains(ee.msg, "\n") {
			t.Errorf("%q: %v, want one line saying unknown command, status 2", args, err)
		}
	}
	app := newApp()
	var out bytes.Buffer
	app.Writer = &out
	if err := app.Run([]string{"tlog", "topic"}); err != nil || !strings.Contains(out.String(), "COMMANDS:") {
		t.Errorf("tlog topic: %v\n%s", err, out.String())
	}
}
