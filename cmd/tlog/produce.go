package main

// tlog produce TOPIC: one record per input line.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/urfave/cli/v2"
)

const defaultMaxMessageBytes = 1 << 20

func produceCommand() *cli.Command {
	return &cli.Command{
		Name:      "produce",
		Usage:     "produce one record per line of stdin (or --file)",
		ArgsUsage: "TOPIC",
		Description: "Reads lines from stdin, or from --file, and produces each as one record to TOPIC\n" +
			"(created on first use if the agent auto-creates topics). With --key-separator SEP\n" +
			"the text before the first SEP is the key and the rest the value; a line without\n" +
			"SEP is all value, with no key. Records with the same key go to the same partition.\n" +
			"--format FMT instead splits each line by a format string: %k key, %v value,\n" +
			"%p partition, %T timestamp (Unix ms), %h headers as NAME=VALUE,NAME=VALUE, %% a\n" +
			"percent sign; each field runs up to the text that follows it in FMT.\n" +
			"Waits for every record to be acknowledged, then prints \"produced N records to\n" +
			"TOPIC\" on stderr.\n\n" +
			"  printf 'order-1:prepared\\norder-2:prepared\\n' | tlog produce orders --key-separator :\n" +
			"  echo '1733100000000 order-1 src=web shipped' | tlog produce orders --format '%T %k %h %v'\n\n" +
			exitCodesHelp,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "read lines from `PATH` instead of stdin"},
			&cli.StringFlag{Name: "key-separator", Aliases: []string{"K"}, Usage: "split each line into key and value at the first `SEP` (\\t for a tab)"},
			&cli.StringFlag{Name: "format", Usage: "split each line by `FMT` (%k %v %p %T %h, see above) instead of --key-separator"},
			multiFlag("header", "add header `NAME=VALUE` to every record (repeatable)", "H"),
			&cli.IntFlag{Name: "partition", Aliases: []string{"p"}, Value: -1, Usage: "produce every record to partition `N` (-1: by key, or spread when there is none)"},
			&cli.StringFlag{Name: "acks", Value: "all", Usage: "all (every in-sync replica), 1 (the leader) or 0 (no acknowledgement)"},
			&cli.BoolFlag{Name: "idempotent", Value: true, Usage: "idempotent producer: retries never duplicate records (needs --acks all)"},
			&cli.DurationFlag{Name: "timeout", Value: 30 * time.Second, Usage: "give up on a record not acknowledged within this time"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "do not print the summary line"},
		},
		Action: withArgs("TOPIC", 1, 1, runProduce),
	}
}

func runProduce(c *cli.Context, args []string) error {
	topic := args[0]
	sep := []byte(unescape(c.String("key-separator")))
	var inFmt *inputFormat
	if f := c.String("format"); f != "" {
		if len(sep) > 0 {
			return fail(2, "give --format or --key-separator, not both (--format '%%k%s%%v' splits like --key-separator)", c.String("key-separator"))
		}
		var err error
		if inFmt, err = compileInputFormat(f); err != nil {
			return fail(2, "bad --format %q: %v", f, err)
		}
	}
	hkvs, err := parseKV("header", multi(c, "header"))
	if err != nil {
		return err
	}
	var headers []kgo.RecordHeader
	for _, kv := range hkvs {
		headers = append(headers, kgo.RecordHeader{Key: kv[0], Value: []byte(kv[1])})
	}
	var opts []kgo.Opt
	switch c.String("acks") {
	case "all", "-1":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
		if !c.Bool("idempotent") {
			opts = append(opts, kgo.DisableIdempotentWrite())
		}
	case "1":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	case "0":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	default:
		return fail(2, "bad --acks %q: use all, 1 or 0", c.String("acks"))
	}
	partition := c.Int("partition")
	if partition < -1 {
		return fail(2, "bad --partition %d: give a partition number, or -1", partition)
	}
	linePartitions := inFmt != nil && inFmt.has('p')
	if linePartitions && partition >= 0 {
		return fail(2, "give --partition or a %%p in --format, not both")
	}
	if partition >= 0 || linePartitions {
		opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}
	if c.Duration("timeout") <= 0 {
		return fail(2, "bad --timeout %v: must be positive", c.Duration("timeout"))
	}
	var in io.Reader = os.Stdin
	inFile := os.Stdin
	if path := c.String("file"); path != "" && path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return fail(2, "cannot read --file: %v", err)
		}
		defer f.Close()
		in, inFile = f, f
	}

	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	c.Context = ctx

	// What the topic allows, if it exists (otherwise the agent creates it
	// with its defaults on the first Metadata request, or says it does
	// not exist).
	maxMsg := int32(defaultMaxMessageBytes)
	numPartitions := -1 // unknown until the topic exists
	{
		adm, actx, done, err := admin(c)
		if err != nil {
			return err
		}
		tds, err := adm.ListTopics(actx, topic)
		if err != nil {
			done()
			return requestErr(c, "metadata for "+topic, err)
		}
		if td, ok := tds[topic]; ok && td.Err == nil {
			numPartitions = len(td.Partitions)
			if partition >= len(td.Partitions) {
				done()
				return fail(1, "topic %s has no partition %d (it has %s)", topic, partition, plural(len(td.Partitions), "partition"))
			}
			if rcs, err := adm.DescribeTopicConfigs(actx, topic); err == nil {
				if rc, err := rcs.On(topic, nil); err == nil && rc.Err == nil {
					for _, cfg := range rc.Configs {
						if cfg.Key == "max.message.bytes" && cfg.Value != nil {
							if n, err := strconv.ParseInt(*cfg.Value, 10, 32); err == nil && n > 0 {
								maxMsg = int32(n)
							}
						}
					}
				}
			}
		}
		done()
	}

	base, err := clientOpts(c, brokers(c))
	if err != nil {
		return err
	}
	opts = append(base, append(opts,
		kgo.DefaultProduceTopic(topic),
		kgo.AllowAutoTopicCreation(),
		kgo.ProducerBatchMaxBytes(maxMsg),
		kgo.ProducerLinger(5*time.Millisecond),
	)...)
	// kgo measures its delivery timeout from each record's timestamp, so a
	// line with its own (older) %T timestamp would time out at once; those
	// records get a deadline of their own instead.
	lineTimestamps := inFmt != nil && inFmt.has('T')
	if !lineTimestamps {
		opts = append(opts, kgo.RecordDeliveryTimeout(c.Duration("timeout")))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fail(2, "%v", err)
	}
	defer cl.Close()

	var (
		acked    atomic.Int64
		inflight atomic.Int64 // handed to the client, no outcome yet
		mu       sync.Mutex
		firstErr error
		errLine  int64
		failed   = make(chan struct{})
		failOnce sync.Once
		wg       sync.WaitGroup
	)
	onErr := func(line int64, err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr, errLine = err, line
		}
		mu.Unlock()
		failOnce.Do(func() { close(failed) })
	}

	// Lines are read on their own goroutine so Ctrl-C is noticed while
	// waiting for input.
	lines := make(chan []byte, 256)
	readErr := make(chan error, 1)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 0, 64<<10), int(maxMsg)+len(sep)+2)
		for sc.Scan() {
			line := append([]byte(nil), sc.Bytes()...)
			select {
			case lines <- line:
			case <-ctx.Done():
				return
			case <-failed:
				return
			}
		}
		readErr <- sc.Err()
	}()

	stopRate := liveRate(!c.Bool("quiet") && isTTY(os.Stderr) && !isTTY(inFile), "produced", &acked, 0)
	var n int64
	interrupted := false
	var badLine error
read:
	for {
		select {
		case <-ctx.Done():
			interrupted = true
			break read
		case <-failed:
			break read
		case line, ok := <-lines:
			if !ok {
				break read
			}
			n++
			r := &kgo.Record{Value: line, Headers: headers}
			if inFmt != nil {
				r.Value = nil
				r.Headers = append([]kgo.RecordHeader(nil), headers...)
				if err := inFmt.parse(line, r); err != nil {
					badLine = fail(1, "line %d does not match --format %q: %v", n, c.String("format"), err)
					failOnce.Do(func() { close(failed) })
					break read
				}
				if linePartitions && numPartitions >= 0 && int(r.Partition) >= numPartitions {
					badLine = fail(1, "line %d names partition %d but topic %s has %s", n, r.Partition, topic, plural(numPartitions, "partition"))
					failOnce.Do(func() { close(failed) })
					break read
				}
			} else if len(sep) > 0 {
				if i := bytes.Index(line, sep); i >= 0 {
					r.Key, r.Value = line[:i], line[i+len(sep):]
				}
			}
			if partition >= 0 {
				r.Partition = int32(partition)
			}
			lineNo := n
			wg.Add(1)
			rctx, cancel := ctx, context.CancelFunc(func() {})
			if lineTimestamps {
				rctx, cancel = context.WithTimeoutCause(ctx, c.Duration("timeout"), kgo.ErrRecordTimeout)
			}
			inflight.Add(1)
			cl.Produce(rctx, r, func(_ *kgo.Record, err error) {
				defer wg.Done()
				defer cancel()
				defer inflight.Add(-1)
				if err != nil && rctx.Err() != nil && ctx.Err() == nil {
					err = context.Cause(rctx)
				}
				if err != nil {
					onErr(lineNo, err)
					return
				}
				acked.Add(1)
			})
		}
	}
	// Wait for everything sent to be acknowledged or to fail (bounded by
	// --timeout per record). Ctrl-C (or SIGTERM) ends the wait at once:
	// records still in flight then are reported as unacknowledged (they
	// may or may not have been stored), since a broker that never answers
	// must not hold the command.
	allDone := make(chan struct{})
	go func() {
		wg.Wait()
		close(allDone)
	}()
	select {
	case <-allDone:
	case <-ctx.Done():
		select {
		case <-allDone:
		case <-time.After(200 * time.Millisecond): // answers already on their way
		}
	}
	interrupted = interrupted || ctx.Err() != nil
	stopRate()

	var scanErr error
	select {
	case scanErr = <-readErr:
	default:
	}
	summary := func() {
		if !c.Bool("quiet") {
			fmt.Fprintf(c.App.ErrWriter, "produced %s to %s\n", plural(int(acked.Load()), "record"), topic)
		}
	}
	switch {
	case interrupted:
		summary()
		if pending := inflight.Load(); pending > 0 {
			return fail(130, "interrupted with %s unacknowledged (each may or may not have been stored)", plural(int(pending), "record"))
		}
		return fail(130, "interrupted")
	case badLine != nil:
		summary()
		return badLine
	case firstErr != nil:
		if acked.Load() > 0 {
			summary()
		}
		return produceErr(topic, errLine, firstErr, c.Duration("timeout"))
	case errors.Is(scanErr, bufio.ErrTooLong):
		summary()
		return fail(1, "line %d is longer than max.message.bytes of %s (%d bytes)", n+1, topic, maxMsg)
	case scanErr != nil:
		summary()
		return fail(1, "reading input after line %d: %v", n, scanErr)
	}
	summary()
	return nil
}

func produceErr(topic string, line int64, err error, timeout time.Duration) error {
	switch {
	case errors.Is(err, kerr.UnknownTopicOrPartition):
		return fail(1, "topic %s does not exist (create it with `tlog topic create %s`)", topic, topic)
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		return fail(1, "line %d is too large for %s (see its max.message.bytes with `tlog topic describe %s`): %v", line, topic, topic, err)
	case errors.Is(err, kgo.ErrRecordTimeout):
		return fail(1, "line %d was not acknowledged within %v (is the agent up? see --timeout): %v", line, timeout, err)
	}
	return fail(1, "producing line %d to %s: %v", line, topic, err)
}
