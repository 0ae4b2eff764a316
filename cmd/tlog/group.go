package main

// tlog group list|describe|reset-offsets|delete, on kadm: ListGroups,
// DescribeGroups with the lag of every committed partition (OffsetFetch
// against ListOffsets), OffsetCommit from outside the group (which tlog,
// as Kafka, allows only while the group has no members), DeleteGroups.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/urfave/cli/v2"
)

func groupCommand() *cli.Command {
	format := func() cli.Flag {
		return &cli.StringFlag{Name: "format", Value: "text", Usage: "text (an aligned table) or json"}
	}
	return &cli.Command{
		Name:  "group",
		Usage: "list, describe, reset and delete consumer groups",
		Subcommands: []*cli.Command{
			{
				Name:        "list",
				Aliases:     []string{"ls"},
				Usage:       "list consumer groups with their state and member count",
				Description: "Prints GROUP STATE MEMBERS PROTOCOL, or a JSON array with --format json.\n\n" + exitCodesHelp,
				Flags:       []cli.Flag{format()},
				Action:      withArgs("", 0, 0, groupList),
			},
			{
				Name:      "describe",
				Usage:     "show a group's members and, per partition, committed offset, end and lag",
				ArgsUsage: "GROUP",
				Description: "Prints the group's state and protocol, its members (id, client, host, partitions)\n" +
					"and one line per committed partition: committed offset, log end (high watermark),\n" +
					"lag and the member that owns it. --format json prints one JSON object.\n\n" + exitCodesHelp,
				Flags:  []cli.Flag{format()},
				Action: withArgs("GROUP", 1, 1, groupDescribe),
			},
			{
				Name:      "reset-offsets",
				Usage:     "set a group's committed offsets (the group must have no members)",
				ArgsUsage: "GROUP",
				Description: "Commits new offsets for --topic (every partition, or --partition N):\n" +
					"--to earliest, latest, OFFSET, or @UNIX_MS (the first record at or after that\n" +
					"time). Refused while the group has members, so nothing overwrites the reset;\n" +
					"stop the consumers first. --dry-run prints the offsets without committing.\n\n" + exitCodesHelp,
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "topic", Aliases: []string{"t"}, Usage: "topic whose offsets to reset (required)"},
					&cli.IntFlag{Name: "partition", Aliases: []string{"p"}, Value: -1, Usage: "only partition `N`"},
					&cli.StringFlag{Name: "to", Value: "earliest", Usage: "earliest, latest, OFFSET or @UNIX_MS"},
					&cli.BoolFlag{Name: "dry-run", Usage: "show the new offsets, commit nothing"},
					format(),
				},
				Action: withArgs("GROUP", 1, 1, groupReset),
			},
			{
				Name:        "delete",
				Usage:       "delete consumer groups and their committed offsets (groups must have no members)",
				ArgsUsage:   "GROUP...",
				Description: "Deletes each named group.\n\n" + exitCodesHelp,
				Action:      withArgs("GROUP...", 1, -1, groupDelete),
			},
		},
	}
}

type groupListEntry struct {
	Group        string `json:"group"`
	Type         string `json:"type"` // classic, or consumer (KIP-848)
	State        string `json:"state"`
	Members      int    `json:"members"`
	ProtocolType string `json:"protocol_type"`
}

func groupList(c *cli.Context, _ []string) error {
	asJSON, err := outputFormat(c)
	if err != nil {
		return err
	}
	cl, err := connect(c)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(c.Context, adminTimeout)
	defer cancel()
	adm := kadm.NewClient(cl)
	listed, err := adm.ListGroups(ctx)
	if err != nil && len(listed) == 0 {
		return requestErr(c, "list groups", err)
	}
	// kadm does not report the group type (ListGroups v5); ask for it.
	types := map[string]string{}
	req := kmsg.NewPtrListGroupsRequest()
	if resp, err := req.RequestWith(ctx, cl); err == nil {
		for _, g := range resp.Groups {
			types[g.Group] = g.GroupType
		}
	}
	entries := []groupListEntry{}
	names := listed.Groups()
	sort.Strings(names)
	described, _ := adm.DescribeGroups(ctx, names...)
	for _, name := range names {
		lg := listed[name]
		e := groupListEntry{Group: name, Type: types[name], State: lg.State, ProtocolType: lg.ProtocolType}
		if e.Type == "" {
			e.Type = "classic"
		}
		if dg, ok := described[name]; ok && dg.Err == nil {
			e.State, e.Members = dg.State, len(dg.Members)
		}
		entries = append(entries, e)
	}
	if asJSON {
		return writeJSON(c.App.Writer, entries)
	}
	tw := newTable(c.App.Writer)
	fmt.Fprintln(tw, "GROUP\tTYPE\tSTATE\tMEMBERS\tPROTOCOL")
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", e.Group, e.Type, e.State, e.Members, e.ProtocolType)
	}
	return tw.Flush()
}

type groupMemberView struct {
	ID         string   `json:"id"`
	InstanceID *string  `json:"instance_id"`
	ClientID   string   `json:"client_id"`
	Host       string   `json:"host"`
	Partitions []string `json:"partitions"` // topic/partition
}

type groupLagView struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Committed int64  `json:"committed"`
	End       int64  `json:"end"`
	Lag       int64  `json:"lag"`
	Member    string `json:"member"`
}

type groupView struct {
	Group       string            `json:"group"`
	State       string            `json:"state"`
	Protocol    string            `json:"protocol"`
	Coordinator int32             `json:"coordinator"`
	Members     []groupMemberView `json:"members"`
	Offsets     []groupLagView    `json:"offsets"`
	TotalLag    int64             `json:"total_lag"`
}

func groupDescribe(c *cli.Context, args []string) error {
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
	lags, err := adm.Lag(ctx, name)
	if err != nil {
		return requestErr(c, "describe group "+name, err)
	}
	l, ok := lags[name]
	if !ok {
		return fail(1, "group %s: no answer", name)
	}
	if err := l.Error(); err != nil {
		return fail(1, "group %s: %v", name, err)
	}
	if l.State == "Dead" {
		return fail(1, "group %s does not exist", name)
	}
	v := groupView{Group: name, State: l.State, Protocol: l.Protocol, Coordinator: l.Coordinator.NodeID, Members: []groupMemberView{}, Offsets: []groupLagView{}}
	for _, m := range l.Members {
		mv := groupMemberView{ID: m.MemberID, InstanceID: m.InstanceID, ClientID: m.ClientID, Host: m.ClientHost, Partitions: []string{}}
		if ca, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range ca.Topics {
				for _, p := range t.Partitions {
					mv.Partitions = append(mv.Partitions, fmt.Sprintf("%s/%d", t.Topic, p))
				}
			}
		}
		sort.Strings(mv.Partitions)
		v.Members = append(v.Members, mv)
	}
	for _, ml := range l.Lag.Sorted() {
		lv := groupLagView{Topic: ml.Topic, Partition: ml.Partition, Committed: ml.Commit.At, End: ml.End.Offset, Lag: ml.Lag}
		if ml.Member != nil {
			lv.Member = ml.Member.MemberID
		}
		if lv.Lag > 0 {
			v.TotalLag += lv.Lag
		}
		v.Offsets = append(v.Offsets, lv)
	}
	if asJSON {
		return writeJSON(c.App.Writer, v)
	}
	w := c.App.Writer
	fmt.Fprintf(w, "Group:       %s\n", v.Group)
	fmt.Fprintf(w, "State:       %s\n", v.State)
	if v.Protocol != "" {
		fmt.Fprintf(w, "Assignor:    %s\n", v.Protocol)
	}
	fmt.Fprintf(w, "Coordinator: agent %d\n", v.Coordinator)
	fmt.Fprintf(w, "Total lag:   %d\n\n", v.TotalLag)
	if len(v.Members) > 0 {
		tw := newTable(w)
		fmt.Fprintln(tw, "MEMBER\tCLIENT\tHOST\tPARTITIONS")
		for _, m := range v.Members {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.ID, m.ClientID, m.Host, strings.Join(m.Partitions, ","))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tCOMMITTED\tEND\tLAG\tMEMBER")
	for _, o := range v.Offsets {
		member := o.Member
		if member == "" {
			member = "-"
		}
		committed := "-" // nothing committed: the lag counts from the log start
		if o.Committed >= 0 {
			committed = strconv.FormatInt(o.Committed, 10)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%s\n", o.Topic, o.Partition, committed, offsetText(o.End), o.Lag, member)
	}
	return tw.Flush()
}

type resetView struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Previous  int64  `json:"previous"`
	Offset    int64  `json:"offset"`
}

func groupReset(c *cli.Context, args []string) error {
	name, topic := args[0], c.String("topic")
	if topic == "" {
		return fail(2, "--topic is required: name the topic whose offsets to reset")
	}
	asJSON, err := outputFormat(c)
	if err != nil {
		return err
	}
	to := c.String("to")
	var spec fromSpec
	switch {
	case to == "earliest":
		spec.kind = fromBeginning
	case to == "latest":
		spec.kind = fromEnd
	default:
		if spec, err = parseFrom(to); err != nil || spec.kind == fromLast {
			return fail(2, "bad --to %q: use earliest, latest, an offset (42) or @UNIX_MS (@1700000000000)", to)
		}
	}
	adm, ctx, done, err := admin(c)
	if err != nil {
		return err
	}
	defer done()
	starts, _, err := consumeRange(ctx, c, adm, topic, c.Int("partition"), spec)
	if err != nil {
		return err
	}
	prev, _ := adm.FetchOffsetsForTopics(ctx, name, topic)
	var views []resetView
	offsets := kadm.Offsets{}
	for p, at := range starts {
		rv := resetView{Topic: topic, Partition: p, Previous: -1, Offset: at}
		if o, ok := prev.Lookup(topic, p); ok && o.Err == nil {
			rv.Previous = o.At
		}
		views = append(views, rv)
		offsets.AddOffset(topic, p, at, -1)
	}
	sort.Slice(views, func(i, j int) bool { return views[i].Partition < views[j].Partition })
	if !c.Bool("dry-run") {
		resps, err := adm.CommitOffsets(ctx, name, offsets)
		if err != nil {
			return requestErr(c, "reset offsets of "+name, err)
		}
		if err := resps.Error(); err != nil {
			if errors.Is(err, kerr.UnknownMemberID) || errors.Is(err, kerr.IllegalGeneration) || errors.Is(err, kerr.RebalanceInProgress) {
				return fail(1, "group %s has active members: stop its consumers first (tlog group describe %s)", name, name)
			}
			return fail(1, "reset offsets of %s: %v", name, err)
		}
	}
	if asJSON {
		return writeJSON(c.App.Writer, views)
	}
	tw := newTable(c.App.Writer)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tPREVIOUS\tNEW")
	for _, v := range views {
		prev := "-"
		if v.Previous >= 0 {
			prev = strconv.FormatInt(v.Previous, 10)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\n", v.Topic, v.Partition, prev, v.Offset)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if c.Bool("dry-run") {
		fmt.Fprintln(c.App.Writer, "(dry run: nothing committed)")
	}
	return nil
}

func groupDelete(c *cli.Context, args []string) error {
	adm, ctx, done, err := admin(c)
	if err != nil {
		return err
	}
	defer done()
	resps, err := adm.DeleteGroups(ctx, args...)
	if err != nil && len(resps) == 0 {
		return requestErr(c, "delete groups", err)
	}
	var failed []string
	for _, name := range args {
		r, ok := resps[name]
		switch {
		case !ok:
			failed = append(failed, fmt.Sprintf("group %s: no answer", name))
		case errors.Is(r.Err, kerr.GroupIDNotFound):
			failed = append(failed, fmt.Sprintf("group %s does not exist", name))
		case errors.Is(r.Err, kerr.NonEmptyGroup):
			failed = append(failed, fmt.Sprintf("group %s has active members: stop its consumers first", name))
		case r.Err != nil:
			failed = append(failed, fmt.Sprintf("group %s: %v", name, r.Err))
		default:
			fmt.Fprintf(c.App.Writer, "deleted group %s\n", name)
		}
	}
	if len(failed) > 0 {
		return fail(1, "%s", strings.Join(failed, "; "))
	}
	return nil
}
