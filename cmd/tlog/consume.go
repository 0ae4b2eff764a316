package main

// tlog consume TOPIC: read records from chosen offsets and print them.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/urfave/cli/v2"
)

func consumeCommand() *cli.Command {
	return &cli.Command{
		Name:      "consume",
		Usage:     "print a topic's records",
		ArgsUsage: "TOPIC",
		Description: "Reads TOPIC (every partition, or --partition N) from --from and prints each\n" +
			"record with --format. Stops after -n COUNT records, at the end of every partition\n" +
			"with --exit (the ends as they were when the command started), or on Ctrl-C.\n\n" +
			"--from: beginning (the default), end (only new records), OFFSET (in every\n" +
			"partition, clamped to what it holds), -N (the last N of every partition), or\n" +
			"@UNIX_MS / @RFC3339 (the first record at or after that time; kcat's s@UNIX_MS too).\n\n" +
			"--format: %t topic, %k key, %v (or %s) value, %p partition, %o offset, %T timestamp\n" +
			"(unix ms), %h headers (k=v,k=v), %K and %S the key's and value's sizes (-1 for\n" +
			"null), %% a percent sign; \\n \\t \\r \\\\ escapes. Default \"%v\\n\".\n" +
			"--format json prints one object per line: {\"topic\", \"partition\", \"offset\",\n" +
			"\"timestamp\", \"key\", \"value\", \"headers\": [{\"key\", \"value\"}]}, key and value as\n" +
			"strings or null.\n\n" +
			"  tlog consume orders --exit --format '%k=%v (partition %p, offset %o)\\n'\n" +
			"  tlog consume orders -o beginning -e -f '%k %s\\n'      # kcat's short forms\n\n" +
			exitCodesHelp,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "from", Aliases: []string{"offset", "o"}, Value: "beginning", Usage: "where to start: beginning, end, OFFSET, -N, @UNIX_MS or s@UNIX_MS"},
			&cli.IntFlag{Name: "count", Aliases: []string{"n", "c"}, Usage: "exit after `COUNT` records (0: no limit)"},
			&cli.BoolFlag{Name: "exit", Aliases: []string{"e"}, Usage: "exit at the end of every partition instead of waiting for more"},
			&cli.IntFlag{Name: "partition", Aliases: []string{"p"}, Value: -1, Usage: "read only partition `N`"},
			&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: `%v\n`, Usage: "output `FORMAT` for each record, or json"},
			&cli.StringFlag{Name: "group", Aliases: []string{"g"}, Usage: "consume as a member of consumer group `G`, committing what is printed"},
			&cli.StringFlag{Name: "group-protocol", Value: "classic", Usage: "with --group: classic (JoinGroup/SyncGroup), or consumer (KIP-848: the broker assigns partitions)"},
		},
		Action: withArgs("TOPIC", 1, 1, runConsume),
	}
}

// fromSpec is a parsed --from.
type fromSpec struct {
	kind int // fromBeginning, fromEnd, fromOffset, fromLast or fromTime
	n    int64
}

const (
	fromBeginning = iota
	fromEnd
	fromOffset
	fromLast
	fromTime
)

func parseFrom(s string) (fromSpec, error) {
	bad := fail(2, "bad --from %q: use beginning, end, an offset (42), -N for the last N records, or @UNIX_MS (or s@UNIX_MS) for a time (@1700000000000)", s)
	switch strings.ToLower(s) {
	case "beginning", "earliest", "start", "oldest":
		return fromSpec{kind: fromBeginning}, nil
	case "end", "latest", "newest":
		return fromSpec{kind: fromEnd}, nil
	}
	switch {
	case strings.HasPrefix(s, "@"), strings.HasPrefix(s, "s@"): // s@ as kcat's -o
		at := s[strings.IndexByte(s, '@')+1:]
		if ms, err := strconv.ParseInt(at, 10, 64); err == nil && ms >= 0 {
			return fromSpec{kind: fromTime, n: ms}, nil
		}
		if t, err := time.Parse(time.RFC3339Nano, at); err == nil {
			return fromSpec{kind: fromTime, n: t.UnixMilli()}, nil
		}
		return fromSpec{}, bad
	case strings.HasPrefix(s, "-"):
		if n, err := strconv.ParseInt(s[1:], 10, 64); err == nil && n >= 0 {
			return fromSpec{kind: fromLast, n: n}, nil
		}
		return fromSpec{}, bad
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 {
		return fromSpec{kind: fromOffset, n: n}, nil
	}
	return fromSpec{}, bad
}

// formatPart is a literal (verb 0) or a verb of a --format string.
type formatPart struct {
	verb byte
	lit  string
}

// compileFormat parses a --format string into a function appending one
// record's text to a buffer.
func compileFormat(f string) (func([]byte, *kgo.Record) []byte, error) {
	f = unescape(f)
	var parts []formatPart
	var lit strings.Builder
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			lit.WriteByte(f[i])
			continue
		}
		if i+1 == len(f) {
			return nil, errors.New("it ends with a lone %")
		}
		i++
		switch v := f[i]; v {
		case '%':
			lit.WriteByte('%')
		case 't', 'k', 'v', 's', 'p', 'o', 'T', 'h', 'K', 'S':
			if lit.Len() > 0 {
				parts = append(parts, formatPart{lit: lit.String()})
				lit.Reset()
			}
			parts = append(parts, formatPart{verb: v})
		default:
			return nil, fmt.Errorf("unknown %%%c (use %%t %%k %%v %%s %%p %%o %%T %%h %%K %%S or %%%%)", v)
		}
	}
	if lit.Len() > 0 {
		parts = append(parts, formatPart{lit: lit.String()})
	}
	return func(b []byte, r *kgo.Record) []byte {
		for _, p := range parts {
			switch p.verb {
			case 0:
				b = append(b, p.lit...)
			case 't':
				b = append(b, r.Topic...)
			case 'k':
				b = append(b, r.Key...)
			case 'v', 's':
				b = append(b, r.Value...)
			case 'p':
				b = strconv.AppendInt(b, int64(r.Partition), 10)
			case 'o':
				b = strconv.AppendInt(b, r.Offset, 10)
			case 'K':
				b = strconv.AppendInt(b, sizeOrNull(r.Key), 10)
			case 'S':
				b = strconv.AppendInt(b, sizeOrNull(r.Value), 10)
			case 'T':
				b = strconv.AppendInt(b, r.Timestamp.UnixMilli(), 10)
			case 'h':
				for i, h := range r.Headers {
					if i > 0 {
						b = append(b, ',')
					}
					b = append(b, h.Key...)
					b = append(b, '=')
					b = append(b, h.Value...)
				}
			}
		}
		return b
	}, nil
}

// jsonRecord is one line of --format json.
type jsonRecord struct {
	Topic     string       `json:"topic"`
	Partition int32        `json:"partition"`
	Offset    int64        `json:"offset"`
	Timestamp int64        `json:"timestamp"`
	Key       *string      `json:"key"`
	Value     *string      `json:"value"`
	Headers   []jsonHeader `json:"headers"`
}

type jsonHeader struct {
	Key   string  `json:"key"`
	Value *string `json:"value"`
}

func bytesOrNull(b []byte) *string {
	if b == nil {
		return nil
	}
	s := string(b)
	return &s
}

func formatJSON(b []byte, r *kgo.Record) []byte {
	jr := jsonRecord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp.UnixMilli(),
		Key: bytesOrNull(r.Key), Value: bytesOrNull(r.Value), Headers: make([]jsonHeader, 0, len(r.Headers))}
	for _, h := range r.Headers {
		jr.Headers = append(jr.Headers, jsonHeader{Key: h.Key, Value: bytesOrNull(h.Value)})
	}
	var sb strings.Builder
	enc := json.NewEncoder(&sb)
	enc.SetEscapeHTML(false)
	enc.Encode(jr) // cannot fail: strings and numbers only
	return append(b, sb.String()...)
}

func runConsume(c *cli.Context, args []string) error {
	topic := args[0]
	from, err := parseFrom(c.String("from"))
	if err != nil {
		return err
	}
	format := formatJSON
	if f := c.String("format"); f != "json" {
		if format, err = compileFormat(f); err != nil {
			return fail(2, "bad --format %q: %v", f, err)
		}
	}
	count := int64(c.Int("count"))
	if count < 0 {
		return fail(2, "bad -n %d: give a number of records (0: no limit)", count)
	}
	only := c.Int("partition")
	if only < -1 {
		return fail(2, "bad --partition %d: give a partition number", only)
	}
	if g := c.String("group"); g != "" && only >= 0 {
		return fail(2, "--partition and --group do not go together: the group assigns partitions")
	}

	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	c.Context = ctx

	// Where each partition starts and, for --exit, ends.
	adm, actx, done, err := admin(c)
	if err != nil {
		return err
	}
	starts, ends, err := consumeRange(actx, c, adm, topic, only, from)
	done()
	if err != nil {
		return err
	}

	exitAtEnd := c.Bool("exit")
	if g := c.String("group"); g != "" {
		return consumeGroup(ctx, c, topic, g, from, ends, count, format, exitAtEnd)
	}
	parts := map[int32]kgo.Offset{}
	remaining := map[int32]bool{} // partitions --exit still waits for
	for p, start := range starts {
		parts[p] = kgo.NewOffset().At(start)
		if start < ends[p] {
			remaining[p] = true
		}
	}
	if exitAtEnd && len(remaining) == 0 {
		return nil
	}
	base, err := clientOpts(c, brokers(c))
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(append(base,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(time.Second),
	)...)
	if err != nil {
		return fail(2, "%v", err)
	}
	defer cl.Close()

	out := bufio.NewWriterSize(os.Stdout, 64<<10)
	defer out.Flush()
	var n atomic.Int64
	total := count // for the progress line: what -n or --exit will stop at
	if exitAtEnd {
		var left int64
		for p := range remaining {
			left += ends[p] - starts[p]
		}
		if total == 0 || left < total {
			total = left
		}
	}
	stopRate := liveRate(isTTY(os.Stderr) && !isTTY(os.Stdout), "consumed", &n, total)
	defer stopRate()
	var buf []byte
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil // Ctrl-C is how a tail ends
		}
		for _, fe := range fs.Errors() {
			if errors.Is(fe.Err, context.Canceled) {
				continue
			}
			stopRate()
			out.Flush()
			if errors.Is(fe.Err, kerr.UnknownTopicOrPartition) {
				return fail(1, "topic %s does not exist (deleted while reading?)", topic)
			}
			return fail(1, "reading %s/%d: %v", fe.Topic, fe.Partition, fe.Err)
		}
		for it := fs.RecordIter(); !it.Done(); {
			r := it.Next()
			if exitAtEnd && r.Offset >= ends[r.Partition] {
				continue // past the end we are to stop at
			}
			buf = format(buf[:0], r)
			if _, err := out.Write(buf); err != nil {
				return fail(1, "writing output: %v", err)
			}
			if exitAtEnd && r.Offset+1 >= ends[r.Partition] && remaining[r.Partition] {
				delete(remaining, r.Partition)
				cl.PauseFetchPartitions(map[string][]int32{topic: {r.Partition}})
			}
			if n.Add(1) == count {
				return flushOut(out)
			}
		}
		if exitAtEnd && len(remaining) == 0 {
			return flushOut(out)
		}
		if err := out.Flush(); err != nil {
			return fail(1, "writing output: %v", err)
		}
	}
}

// consumeGroup reads topic as a member of group, committing the records it
// printed after each write. With exitAtEnd it stops once every partition
// assigned to it has been read up to the end it had at the start.
func consumeGroup(ctx context.Context, c *cli.Context, topic, group string, from fromSpec, ends map[int32]int64, count int64, format func([]byte, *kgo.Record) []byte, exitAtEnd bool) error {
	reset := kgo.NewOffset().AtStart()
	switch from.kind {
	case fromEnd:
		reset = kgo.NewOffset().AtEnd()
	case fromOffset:
		reset = kgo.NewOffset().At(from.n)
	case fromLast:
		reset = kgo.NewOffset().AtEnd().Relative(-from.n)
	case fromTime:
		reset = kgo.NewOffset().AfterMilli(from.n)
	}
	var mu sync.Mutex
	assigned := map[int32]bool{}
	done := map[int32]bool{} // assigned partitions read to their end
	var adm *kadm.Client
	var protoOpts []kgo.Opt
	switch p := c.String("group-protocol"); p {
	case "classic":
	case "consumer":
		protoOpts = append(protoOpts, kgo.ServerSideBalancer())
	default:
		return fail(2, "bad --group-protocol %q: use classic or consumer", p)
	}
	base, err := clientOpts(c, brokers(c))
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(append(append(base, protoOpts...),
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(reset),
		kgo.DisableAutoCommit(), kgo.FetchMaxWait(time.Second),
		kgo.OnPartitionsAssigned(func(actx context.Context, _ *kgo.Client, m map[string][]int32) {
			// A partition whose committed offset is already at its end
			// has nothing to read for --exit.
			offs, _ := adm.FetchOffsetsForTopics(actx, group, topic)
			mu.Lock()
			defer mu.Unlock()
			for _, p := range m[topic] {
				assigned[p] = true
				if o, ok := offs.Lookup(topic, p); ok && o.Err == nil && o.At >= ends[p] {
					done[p] = true
				} else if ends[p] == 0 {
					done[p] = true
				}
			}
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			mu.Lock()
			defer mu.Unlock()
			for _, p := range m[topic] {
				delete(assigned, p)
			}
		}),
	)...)
	if err != nil {
		return fail(2, "%v", err)
	}
	adm = kadm.NewClient(cl)
	defer cl.Close() // leaves the group
	finished := func() bool {
		mu.Lock()
		defer mu.Unlock()
		if len(assigned) == 0 {
			return false
		}
		for p := range assigned {
			if !done[p] {
				return false
			}
		}
		return true
	}
	out := bufio.NewWriterSize(os.Stdout, 64<<10)
	defer out.Flush()
	var n atomic.Int64
	stopRate := liveRate(isTTY(os.Stderr) && !isTTY(os.Stdout), "consumed", &n, count)
	defer stopRate()
	commit := func(recs []*kgo.Record) error {
		if len(recs) == 0 {
			return nil
		}
		cctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := cl.CommitRecords(cctx, recs...); err != nil {
			return fail(1, "commit offsets of group %s: %v", group, err)
		}
		return nil
	}
	var buf []byte
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		for _, fe := range fs.Errors() {
			if errors.Is(fe.Err, context.Canceled) || errors.Is(fe.Err, context.DeadlineExceeded) {
				continue
			}
			stopRate()
			out.Flush()
			if errors.Is(fe.Err, kerr.UnknownTopicOrPartition) {
				return fail(1, "topic %s does not exist (deleted while reading?)", topic)
			}
			return fail(1, "reading %s/%d: %v", fe.Topic, fe.Partition, fe.Err)
		}
		var printed []*kgo.Record
		stop := false
		for it := fs.RecordIter(); !it.Done() && !stop; {
			r := it.Next()
			buf = format(buf[:0], r)
			if _, err := out.Write(buf); err != nil {
				return fail(1, "writing output: %v", err)
			}
			printed = append(printed, r)
			if r.Offset+1 >= ends[r.Partition] {
				mu.Lock()
				done[r.Partition] = true
				mu.Unlock()
			}
			stop = n.Add(1) == count
		}
		if err := out.Flush(); err != nil {
			return fail(1, "writing output: %v", err)
		}
		if err := commit(printed); err != nil {
			return err
		}
		if stop || (exitAtEnd && finished()) {
			return nil
		}
	}
}

func flushOut(w *bufio.Writer) error {
	if err := w.Flush(); err != nil {
		return fail(1, "writing output: %v", err)
	}
	return nil
}

// consumeRange finds the partitions to read, the offset each starts at
// (from --from) and each one's high watermark now.
func consumeRange(ctx context.Context, c *cli.Context, adm *kadm.Client, topic string, only int, from fromSpec) (starts, ends map[int32]int64, err error) {
	td, err := lookupTopic(ctx, c, adm, topic)
	if err != nil {
		return nil, nil, err
	}
	var ps []int32
	for p := range td.Partitions {
		if only < 0 || p == int32(only) {
			ps = append(ps, p)
		}
	}
	if len(ps) == 0 {
		return nil, nil, fail(1, "topic %s has no partition %d (it has %s)", topic, only, plural(len(td.Partitions), "partition"))
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	lso, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, nil, requestErr(c, "log start offsets of "+topic, err)
	}
	hwm, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, nil, requestErr(c, "high watermarks of "+topic, err)
	}
	var byTime kadm.ListedOffsets
	if from.kind == fromTime {
		if byTime, err = adm.ListOffsetsAfterMilli(ctx, from.n, topic); err != nil {
			return nil, nil, requestErr(c, "offsets by time in "+topic, err)
		}
	}
	offset := func(l kadm.ListedOffsets, p int32, what string) (int64, error) {
		o, ok := l.Lookup(topic, p)
		if !ok {
			return 0, fail(1, "%s of %s/%d: not in the agent's answer", what, topic, p)
		}
		if o.Err != nil {
			return 0, fail(1, "%s of %s/%d: %v", what, topic, p, o.Err)
		}
		return o.Offset, nil
	}
	starts, ends = map[int32]int64{}, map[int32]int64{}
	for _, p := range ps {
		lo, err := offset(lso, p, "log start offset")
		if err != nil {
			return nil, nil, err
		}
		hi, err := offset(hwm, p, "high watermark")
		if err != nil {
			return nil, nil, err
		}
		var at int64
		switch from.kind {
		case fromBeginning:
			at = lo
		case fromEnd:
			at = hi
		case fromOffset:
			at = from.n
		case fromLast:
			at = hi - from.n
		case fromTime:
			if at, err = offset(byTime, p, "offset by time"); err != nil {
				return nil, nil, err
			}
			if at < 0 {
				at = hi
			}
		}
		starts[p], ends[p] = min(max(at, lo), hi), hi
	}
	return starts, ends, nil
}

// sizeOrNull is a key's or value's length, -1 for null (kcat's %K, %S).
func sizeOrNull(b []byte) int64 {
	if b == nil {
		return -1
	}
	return int64(len(b))
}
