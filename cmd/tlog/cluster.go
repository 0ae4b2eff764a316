package main

// tlog cluster status|drain|undrain. Status comes from standard Kafka
// requests: Metadata (agents, controller, leaders, replicas, ISR),
// ListOffsets (log start, high watermark), DescribeLogDirs (each agent's
// "wal" and, from leaders, "bucket" dirs: WAL bytes, committed segment
// bytes, and the records not flushed yet, hence flushedEnd) and
// DescribeConfigs on brokers (tlog.agent.draining). Drain sets that config
// with IncrementalAlterConfigs; the controller then moves every replica and
// leader off the agent, and drain waits until it holds none.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/urfave/cli/v2"
)

const drainConfig = "tlog.agent.draining"

func clusterCommand() *cli.Command {
	return &cli.Command{
		Name:  "cluster",
		Usage: "see the cluster's agents and partitions; drain an agent",
		Subcommands: []*cli.Command{
			{
				Name:  "status",
				Usage: "agents, the controller, and every partition's leader, ISR, offsets and bucket usage",
				Description: "Prints the agents (address, zone, state, what they lead and hold) and, per\n" +
					"partition, leader, epoch, replicas, in-sync replicas, log start, flushed end\n" +
					"(everything below it is in the bucket), high watermark and the bytes it has in the\n" +
					"bucket. --format json prints one JSON object. --wait-agents N first waits until N\n" +
					"agents are live (agents just started, in a script).\n\n" + exitCodesHelp,
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "format", Value: "text", Usage: "text (aligned tables) or json"},
					&cli.IntFlag{Name: "wait-agents", Usage: "first wait until `N` agents are live (0: do not wait)"},
					&cli.DurationFlag{Name: "timeout", Value: time.Minute, Usage: "with --wait-agents: give up after this long"},
				},
				Action: withArgs("", 0, 0, clusterStatus),
			},
			{
				Name:      "drain",
				Usage:     "move every replica and leader off an agent before it is stopped",
				ArgsUsage: "ID",
				Description: "Marks agent ID as draining: the controller moves its replicas to other agents\n" +
					"(copying only the unflushed tail) and its leaders to in-sync replicas, and gives it\n" +
					"nothing new. Waits until the agent holds nothing (--no-wait returns at once), with a\n" +
					"live count on a terminal. Undo with tlog cluster undrain ID.\n\n" + exitCodesHelp,
				Flags: []cli.Flag{
					&cli.BoolFlag{Name: "no-wait", Usage: "return once the agent is marked, without waiting"},
					&cli.DurationFlag{Name: "timeout", Value: 10 * time.Minute, Usage: "give up waiting after this long"},
				},
				Action: withArgs("ID", 1, 1, func(c *cli.Context, args []string) error { return clusterDrain(c, args[0], true) }),
			},
			{
				Name:        "undrain",
				Usage:       "let a drained agent take replicas and leaders again",
				ArgsUsage:   "ID",
				Description: "Clears the draining mark; balancing brings load back to the agent.\n\n" + exitCodesHelp,
				Action:      withArgs("ID", 1, 1, func(c *cli.Context, args []string) error { return clusterDrain(c, args[0], false) }),
			},
		},
	}
}

type clusterAgent struct {
	ID       int32  `json:"id"`
	Host     string `json:"host,omitempty"`
	Port     int32  `json:"port,omitempty"`
	Zone     string `json:"zone,omitempty"`
	State    string `json:"state"` // live, draining, offline
	Leads    int    `json:"leads"`
	Replicas int    `json:"replicas"`
	WALBytes int64  `json:"wal_bytes"`
}

type clusterPartition struct {
	Topic         string  `json:"topic"`
	Partition     int32   `json:"partition"`
	Leader        int32   `json:"leader"`
	LeaderEpoch   int32   `json:"leader_epoch"`
	Replicas      []int32 `json:"replicas"`
	ISR           []int32 `json:"isr"`
	LogStart      int64   `json:"log_start"`
	FlushedEnd    int64   `json:"flushed_end"`
	HighWatermark int64   `json:"high_watermark"`
	BucketBytes   int64   `json:"bucket_bytes"`
	Error         string  `json:"error,omitempty"`
}

type clusterView struct {
	ClusterID   string             `json:"cluster_id"`
	Controller  int32              `json:"controller"`
	Agents      []clusterAgent     `json:"agents"`
	Partitions  []clusterPartition `json:"partitions"`
	BucketBytes int64              `json:"bucket_bytes"`
	WALBytes    int64              `json:"wal_bytes"`
}

func gatherCluster(ctx context.Context, c *cli.Context, adm *kadm.Client) (clusterView, error) {
	md, err := adm.Metadata(ctx)
	if err != nil {
		return clusterView{}, requestErr(c, "metadata", err)
	}
	v := clusterView{ClusterID: md.Cluster, Controller: md.Controller, Agents: []clusterAgent{}, Partitions: []clusterPartition{}}
	agents := map[int32]*clusterAgent{}
	for _, b := range md.Brokers {
		a := &clusterAgent{ID: b.NodeID, Host: b.Host, Port: b.Port, State: "live"}
		if b.Rack != nil {
			a.Zone = *b.Rack
		}
		agents[b.NodeID] = a
	}
	agent := func(id int32) *clusterAgent {
		if a := agents[id]; a != nil {
			return a
		}
		a := &clusterAgent{ID: id, State: "offline"} // a replica's agent absent from the brokers: fenced
		agents[id] = a
		return a
	}
	var ids []int32
	for id := range agents {
		ids = append(ids, id)
	}
	if len(ids) > 0 {
		if rcs, err := adm.DescribeBrokerConfigs(ctx, ids...); err == nil {
			for _, rc := range rcs {
				id, _ := strconv.Atoi(rc.Name)
				for _, cfg := range rc.Configs {
					if cfg.Key == drainConfig && cfg.Value != nil && *cfg.Value == "true" {
						agent(int32(id)).State = "draining"
					}
				}
			}
		}
	}
	topics := md.Topics.Names()
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return v, requestErr(c, "log start offsets", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return v, requestErr(c, "high watermarks", err)
	}
	dirs, err := adm.DescribeAllLogDirs(ctx, nil)
	if err != nil && len(dirs) == 0 {
		return v, requestErr(c, "log dirs", err)
	}
	for _, td := range md.Topics.Sorted() {
		for _, p := range td.Partitions.Sorted() {
			cp := clusterPartition{Topic: td.Topic, Partition: p.Partition, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch,
				Replicas: nonNil(p.Replicas), ISR: nonNil(p.ISR), LogStart: -1, FlushedEnd: -1, HighWatermark: -1}
			if p.Err != nil {
				cp.Error = p.Err.Error()
			}
			if o, ok := starts.Lookup(td.Topic, p.Partition); ok && o.Err == nil {
				cp.LogStart = o.Offset
			}
			if o, ok := ends.Lookup(td.Topic, p.Partition); ok && o.Err == nil {
				cp.HighWatermark = o.Offset
			}
			if bd, ok := dirs[p.Leader].Lookup("bucket", td.Topic, p.Partition); ok && cp.HighWatermark >= 0 {
				cp.BucketBytes = bd.Size
				cp.FlushedEnd = cp.HighWatermark - bd.OffsetLag
				v.BucketBytes += bd.Size
			}
			if p.Leader >= 0 {
				agent(p.Leader).Leads++
			}
			for _, r := range p.Replicas {
				a := agent(r)
				a.Replicas++
				if wd, ok := dirs[r].Lookup("wal", td.Topic, p.Partition); ok {
					a.WALBytes += wd.Size
					v.WALBytes += wd.Size
				}
			}
			v.Partitions = append(v.Partitions, cp)
		}
	}
	for _, a := range agents {
		v.Agents = append(v.Agents, *a)
	}
	sort.Slice(v.Agents, func(i, j int) bool { return v.Agents[i].ID < v.Agents[j].ID })
	return v, nil
}

func clusterStatus(c *cli.Context, _ []string) error {
	asJSON, err := outputFormat(c)
	if err != nil {
		return err
	}
	if n := c.Int("wait-agents"); n > 0 {
		if err := waitForAgents(c, n, c.Duration("timeout")); err != nil {
			return err
		}
	}
	adm, ctx, done, err := admin(c)
	if err != nil {
		return err
	}
	defer done()
	v, err := gatherCluster(ctx, c, adm)
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(c.App.Writer, v)
	}
	w := c.App.Writer
	fmt.Fprintf(w, "Cluster:    %s\n", v.ClusterID)
	fmt.Fprintf(w, "Controller: agent %d\n", v.Controller)
	fmt.Fprintf(w, "Bucket:     %s in committed segments; %s unflushed in write-ahead logs\n\n", humanBytes(v.BucketBytes), humanBytes(v.WALBytes))
	tw := newTable(w)
	fmt.Fprintln(tw, "AGENT\tADDRESS\tZONE\tSTATE\tLEADS\tREPLICAS\tWAL")
	for _, a := range v.Agents {
		addr := "-"
		if a.Host != "" {
			addr = fmt.Sprintf("%s:%d", a.Host, a.Port)
		}
		zone := a.Zone
		if zone == "" {
			zone = "-"
		}
		ctl := ""
		if a.ID == v.Controller {
			ctl = " (controller)"
		}
		fmt.Fprintf(tw, "%d%s\t%s\t%s\t%s\t%d\t%d\t%s\n", a.ID, ctl, addr, zone, a.State, a.Leads, a.Replicas, humanBytes(a.WALBytes))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = newTable(w)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tLEADER\tEPOCH\tREPLICAS\tISR\tLOG-START\tFLUSHED-END\tHIGH-WATERMARK\tBUCKET")
	for _, p := range v.Partitions {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s", p.Topic, p.Partition, p.Leader, p.LeaderEpoch,
			joinInts(p.Replicas), joinInts(p.ISR), offsetText(p.LogStart), offsetText(p.FlushedEnd), offsetText(p.HighWatermark), humanBytes(p.BucketBytes))
		if p.Error != "" {
			fmt.Fprintf(tw, "\t%s", p.Error)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func clusterDrain(c *cli.Context, arg string, drain bool) error {
	id64, err := strconv.ParseInt(arg, 10, 32)
	if err != nil || id64 < 0 {
		return fail(2, "bad agent id %q: give the number tlog cluster status lists", arg)
	}
	id := int32(id64)
	cl, err := connect(c)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(c.Context, adminTimeout)
	defer cancel()
	md, err := adm.BrokerMetadata(ctx)
	if err != nil {
		return requestErr(c, "metadata", err)
	}
	// To the controller, not to agent ID: an agent that is down can be
	// drained too (its replicas move to live agents).
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	rr := kmsg.NewIncrementalAlterConfigsRequestResource()
	rr.ResourceType = kmsg.ConfigResourceTypeBroker
	rr.ResourceName = strconv.Itoa(int(id))
	cfg := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	cfg.Name, cfg.Op, cfg.Value = drainConfig, kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr(strconv.FormatBool(drain))
	rr.Configs = append(rr.Configs, cfg)
	req.Resources = append(req.Resources, rr)
	to := cl.Broker(int(md.Controller))
	if md.Controller < 0 {
		to = cl.SeedBrokers()[0]
	}
	kresp, err := to.Request(ctx, req)
	if err != nil {
		return requestErr(c, fmt.Sprintf("mark agent %d", id), err)
	}
	for _, r := range kresp.(*kmsg.IncrementalAlterConfigsResponse).Resources {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			msg := err.Error()
			if r.ErrorMessage != nil {
				msg = *r.ErrorMessage
			}
			return fail(1, "agent %d: %s", id, msg)
		}
	}
	if !drain {
		fmt.Fprintf(c.App.Writer, "agent %d is no longer draining; balancing brings replicas back to it\n", id)
		return nil
	}
	if c.Bool("no-wait") {
		fmt.Fprintf(c.App.Writer, "agent %d is draining\n", id)
		return nil
	}
	wctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	defer cancel()
	tty := isTTY(os.Stderr)
	start := time.Now()
	for {
		v, err := gatherCluster(wctx, c, adm)
		if err == nil {
			leads, holds := 0, 0
			for _, p := range v.Partitions {
				if p.Leader == id {
					leads++
				}
				if slices.Contains(p.Replicas, id) {
					holds++
				}
			}
			if leads == 0 && holds == 0 {
				if tty {
					fmt.Fprint(os.Stderr, "\r\033[K")
				}
				fmt.Fprintf(c.App.Writer, "agent %d is drained (%v): it holds no replicas and leads nothing; it can be stopped\n", id, time.Since(start).Round(time.Millisecond))
				return nil
			}
			if tty {
				fmt.Fprintf(os.Stderr, "\r\033[Kdraining agent %d: %d replicas left, leads %d (%v)", id, holds, leads, time.Since(start).Round(time.Second))
			}
		}
		select {
		case <-wctx.Done():
			if tty {
				fmt.Fprintln(os.Stderr)
			}
			if c.Context.Err() != nil {
				return fail(1, "interrupted; agent %d stays marked draining (tlog cluster undrain %d to undo)", id, id)
			}
			return fail(1, "agent %d still holds replicas after %v: are there enough other live agents for every replication factor? (tlog cluster status)", id, c.Duration("timeout"))
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// waitForAgents polls until n agents are live, retrying while none answers
// yet, for up to timeout.
func waitForAgents(c *cli.Context, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	live := 0
	for {
		adm, ctx, done, err := admin(c)
		var ee *exitError
		if errors.As(err, &ee) && ee.code == 2 {
			return err // bad usage (an empty --brokers) does not get better
		}
		if err == nil {
			v, err := gatherCluster(ctx, c, adm)
			done()
			if err == nil {
				live = 0
				for _, a := range v.Agents {
					if a.State == "live" {
						live++
					}
				}
				if live >= n {
					return nil
				}
			}
		}
		if c.Context.Err() != nil {
			return fail(1, "interrupted with %d of %d agents live", live, n)
		}
		if time.Now().After(deadline) {
			return fail(1, "%d of %d agents live after %v (tlog cluster status shows which)", live, n, timeout)
		}
		select {
		case <-c.Context.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}
