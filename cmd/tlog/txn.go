package main

// tlog txn list|describe|abort, on kadm: ListTransactions (every agent),
// DescribeTransactions (the id's coordinator), and for a hanging
// transaction on a partition, DescribeProducers to find it and
// WriteTxnMarkers to abort it there, as kafka-transactions.sh abort does.

import (
	"fmt"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/urfave/cli/v2"
)

func txnCommand() *cli.Command {
	format := func() cli.Flag {
		return &cli.StringFlag{Name: "format", Value: "text", Usage: "text (an aligned table) or json"}
	}
	return &cli.Command{
		Name:  "txn",
		Usage: "list, describe and abort transactions",
		Subcommands: []*cli.Command{
			{
				Name:    "list",
				Aliases: []string{"ls"},
				Usage:   "list transactional ids with their producer id and state",
				Description: "Prints TRANSACTIONAL_ID PRODUCER_ID STATE, or a JSON array with --format json.\n" +
					"--state keeps only those in a state (Ongoing, PrepareCommit, CompleteAbort, ...).\n\n" + exitCodesHelp,
				Flags:  []cli.Flag{format(), multiFlag("state", "only transactions in `STATE` (repeatable)")},
				Action: withArgs("", 0, 0, txnList),
			},
			{
				Name:      "describe",
				Usage:     "show transactions: producer id and epoch, state, timeout, start and partitions",
				ArgsUsage: "TRANSACTIONAL_ID...",
				Description: "Prints one block per transactional id, or a JSON array with --format json.\n\n" +
					exitCodesHelp,
				Flags:  []cli.Flag{format()},
				Action: withArgs("TRANSACTIONAL_ID...", 1, -1, txnDescribe),
			},
			{
				Name:  "abort",
				Usage: "abort a hanging transaction on one partition",
				Description: "Finds the open transaction on --topic/--partition (the one starting at\n" +
					"--start-offset if several are open) with DescribeProducers and writes an ABORT\n" +
					"marker for it there, which lets read_committed consumers past it. Use it for a\n" +
					"transaction whose producer and coordinator are gone; a live producer is fenced\n" +
					"by its coordinator instead.\n\n" + exitCodesHelp,
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "topic", Aliases: []string{"t"}, Usage: "the partition's topic (required)"},
					&cli.IntFlag{Name: "partition", Aliases: []string{"p"}, Value: -1, Usage: "the partition (required)"},
					&cli.Int64Flag{Name: "start-offset", Value: -1, Usage: "the open transaction's first offset, if several are open"},
				},
				Action: withArgs("", 0, 0, txnAbort),
			},
		},
	}
}

type txnListEntry struct {
	TransactionalID string `json:"transactional_id"`
	ProducerID      int64  `json:"producer_id"`
	State           string `json:"state"`
}

func txnList(c *cli.Context, _ []string) error {
	asJSON, err := outputFormat(c)
	if err != nil {
		return err
	}
	adm, ctx, done, err := admin(c)
	if err != nil {
		return err
	}
	defer done()
	listed, err := adm.ListTransactions(ctx, nil, multi(c, "state"))
	if err != nil && len(listed) == 0 {
		return requestErr(c, "list transactions", err)
	}
	entries := []txnListEntry{}
	for _, l := range listed.Sorted() {
		entries = append(entries, txnListEntry{TransactionalID: l.TxnID, ProducerID: l.ProducerID, State: l.State})
	}
	if asJSON {
		return writeJSON(c.App.Writer, entries)
	}
	tw := newTable(c.App.Writer)
	fmt.Fprintln(tw, "TRANSACTIONAL_ID\tPRODUCER_ID\tSTATE")
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%d\t%s\n", e.TransactionalID, e.ProducerID, e.State)
	}
	return tw.Flush()
}

type txnView struct {
	TransactionalID string   `json:"transactional_id"`
	Coordinator     int32    `json:"coordinator"`
	ProducerID      int64    `json:"producer_id"`
	ProducerEpoch   int16    `json:"producer_epoch"`
	State           string   `json:"state"`
	TimeoutMillis   int32    `json:"timeout_ms"`
	StartTimestamp  int64    `json:"start_timestamp_ms"`
	Partitions      []string `json:"partitions"` // topic/partition
}

func txnDescribe(c *cli.Context, args []string) error {
	asJSON, err := outputFormat(c)
	if err != nil {
		return err
	}
	adm, ctx, done, err := admin(c)
	if err != nil {
		return err
	}
	defer done()
	described, err := adm.DescribeTransactions(ctx, args...)
	if err != nil && len(described) == 0 {
		return requestErr(c, "describe transactions", err)
	}
	var views []txnView
	var missing []string
	for _, id := range args {
		d, ok := described[id]
		if !ok || d.Err != nil {
			why := "no answer"
			if ok {
				why = d.Err.Error()
			}
			missing = append(missing, fmt.Sprintf("%s (%s)", id, why))
			continue
		}
		v := txnView{TransactionalID: id, Coordinator: d.Coordinator, ProducerID: d.ProducerID, ProducerEpoch: d.ProducerEpoch,
			State: d.State, TimeoutMillis: d.TimeoutMillis, StartTimestamp: d.StartTimestamp, Partitions: []string{}}
		for topic, ps := range d.Topics {
			for p := range ps {
				v.Partitions = append(v.Partitions, fmt.Sprintf("%s/%d", topic, p))
			}
		}
		sort.Strings(v.Partitions)
		views = append(views, v)
	}
	if asJSON {
		if views == nil {
			views = []txnView{}
		}
		if err := writeJSON(c.App.Writer, views); err != nil {
			return err
		}
	} else {
		for _, v := range views {
			fmt.Fprintf(c.App.Writer, "transactional id %s: %s, producer %d epoch %d, coordinator %d, timeout %d ms\n",
				v.TransactionalID, v.State, v.ProducerID, v.ProducerEpoch, v.Coordinator, v.TimeoutMillis)
			if len(v.Partitions) > 0 {
				fmt.Fprintf(c.App.Writer, "  partitions: %s\n", strings.Join(v.Partitions, " "))
			}
		}
	}
	if len(missing) > 0 {
		return fail(1, "cannot describe %s", strings.Join(missing, ", "))
	}
	return nil
}

func txnAbort(c *cli.Context, _ []string) error {
	topic, partition, start := c.String("topic"), int32(c.Int("partition")), c.Int64("start-offset")
	if topic == "" || partition < 0 {
		return fail(2, "--topic and --partition are required")
	}
	adm, ctx, done, err := admin(c)
	if err != nil {
		return err
	}
	defer done()
	if _, err := lookupTopic(ctx, c, adm, topic); err != nil {
		return err
	}
	described, err := adm.DescribeProducers(ctx, kadm.TopicsSet{topic: {partition: {}}})
	if err != nil {
		return requestErr(c, "describe producers", err)
	}
	var open []kadm.DescribedProducer
	var perr error
	described.EachPartition(func(dp kadm.DescribedProducersPartition) {
		if dp.Err != nil {
			perr = dp.Err
		}
		for _, p := range dp.ActiveProducers.Sorted() {
			if p.CurrentTxnStartOffset >= 0 && (start < 0 || p.CurrentTxnStartOffset == start) {
				open = append(open, p)
			}
		}
	})
	switch {
	case perr != nil:
		return brokerErr(topic, perr, "")
	case len(open) == 0:
		return fail(1, "no open transaction on %s/%d%s", topic, partition, startNote(start))
	case len(open) > 1:
		var starts []string
		for _, p := range open {
			starts = append(starts, fmt.Sprint(p.CurrentTxnStartOffset))
		}
		return fail(1, "%d open transactions on %s/%d (starting at %s): pick one with --start-offset", len(open), topic, partition, strings.Join(starts, ", "))
	}
	p := open[0]
	resp, err := adm.WriteTxnMarkers(ctx, kadm.TxnMarkers{
		ProducerID: p.ProducerID, ProducerEpoch: p.ProducerEpoch, CoordinatorEpoch: p.CoordinatorEpoch,
		Topics: kadm.TopicsSet{topic: {partition: {}}},
	})
	if err != nil {
		return requestErr(c, "write the abort marker", err)
	}
	var werr error
	resp.EachPartition(func(r kadm.TxnMarkersPartitionResponse) {
		if r.Err != nil {
			werr = r.Err
		}
	})
	if werr != nil {
		return brokerErr(topic, werr, "")
	}
	fmt.Fprintf(c.App.Writer, "aborted producer %d's transaction on %s/%d (started at offset %d)\n", p.ProducerID, topic, partition, p.CurrentTxnStartOffset)
	return nil
}

func startNote(start int64) string {
	if start < 0 {
		return ""
	}
	return fmt.Sprintf(" starting at offset %d", start)
}
