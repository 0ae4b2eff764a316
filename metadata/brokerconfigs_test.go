package metadata

import (
	"encoding/json"
	"errors"
	"testing"
)

// An agent's own dynamic value wins over the cluster default; a resource
// is replaced whole, an empty set removes it; the state round-trips
// through JSON (snapshots); bad resource names are refused.
func TestBrokerConfigs(t *testing.T) {
	st, err := NewState().Next(
		SetBrokerConfigs{Resource: ClusterDefault, Configs: map[string]string{"log.cleaner.backoff.ms": "1000"}},
		SetBrokerConfigs{Resource: "2", Configs: map[string]string{"log.cleaner.backoff.ms": "5", "log.cleaner.dedupe.buffer.size": "1048576"}},
	)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id        int32
		name      string
		want      string
		own, isOK bool
	}{
		{1, "log.cleaner.backoff.ms", "1000", false, true},
		{2, "log.cleaner.backoff.ms", "5", true, true},
		{2, "log.cleaner.dedupe.buffer.size", "1048576", true, true},
		{1, "log.cleaner.dedupe.buffer.size", "", false, false},
	} {
		v, own, ok := st.BrokerConfig(c.id, c.name)
		if v != c.want || own != c.own || ok != c.isOK {
			t.Errorf("agent %d %s = %q own=%v ok=%v, want %q %v %v", c.id, c.name, v, own, ok, c.want, c.own, c.isOK)
		}
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var back State
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if v, _, _ := back.BrokerConfig(2, "log.cleaner.backoff.ms"); v != "5" {
		t.Fatalf("after a JSON round trip: %q", v)
	}

	next, err := st.Next(SetBrokerConfigs{Resource: "2", Configs: map[string]string{"log.cleaner.dedupe.buffer.size": "2097152"}})
	if err != nil {
		t.Fatal(err)
	}
	if v, own, _ := next.BrokerConfig(2, "log.cleaner.backoff.ms"); v != "1000" || own {
		t.Fatalf("replaced set: agent 2's backoff = %q own=%v, want the cluster default 1000", v, own)
	}
	if v, _, _ := st.BrokerConfig(2, "log.cleaner.backoff.ms"); v != "5" {
		t.Fatal("the earlier state changed")
	}
	next, err = next.Next(SetBrokerConfigs{Resource: ClusterDefault}, SetBrokerConfigs{Resource: "2"})
	if err != nil {
		t.Fatal(err)
	}
	if next.BrokerConfigs != nil {
		t.Fatalf("every resource removed, still %v", next.BrokerConfigs)
	}
	for _, bad := range []string{"x", "-1", "1.5"} {
		if _, err := st.Next(SetBrokerConfigs{Resource: bad, Configs: map[string]string{"a": "b"}}); !errors.Is(err, ErrInvalidCommand) {
			t.Errorf("resource %q: %v, want ErrInvalidCommand", bad, err)
		}
	}
}
