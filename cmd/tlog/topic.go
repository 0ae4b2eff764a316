package main

// tlog topic create|list|describe|alter|delete, on kadm.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/urfave/cli/v2"
)

func topicCommand() *cli.Command {
	format := func() cli.Flag {
		return &cli.StringFlag{Name: "format", Value: "text", Usage: "text (an aligned table) or json"}
	}
	return &cli.Command{
		Name:  "topic",
		Usage: "create, list, describe, alter and delete topics",
		Subcommands: []*cli.Command{
			{
				Name:      "create",
				Usage:     "create a topic",
				ArgsUsage: "NAME",
				Description: "Creates topic NAME. -1 takes the agent's defaults (num.partitions; a\n" +
					"replication factor of min(3, agents)). --config sets a topic config and may be\n" +
					"repeated: tlog topic create orders --partitions 3 --config retention.ms=86400000\n\n" + exitCodesHelp,
				Flags: []cli.Flag{
					&cli.IntFlag{Name: "partitions", Aliases: []string{"p"}, Value: -1, Usage: "number of partitions (-1: the agent's default)"},
					&cli.IntFlag{Name: "replication-factor", Aliases: []string{"r"}, Value: -1, Usage: "replicas per partition (-1: the agent's default)"},
					multiFlag("config", "topic config `NAME=VALUE` (repeatable)", "c"),
				},
				Action: withArgs("NAME", 1, 1, topicCreate),
			},
			{
				Name:        "list",
				Aliases:     []string{"ls"},
				Usage:       "list topics with their partition counts and replication factors",
				Description: "Prints NAME PARTITIONS RF, one topic per line, or a JSON array with --format json.\n\n" + exitCodesHelp,
				Flags:       []cli.Flag{format()},
				Action:      withArgs("", 0, 0, topicList),
			},
			{
				Name:      "describe",
				Usage:     "show a topic's ID, configs and partitions (leaders, replicas, offsets)",
				ArgsUsage: "NAME",
				Description: "Prints the topic ID, every topic config with its value and source, and one line\n" +
					"per partition: leader, leader epoch, replicas, in-sync replicas, log start offset\n" +
					"and high watermark. --format json prints one JSON object.\n\n" + exitCodesHelp,
				Flags:  []cli.Flag{format()},
				Action: withArgs("NAME", 1, 1, topicDescribe),
			},
			{
				Name:      "alter",
				Usage:     "change a topic's configs or add partitions",
				ArgsUsage: "NAME",
				Description: "--config NAME=VALUE sets a config, --delete-config NAME returns it to the default\n" +
					"(both repeatable, applied together with IncrementalAlterConfigs); --partitions N\n" +
					"grows the topic to N partitions (topics never shrink).\n\n" + exitCodesHelp,
				Flags: []cli.Flag{
					multiFlag("config", "set topic config `NAME=VALUE` (repeatable)", "c"),
					multiFlag("delete-config", "return topic config `NAME` to its default (repeatable)"),
					&cli.IntFlag{Name: "partitions", Aliases: []string{"p"}, Usage: "grow the topic to `N` partitions"},
				},
				Action: withArgs("NAME", 1, 1, topicAlter),
			},
			{
				Name:        "delete",
				Usage:       "delete topics and their data",
				ArgsUsage:   "NAME...",
				Description: "Deletes each named topic; its data is garbage-collected from the bucket.\n\n" + exitCodesHelp,
				Action:      withArgs("NAME...", 1, -1, topicDelete),
			},
		},
	}
}

// admin connects and returns an admin client and a context bounded by
// adminTimeout; call the returned function when done.
func admin(c *cli.Context) (*kadm.Client, context.Context, func(), error) {
	cl, err := connect(c)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(c.Context, adminTimeout)
	return kadm.NewClient(cl), ctx, func() { cancel(); cl.Close() }, nil
}

func topicCreate(c *cli.Context, args []string) error {
	name := args[0]
	kvs, err := parseKV("config", multi(c, "config"))
	if err != nil {
		return err
	}
	configs := map[string]*string{}
	for _, kv := range kvs {
		v := kv[1]
		configs[kv[0]] = &v
	}
	adm, ctx, done, err := admin(c)
	if err != nil {
		return err
	}
	defer done()
	resps, err := adm.CreateTopics(ctx, int32(c.Int("partitions")), int16(c.Int("replication-factor")), configs, name)
	if err != nil {
		return requestErr(c, "create topic "+name, err)
	}
	resp, ok := resps[name]
	if !ok {
		return fail(1, "topic %s: no answer in the CreateTopics response", name)
	}
	if resp.Err != nil {
		return brokerErr(name, resp.Err, resp.ErrMessage)
	}
	if resp.NumPartitions > 0 {
		fmt.Fprintf(c.App.Writer, "created topic %s (%s, replication factor %d)\n", name,
			plural(int(resp.NumPartitions), "partition"), resp.ReplicationFactor)
	} else {
		fmt.Fprintf(c.App.Writer, "created topic %s\n", name)
	}
	return nil
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

type topicListEntry struct {
	Name              string `json:"name"`
	Partitions        int    `json:"partitions"`
	ReplicationFactor int    `json:"replication_factor"`
}

func topicList(c *cli.Context, _ []string) error {
	asJSON, err := outputFormat(c)
	if err != nil {
		return err
	}
	adm, ctx, done, err := admin(c)
	if err != nil {
		return err
	}
	defer done()
	tds, err := adm.ListTopics(ctx)
	if err != nil {
		return requestErr(c, "list topics", err)
	}
	out := []topicListEntry{}
	for _, name := range tds.Names() {
		td := tds[name]
		out = append(out, topicListEntry{Name: name, Partitions: len(td.Partitions), ReplicationFactor: replicationFactor(td)})
	}
	if asJSON {
		return writeJSON(c.App.Writer, out)
	}
	tw := newTable(c.App.Writer)
	fmt.Fprintln(tw, "NAME\tPARTITIONS\tRF")
	for _, t := range out {
		fmt.Fprintf(tw, "%s\t%d\t%d\n", t.Name, t.Partitions, t.ReplicationFactor)
	}
	return tw.Flush()
}

type topicDescription struct {
	Name              string           `json:"name"`
	ID                string           `json:"id"`
	ReplicationFactor int              `json:"replication_factor"`
	Configs           []topicConfig    `json:"configs"`
	Partitions        []topicPartition `json:"partitions"`
}

type topicConfig struct {
	Name   string  `json:"name"`
	Value  *string `json:"value"`
	Source string  `json:"source"`
}

type topicPartition struct {
	Partition     int32   `json:"partition"`
	Leader        int32   `json:"leader"`
	LeaderEpoch   int32   `json:"leader_epoch"`
	Replicas      []int32 `json:"replicas"`
	ISR           []int32 `json:"isr"`
	LogStart      int64   `json:"log_start_offset"`
	HighWatermark int64   `json:"high_watermark"`
	// DirtyRatio is, on a compacted topic, the share of the partition's
	// bucket bytes no key-compaction pass has covered yet (absent on
	// other topics, or when the leader did not say).
	DirtyRatio *float64 `json:"dirty_ratio,omitempty"`
	Error      string   `json:"error,omitempty"`
}

func topicDescribe(c *cli.Context, args []string) error {
	name := args[0]
	asJSON, err := outputFormat(c)
	if err != nil {
		return err
	}
	adm, ctx, done, err := admin(c)
	if err != nil {
		return err
	}
	defer done()
	td, err := lookupTopic(ctx, c, adm, name)
	if err != nil {
		return err
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, name)
	if err != nil {
		return requestErr(c, "describe configs of "+name, err)
	}
	rc, err := rcs.On(name, nil)
	if err != nil {
		return fail(1, "describe configs of %s: %v", name, err)
	}
	if rc.Err != nil {
		return brokerErr(name, rc.Err, rc.ErrMessage)
	}
	starts, err := adm.ListStartOffsets(ctx, name)
	if err != nil {
		return requestErr(c, "log start offsets of "+name, err)
	}
	ends, err := adm.ListEndOffsets(ctx, name)
	if err != nil {
		return requestErr(c, "high watermarks of "+name, err)
	}

	compacted := false
	for _, cfg := range rc.Configs {
		if cfg.Key == "cleanup.policy" && cfg.Value != nil && strings.Contains(*cfg.Value, "compact") {
			compacted = true
		}
	}
	var dirs kadm.DescribedAllLogDirs
	if compacted {
		// Each leader reports its partitions' dirty bytes as the
		// "compaction" dir, their bucket bytes as "bucket".
		if dirs, err = adm.DescribeAllLogDirs(ctx, nil); err != nil {
			return requestErr(c, "compaction state of "+name, err)
		}
	}
	d := topicDescription{Name: name, ID: topicIDString(td.ID), ReplicationFactor: replicationFactor(td), Configs: []topicConfig{}, Partitions: []topicPartition{}}
	for _, cfg := range rc.Configs {
		d.Configs = append(d.Configs, topicConfig{Name: cfg.Key, Value: cfg.Value, Source: cfg.Source.String()})
	}
	sort.Slice(d.Configs, func(i, j int) bool { return d.Configs[i].Name < d.Configs[j].Name })
	for _, p := range td.Partitions.Sorted() {
		tp := topicPartition{Partition: p.Partition, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch,
			Replicas: nonNil(p.Replicas), ISR: nonNil(p.ISR), LogStart: -1, HighWatermark: -1}
		if p.Err != nil {
			tp.Error = p.Err.Error()
		}
		if o, ok := starts.Lookup(name, p.Partition); ok && o.Err == nil {
			tp.LogStart = o.Offset
		}
		if o, ok := ends.Lookup(name, p.Partition); ok && o.Err == nil {
			tp.HighWatermark = o.Offset
		}
		if cd, ok := dirs[p.Leader].Lookup("compaction", name, p.Partition); ok {
			if bd, ok := dirs[p.Leader].Lookup("bucket", name, p.Partition); ok {
				r := 0.0
				if bd.Size > 0 {
					r = float64(cd.Size) / float64(bd.Size)
				}
				tp.DirtyRatio = &r
			}
		}
		d.Partitions = append(d.Partitions, tp)
	}
	if asJSON {
		return writeJSON(c.App.Writer, d)
	}

	w := c.App.Writer
	fmt.Fprintf(w, "Topic:              %s\n", d.Name)
	fmt.Fprintf(w, "ID:                 %s\n", d.ID)
	fmt.Fprintf(w, "Partitions:         %d\n", len(d.Partitions))
	fmt.Fprintf(w, "Replication factor: %d\n\n", d.ReplicationFactor)
	tw := newTable(w)
	fmt.Fprintln(tw, "CONFIG\tVALUE\tSOURCE")
	for _, cfg := range d.Configs {
		v := "(sensitive)"
		if cfg.Value != nil {
			v = *cfg.Value
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", cfg.Name, v, cfg.Source)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = newTable(w)
	head := "PARTITION\tLEADER\tEPOCH\tREPLICAS\tISR\tLOG-START\tHIGH-WATERMARK"
	if compacted {
		head += "\tDIRTY"
	}
	fmt.Fprintln(tw, head)
	for _, p := range d.Partitions {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%s\t%s\t%s", p.Partition, p.Leader, p.LeaderEpoch,
			joinInts(p.Replicas), joinInts(p.ISR), offsetText(p.LogStart), offsetText(p.HighWatermark))
		if compacted {
			dirty := "-"
			if p.DirtyRatio != nil {
				dirty = fmt.Sprintf("%.0f%%", *p.DirtyRatio*100)
			}
			fmt.Fprintf(tw, "\t%s", dirty)
		}
		if p.Error != "" {
			fmt.Fprintf(tw, "\t%s", p.Error)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

func topicAlter(c *cli.Context, args []string) error {
	name := args[0]
	sets, err := parseKV("config", multi(c, "config"))
	if err != nil {
		return err
	}
	dels := multi(c, "delete-config")
	for _, d := range dels {
		if d == "" || strings.Contains(d, "=") {
			return fail(2, "bad --delete-config %q: give a config NAME (no value)", d)
		}
		for _, kv := range sets {
			if kv[0] == d {
				return fail(2, "--config and --delete-config both name %s: give one", d)
			}
		}
	}
	grow := c.IsSet("partitions")
	if grow && c.Int("partitions") < 1 {
		return fail(2, "bad --partitions %d: give the new total number of partitions", c.Int("partitions"))
	}
	if len(sets) == 0 && len(dels) == 0 && !grow {
		return fail(2, "nothing to change: give --config NAME=VALUE, --delete-config NAME or --partitions N")
	}
	adm, ctx, done, err := admin(c)
	if err != nil {
		return err
	}
	defer done()
	td, err := lookupTopic(ctx, c, adm, name)
	if err != nil {
		return err
	}
	if n := c.Int("partitions"); grow && n <= len(td.Partitions) {
		return fail(1, "topic %s already has %s: partitions can only be added", name, plural(len(td.Partitions), "partition"))
	}
	var changed []string
	if len(sets)+len(dels) > 0 {
		var alters []kadm.AlterConfig
		for _, kv := range sets {
			v := kv[1]
			alters = append(alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: kv[0], Value: &v})
			changed = append(changed, "set "+kv[0]+"="+v)
		}
		for _, d := range dels {
			alters = append(alters, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: d})
			changed = append(changed, "reset "+d)
		}
		resps, err := adm.AlterTopicConfigs(ctx, alters, name)
		if err != nil {
			return requestErr(c, "alter configs of "+name, err)
		}
		for _, r := range resps {
			if r.Err != nil {
				return brokerErr(name, r.Err, r.ErrMessage)
			}
		}
	}
	if grow {
		n := c.Int("partitions")
		resps, err := adm.UpdatePartitions(ctx, n, name)
		if err != nil {
			return requestErr(c, "add partitions to "+name, err)
		}
		r, err := resps.On(name, nil)
		if err != nil {
			return fail(1, "add partitions to %s: %v", name, err)
		}
		if r.Err != nil {
			return brokerErr(name, r.Err, r.ErrMessage)
		}
		changed = append(changed, fmt.Sprintf("partitions %d -> %d", len(td.Partitions), n))
	}
	fmt.Fprintf(c.App.Writer, "altered topic %s: %s\n", name, strings.Join(changed, ", "))
	return nil
}

func topicDelete(c *cli.Context, args []string) error {
	adm, ctx, done, err := admin(c)
	if err != nil {
		return err
	}
	defer done()
	resps, err := adm.DeleteTopics(ctx, args...)
	if err != nil {
		return requestErr(c, "delete topics", err)
	}
	var firstErr error
	for _, name := range args {
		r, ok := resps[name]
		switch {
		case !ok:
			err = fail(1, "topic %s: no answer in the DeleteTopics response", name)
		case r.Err != nil:
			err = brokerErr(name, r.Err, r.ErrMessage)
		default:
			fmt.Fprintf(c.App.Writer, "deleted topic %s\n", name)
			continue
		}
		if firstErr == nil {
			firstErr = err
		} else {
			fmt.Fprintln(c.App.ErrWriter, "tlog: "+err.Error())
		}
	}
	return firstErr
}

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func nonNil(s []int32) []int32 {
	if s == nil {
		return []int32{}
	}
	return s
}

func joinInts(s []int32) string {
	if len(s) == 0 {
		return "-"
	}
	parts := make([]string, len(s))
	for i, v := range s {
		parts[i] = strconv.Itoa(int(v))
	}
	return strings.Join(parts, ",")
}

func offsetText(o int64) string {
	if o < 0 {
		return "?"
	}
	return strconv.FormatInt(o, 10)
}
