package agent_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Client quotas: quotas set with AlterClientQuotas are listed by
// DescribeClientQuotas (exact, default and strict matching); a client id
// past its producer_byte_rate gets throttle_time_ms (0 while under it),
// another client id on the same principal is not throttled; a fetch past
// consumer_byte_rate is answered empty with the throttle time, and a
// fetch is never larger than the quota's window. Keys tlog does not
// enforce, and non-positive rates, are INVALID_REQUEST and change
// nothing.
func TestClientQuotas(t *testing.T) {
	t.Parallel()
	a := startAgent(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.ClientID("admin"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "q"); err != nil {
		t.Fatal(err)
	}
	name := func(s string) *string { return &s }
	alter := func(entity kadm.ClientQuotaEntity, ops ...kadm.AlterClientQuotaOp) error {
		res, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{Entity: entity, Ops: ops}})
		if err != nil {
			t.Fatal(err)
		}
		return res[0].Err
	}
	slow := kadm.ClientQuotaEntity{{Type: "client-id", Name: name("slow")}}
	if err := alter(slow, kadm.AlterClientQuotaOp{Key: "producer_byte_rate", Value: 10_000},
		kadm.AlterClientQuotaOp{Key: "consumer_byte_rate", Value: 10_000}); err != nil {
		t.Fatal(err)
	}
	// A default-user quota would take precedence over client-id ones
	// (Kafka's order): this one is for another user's default client.
	if err := alter(kadm.ClientQuotaEntity{{Type: "user", Name: name("carol")}, {Type: "client-id"}}, kadm.AlterClientQuotaOp{Key: "producer_byte_rate", Value: 1e9}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []kadm.AlterClientQuotaOp{{Key: "request_percentage", Value: 50}, {Key: "producer_byte_rate", Value: 0}} {
		if err := alter(slow, bad); !errors.Is(err, kerr.InvalidRequest) {
			t.Fatalf("%+v: got %v, want INVALID_REQUEST", bad, err)
		}
	}
	if err := alter(kadm.ClientQuotaEntity{{Type: "ip", Name: name("1.2.3.4")}}, kadm.AlterClientQuotaOp{Key: "producer_byte_rate", Value: 1}); !errors.Is(err, kerr.InvalidRequest) {
		t.Fatalf("ip entity: got %v, want INVALID_REQUEST", err)
	}
	list := func(strict bool, comps ...kadm.DescribeClientQuotaComponent) string {
		d, err := adm.DescribeClientQuotas(ctx, strict, comps)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, q := range d {
			for _, v := range q.Values {
				out = append(out, q.Entity.String()+" "+v.Key)
			}
		}
		return strings.Join(out, ";")
	}
	if got, want := list(false), "{client-id=slow} producer_byte_rate;{client-id=slow} consumer_byte_rate;{user=carol, client-id=<default>} producer_byte_rate"; got != want {
		t.Fatalf("all quotas:\n got %s\nwant %s", got, want)
	}
	if got, want := list(true, kadm.DescribeClientQuotaComponent{Type: "user", MatchName: name("carol")}), ""; got != want {
		t.Fatalf("user=carol, strict: got %s, want nothing (the entity has a client-id too)", got)
	}
	if got, want := list(false, kadm.DescribeClientQuotaComponent{Type: "user", MatchName: name("carol")},
		kadm.DescribeClientQuotaComponent{Type: "client-id", MatchType: 1}), "{user=carol, client-id=<default>} producer_byte_rate"; got != want {
		t.Fatalf("user=carol, default client-id: got %s, want %s", got, want)
	}
	if got, want := list(false, kadm.DescribeClientQuotaComponent{Type: "client-id", MatchName: name("slow")}), "{client-id=slow} producer_byte_rate;{client-id=slow} consumer_byte_rate"; got != want {
		t.Fatalf("client-id=slow: got %s, want %s", got, want)
	}

	// Produce: 40 KB a request against 10 KB/s (measured over at least
	// 10 s, as Kafka does): the first request is within it (4 KB/s), the
	// third is over it (12 KB/s).
	value := strings.Repeat("x", 40_000)
	produceAs := func(c *rawConn) int32 {
		resp := do[*kmsg.ProduceResponse](c, 9, produceReq(1, "q", 0, mkBatch(plainBatch(), value)))
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("produce: %v", kerr.ErrorForCode(code))
		}
		return resp.ThrottleMillis
	}
	slowConn := dialRawAs(t, a.Addr(), "slow")
	if ms := produceAs(slowConn); ms != 0 {
		t.Fatalf("first request, under the quota: throttled %d ms", ms)
	}
	produceAs(slowConn)
	if ms := produceAs(slowConn); ms < 1000 || ms > 11_000 {
		t.Fatalf("third request, 12 KB/s against 10 KB/s: throttle %d ms, want about 2000", ms)
	}
	fast := dialRawAs(t, a.Addr(), "fast")
	for range 3 {
		if ms := produceAs(fast); ms != 0 {
			t.Fatalf("client id without a quota throttled %d ms", ms)
		}
	}

	// Fetch: capped at the quota's window (10 s * 10 KB/s = 100 KB) whatever
	// the request asks; then over the rate, answered empty with the
	// throttle time.
	fetchAs := func(c *rawConn) (int, int32) {
		req := fetchReq(0, 1, 50<<20)
		addFetch(req, "q", [16]byte{}, 0, 0, 50<<20)
		resp := do[*kmsg.FetchResponse](c, 12, req)
		n := 0
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				n += len(rp.RecordBatches)
			}
		}
		return n, resp.ThrottleMillis
	}
	fetcher := dialRawAs(t, a.Addr(), "slow")
	n, ms := fetchAs(fetcher)
	if n == 0 || n > 100_000+50_000 || ms != 0 {
		t.Fatalf("first fetch: %d bytes, throttle %d ms; want up to the window's 100 KB (plus one batch), unthrottled", n, ms)
	}
	if n2, ms := fetchAs(dialRawAs(t, a.Addr(), "slow")); n2 != 0 || ms <= 0 {
		t.Fatalf("second fetch over the rate: %d bytes, throttle %d ms; want an empty answer with a throttle", n2, ms)
	}
	if n, ms := fetchAs(dialRawAs(t, a.Addr(), "fast")); n < 5*40_000 || ms != 0 {
		t.Fatalf("client id without a quota: %d bytes, throttle %d ms", n, ms)
	}
}

// dialRawAs is dialRaw with the client id clientID.
func dialRawAs(t *testing.T, addr, clientID string) *rawConn {
	c := dialRaw(t, addr)
	c.f = kmsg.NewRequestFormatter(kmsg.FormatterClientID(clientID))
	return c
}
