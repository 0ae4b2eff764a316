package agent_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/agent"
	"github.com/tlog-io/tlog/tests/tlogtest"
	"github.com/tlog-io/tlog/tier"
)

func describeBroker(c *rawConn, resource string, names ...string) kmsg.DescribeConfigsResponseResource {
	req := kmsg.NewPtrDescribeConfigsRequest()
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType = kmsg.ConfigResourceTypeBroker
	rr.ResourceName = resource
	rr.ConfigNames = names
	req.Resources = append(req.Resources, rr)
	req.IncludeSynonyms = true
	req.IncludeDocumentation = true
	return do[*kmsg.DescribeConfigsResponse](c, 4, req).Resources[0]
}

func incrementalBroker(c *rawConn, resource string, ops ...kmsg.IncrementalAlterConfigsRequestResourceConfig) (int16, string) {
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	rr := kmsg.NewIncrementalAlterConfigsRequestResource()
	rr.ResourceType = kmsg.ConfigResourceTypeBroker
	rr.ResourceName = resource
	rr.Configs = ops
	req.Resources = append(req.Resources, rr)
	res := do[*kmsg.IncrementalAlterConfigsResponse](c, 1, req).Resources[0]
	return res.ErrorCode, strOr(res.ErrorMessage, "")
}

func setOp(name, value string) kmsg.IncrementalAlterConfigsRequestResourceConfig {
	o := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	o.Name, o.Value = name, kmsg.StringPtr(value)
	return o
}

func deleteOp(name string) kmsg.IncrementalAlterConfigsRequestResourceConfig {
	o := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	o.Name, o.Op = name, kmsg.IncrementalAlterConfigOpDelete
	return o
}

// configOf finds one config of a DescribeConfigs resource and renders
// it with its synonyms: "value source [syn=value source ...]".
func configOf(t *testing.T, res kmsg.DescribeConfigsResponseResource, name string) string {
	t.Helper()
	if res.ErrorCode != 0 {
		t.Fatalf("describe: %v %s", kerr.ErrorForCode(res.ErrorCode), strOr(res.ErrorMessage, ""))
	}
	for _, c := range res.Configs {
		if c.Name == name {
			s := fmt.Sprintf("%s %s ro=%v", strOr(c.Value, "null"), c.Source, c.ReadOnly)
			for _, syn := range c.ConfigSynonyms {
				s += fmt.Sprintf(" [%s=%s %s]", syn.Name, strOr(syn.Value, "null"), syn.Source)
			}
			return s
		}
	}
	return "absent"
}

// Broker configs: DescribeConfigs lists the Kafka broker configs the
// agent honours with their sources and synonyms; the dynamic ones change
// per agent or cluster-wide through IncrementalAlterConfigs and the
// legacy AlterConfigs, an agent's own value over the cluster default over
// its flag; read-only, unknown and invalid ones are refused with Kafka's
// codes, and nothing is changed by a refused request.
func TestDynamicBrokerConfigs(t *testing.T) {
	t.Parallel()
	a := tlogtest.StartAgent(t, t.TempDir(), tier.NewMemBucket(), func(c *agent.Config) {
		c.CompactionInterval = 15 * time.Second
		c.CompactionBufferBytes = 64 << 20
	})
	c := dialRaw(t, a.Addr())

	res := describeBroker(c, "0")
	for name, want := range map[string]string{
		"log.cleaner.backoff.ms":         "15000 STATIC_BROKER_CONFIG ro=false [log.cleaner.backoff.ms=15000 STATIC_BROKER_CONFIG]",
		"log.cleaner.dedupe.buffer.size": "67108864 STATIC_BROKER_CONFIG ro=false [log.cleaner.dedupe.buffer.size=67108864 STATIC_BROKER_CONFIG]",
		"broker.id":                      "0 STATIC_BROKER_CONFIG ro=true [broker.id=0 STATIC_BROKER_CONFIG]",
		"log.retention.hours":            "168 DEFAULT_CONFIG ro=true [log.retention.hours=168 DEFAULT_CONFIG]",
		"log.cleanup.policy":             "delete DEFAULT_CONFIG ro=true [log.cleanup.policy=delete DEFAULT_CONFIG]",
		"tlog.agent.draining":            "false DYNAMIC_BROKER_CONFIG ro=false [tlog.agent.draining=false DYNAMIC_BROKER_CONFIG]",
	} {
		if got := configOf(t, res, name); got != want {
			t.Errorf("%s: %s\n want %s", name, got, want)
		}
	}
	docs := 0
	for _, cfg := range res.Configs {
		if strOr(cfg.Documentation, "") != "" && cfg.ConfigType != 0 {
			docs++
		}
	}
	if docs != len(res.Configs) || docs < 30 {
		t.Errorf("%d of %d broker configs have a type and documentation", docs, len(res.Configs))
	}

	// Cluster-wide, then the agent's own: the agent's wins, the cluster
	// default stays behind it as a synonym.
	if code, msg := incrementalBroker(c, "", setOp("log.cleaner.backoff.ms", "2000")); code != 0 {
		t.Fatalf("cluster-wide set: %v %s", kerr.ErrorForCode(code), msg)
	}
	if code, msg := incrementalBroker(c, "0", setOp("log.cleaner.backoff.ms", "500"), setOp("log.cleaner.dedupe.buffer.size", "2097152")); code != 0 {
		t.Fatalf("per-agent set: %v %s", kerr.ErrorForCode(code), msg)
	}
	res = describeBroker(c, "0", "log.cleaner.backoff.ms", "log.cleaner.dedupe.buffer.size")
	if len(res.Configs) != 2 {
		t.Fatalf("asked for 2 configs, got %d", len(res.Configs))
	}
	if got, want := configOf(t, res, "log.cleaner.backoff.ms"), "500 DYNAMIC_BROKER_CONFIG ro=false [log.cleaner.backoff.ms=500 DYNAMIC_BROKER_CONFIG] [log.cleaner.backoff.ms=2000 DYNAMIC_DEFAULT_BROKER_CONFIG] [log.cleaner.backoff.ms=15000 STATIC_BROKER_CONFIG]"; got != want {
		t.Errorf("backoff: %s\n want %s", got, want)
	}
	if got := configOf(t, describeBroker(c, ""), "log.cleaner.backoff.ms"); got != "2000 DYNAMIC_DEFAULT_BROKER_CONFIG ro=false [log.cleaner.backoff.ms=2000 DYNAMIC_DEFAULT_BROKER_CONFIG]" {
		t.Errorf("the cluster-wide resource: %s", got)
	}
	if n := len(describeBroker(c, "").Configs); n != 1 {
		t.Errorf("the cluster-wide resource lists %d configs, want the 1 set", n)
	}

	// DELETE returns the agent to the cluster default.
	if code, msg := incrementalBroker(c, "0", deleteOp("log.cleaner.backoff.ms")); code != 0 {
		t.Fatalf("delete: %v %s", kerr.ErrorForCode(code), msg)
	}
	if got := configOf(t, describeBroker(c, "0"), "log.cleaner.backoff.ms"); got != "2000 DYNAMIC_DEFAULT_BROKER_CONFIG ro=false [log.cleaner.backoff.ms=2000 DYNAMIC_DEFAULT_BROKER_CONFIG] [log.cleaner.backoff.ms=15000 STATIC_BROKER_CONFIG]" {
		t.Errorf("after delete: %s", got)
	}

	// Refused, each with Kafka's code, and nothing changes.
	for _, tc := range []struct {
		resource string
		op       kmsg.IncrementalAlterConfigsRequestResourceConfig
		code     int16
	}{
		{"0", setOp("message.max.bytes", "2000000"), kerr.InvalidRequest.Code},
		{"0", setOp("no.such.config", "1"), kerr.InvalidConfig.Code},
		{"0", setOp("log.cleaner.backoff.ms", "-5"), kerr.InvalidConfig.Code},
		{"0", setOp("log.cleaner.dedupe.buffer.size", "1024"), kerr.InvalidConfig.Code},
		{"", setOp("tlog.agent.draining", "true"), kerr.InvalidRequest.Code},
		{"7", setOp("log.cleaner.backoff.ms", "100"), kerr.InvalidRequest.Code},
		{"x", setOp("log.cleaner.backoff.ms", "100"), kerr.InvalidRequest.Code},
	} {
		valid := setOp("log.cleaner.dedupe.buffer.size", "4194304") // refused with the rest
		if tc.op.Name == valid.Name {
			valid = setOp("log.cleaner.backoff.ms", "123")
		}
		if code, msg := incrementalBroker(c, tc.resource, valid, tc.op); code != tc.code {
			t.Errorf("%q %s=%s: %v (%s), want %v", tc.resource, tc.op.Name, *tc.op.Value, kerr.ErrorForCode(code), msg, kerr.ErrorForCode(tc.code))
		}
	}
	if got := configOf(t, describeBroker(c, "0"), "log.cleaner.dedupe.buffer.size"); got != "2097152 DYNAMIC_BROKER_CONFIG ro=false [log.cleaner.dedupe.buffer.size=2097152 DYNAMIC_BROKER_CONFIG] [log.cleaner.dedupe.buffer.size=67108864 STATIC_BROKER_CONFIG]" {
		t.Errorf("a refused request changed the buffer: %s", got)
	}

	// The legacy AlterConfigs replaces the resource's whole set.
	legacy := kmsg.NewPtrAlterConfigsRequest()
	lr := kmsg.NewAlterConfigsRequestResource()
	lr.ResourceType, lr.ResourceName = kmsg.ConfigResourceTypeBroker, "0"
	lc := kmsg.NewAlterConfigsRequestResourceConfig()
	lc.Name, lc.Value = "log.cleaner.backoff.ms", kmsg.StringPtr("750")
	lr.Configs = append(lr.Configs, lc)
	legacy.Resources = append(legacy.Resources, lr)
	if r := do[*kmsg.AlterConfigsResponse](c, 2, legacy).Resources[0]; r.ErrorCode != 0 {
		t.Fatalf("legacy alter: %v %s", kerr.ErrorForCode(r.ErrorCode), strOr(r.ErrorMessage, ""))
	}
	res = describeBroker(c, "0")
	if got := configOf(t, res, "log.cleaner.backoff.ms"); got != "750 DYNAMIC_BROKER_CONFIG ro=false [log.cleaner.backoff.ms=750 DYNAMIC_BROKER_CONFIG] [log.cleaner.backoff.ms=2000 DYNAMIC_DEFAULT_BROKER_CONFIG] [log.cleaner.backoff.ms=15000 STATIC_BROKER_CONFIG]" {
		t.Errorf("after the legacy alter: %s", got)
	}
	if got := configOf(t, res, "log.cleaner.dedupe.buffer.size"); got != "67108864 STATIC_BROKER_CONFIG ro=false [log.cleaner.dedupe.buffer.size=67108864 STATIC_BROKER_CONFIG]" {
		t.Errorf("the legacy alter left the buffer: %s", got)
	}

	// Another agent's configs are described on that agent.
	if r := describeBroker(c, "3"); r.ErrorCode != kerr.InvalidRequest.Code {
		t.Errorf("describing agent 3 on agent 0: %v", kerr.ErrorForCode(r.ErrorCode))
	}
}

// log.cleaner.backoff.ms set at run time changes how often the key
// compactor runs: an agent started with an hour between passes compacts
// a topic within seconds once it is set to 100 ms.
func TestCleanerBackoffIsDynamic(t *testing.T) {
	t.Parallel()
	a := tlogtest.StartAgent(t, t.TempDir(), tier.NewMemBucket(), func(c *agent.Config) {
		fastFlush(c)
		c.CompactionInterval = time.Hour
		c.CompactionBufferBytes = 1 << 20
	})
	c := dialRaw(t, a.Addr())
	createTopic(t, c, "dyn-changelog", 1, map[string]string{"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.01"})
	cl := tlogtest.NewClient(t, a.Addr(), kgo.DefaultProduceTopic("dyn-changelog"), kgo.ProducerLinger(0))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const keys, writes = 10, 400
	for i := 0; i < writes; i += 100 {
		var rs []*kgo.Record
		for j := i; j < i+100; j++ {
			rs = append(rs, &kgo.Record{Key: fmt.Appendf(nil, "k%d", j%keys), Value: fmt.Appendf(nil, "v%d", j)})
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	waitFlushed(t, a, "dyn-changelog", 1)
	time.Sleep(1500 * time.Millisecond) // a pass, were one due, would have run
	if n := len(readUntilIdle(t, a.Addr(), "dyn-changelog")); n != writes {
		t.Fatalf("%d records before the backoff changed, want all %d (no pass due for an hour)", n, writes)
	}
	if code, msg := incrementalBroker(c, "0", setOp("log.cleaner.backoff.ms", "100")); code != 0 {
		t.Fatalf("set backoff: %v %s", kerr.ErrorForCode(code), msg)
	}
	tlogtest.CheckFor(t, 20*time.Second, 200*time.Millisecond, func() error {
		if n := len(readUntilIdle(t, a.Addr(), "dyn-changelog")); n > keys {
			return fmt.Errorf("%d records, want at most %d", n, keys)
		}
		return nil
	})
}

func strOr(p *string, or string) string {
	if p == nil {
		return or
	}
	return *p
}

// The BROKER_LOGGER resource: the agent's one logger, root, at its
// --log-level; SET changes the level the logger logs at, and the rest is
// refused as Kafka refuses it.
func TestBrokerLogger(t *testing.T) {
	t.Parallel()
	lv := new(slog.LevelVar)
	a := tlogtest.StartAgent(t, t.TempDir(), tier.NewMemBucket(), func(c *agent.Config) {
		c.LogLevel = lv
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: lv}))
	})
	c := dialRaw(t, a.Addr())
	describe := func(resource string) kmsg.DescribeConfigsResponseResource {
		req := kmsg.NewPtrDescribeConfigsRequest()
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeBrokerLogger, resource
		req.Resources = append(req.Resources, rr)
		return do[*kmsg.DescribeConfigsResponse](c, 4, req).Resources[0]
	}
	alter := func(resource string, op kmsg.IncrementalAlterConfigsRequestResourceConfig) int16 {
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		rr := kmsg.NewIncrementalAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeBrokerLogger, resource
		rr.Configs = append(rr.Configs, op)
		req.Resources = append(req.Resources, rr)
		res := do[*kmsg.IncrementalAlterConfigsResponse](c, 1, req).Resources[0]
		if res.ErrorCode != 0 {
			t.Logf("%s %s: %s", resource, op.Name, strOr(res.ErrorMessage, ""))
		}
		return res.ErrorCode
	}
	if got := configOf(t, describe("0"), "root"); got != "INFO DYNAMIC_BROKER_LOGGER_CONFIG ro=false" {
		t.Fatalf("root: %s", got)
	}
	if code := alter("0", setOp("root", "debug")); code != 0 {
		t.Fatalf("set DEBUG: %v", kerr.ErrorForCode(code))
	}
	if lv.Level() != slog.LevelDebug || configOf(t, describe("0"), "root") != "DEBUG DYNAMIC_BROKER_LOGGER_CONFIG ro=false" {
		t.Fatalf("after SET DEBUG: level %v, described %s", lv.Level(), configOf(t, describe("0"), "root"))
	}
	for _, tc := range []struct {
		resource string
		op       kmsg.IncrementalAlterConfigsRequestResourceConfig
		code     int16
	}{
		{"0", deleteOp("root"), kerr.InvalidRequest.Code},
		{"0", setOp("kafka.server.ReplicaManager", "INFO"), kerr.InvalidConfig.Code},
		{"0", setOp("root", "LOUD"), kerr.InvalidConfig.Code},
		{"1", setOp("root", "INFO"), kerr.InvalidRequest.Code},
	} {
		if code := alter(tc.resource, tc.op); code != tc.code {
			t.Errorf("%q %s: %v, want %v", tc.resource, tc.op.Name, kerr.ErrorForCode(code), kerr.ErrorForCode(tc.code))
		}
	}
	if lv.Level() != slog.LevelDebug {
		t.Fatalf("a refused alter changed the level to %v", lv.Level())
	}
	if code := alter("0", setOp("root", "OFF")); code != 0 || configOf(t, describe("0"), "root") != "OFF DYNAMIC_BROKER_LOGGER_CONFIG ro=false" {
		t.Fatalf("set OFF: %v, described %s", kerr.ErrorForCode(code), configOf(t, describe("0"), "root"))
	}

	// An agent given a logger without its level cannot change it.
	b := startAgent(t)
	cb := dialRaw(t, b.Addr())
	req := kmsg.NewPtrDescribeConfigsRequest()
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeBrokerLogger, "0"
	req.Resources = append(req.Resources, rr)
	if code := do[*kmsg.DescribeConfigsResponse](cb, 4, req).Resources[0].ErrorCode; code != kerr.InvalidRequest.Code {
		t.Fatalf("fixed level: %v", kerr.ErrorForCode(code))
	}
}
