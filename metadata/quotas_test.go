package metadata

import (
	"errors"
	"testing"
)

// Quotas resolve in Kafka's order (most specific entity first), are
// replaced and removed per key, vanish with their last key, and refuse
// keys tlog does not enforce, non-positive rates and malformed entities.
func TestClientQuotas(t *testing.T) {
	name := func(n string) *QuotaName { return &QuotaName{Name: n} }
	def := &QuotaName{Default: true}
	set := func(e QuotaEntity, v float64) QuotaAlteration {
		return QuotaAlteration{Entity: e, Set: map[string]float64{QuotaProducerByteRate: v}}
	}
	st, err := NewState().Next(AlterClientQuotas{Entries: []QuotaAlteration{
		set(QuotaEntity{ClientID: def}, 8),
		set(QuotaEntity{ClientID: name("app")}, 7),
		set(QuotaEntity{User: def}, 6),
		set(QuotaEntity{User: def, ClientID: def}, 5),
		set(QuotaEntity{User: def, ClientID: name("app")}, 4),
		set(QuotaEntity{User: name("alice")}, 3),
		set(QuotaEntity{User: name("alice"), ClientID: def}, 2),
		set(QuotaEntity{User: name("alice"), ClientID: name("app")}, 1),
	}})
	if err != nil {
		t.Fatal(err)
	}
	// Removing the most specific one each time walks down the order.
	order := []QuotaEntity{
		{User: name("alice"), ClientID: name("app")}, {User: name("alice"), ClientID: def}, {User: name("alice")},
		{User: def, ClientID: name("app")}, {User: def, ClientID: def}, {User: def}, {ClientID: name("app")}, {ClientID: def},
	}
	for i, e := range order {
		v, got, ok := st.QuotaFor("alice", "app", QuotaProducerByteRate)
		if !ok || v != float64(i+1) || !got.Equal(e) {
			t.Fatalf("step %d: %v from %s (found %v), want %d from %s", i, v, got, ok, i+1, e)
		}
		if st, err = st.Next(AlterClientQuotas{Entries: []QuotaAlteration{{Entity: e, Remove: []string{QuotaProducerByteRate}}}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, ok := st.QuotaFor("alice", "app", QuotaProducerByteRate); ok || len(st.Quotas) != 0 {
		t.Fatalf("all removed: still %v", st.Quotas)
	}
	if v, _, ok := st.QuotaFor("bob", "x", QuotaConsumerByteRate); ok {
		t.Fatalf("no quotas: got %v", v)
	}
	for _, bad := range []QuotaAlteration{
		{Entity: QuotaEntity{}, Set: map[string]float64{QuotaProducerByteRate: 1}},
		{Entity: QuotaEntity{User: name("a")}, Set: map[string]float64{"request_percentage": 50}},
		{Entity: QuotaEntity{User: name("a")}, Set: map[string]float64{QuotaProducerByteRate: 0}},
		{Entity: QuotaEntity{User: name("a")}, Set: map[string]float64{QuotaProducerByteRate: -5}},
		{Entity: QuotaEntity{User: &QuotaName{Name: "a", Default: true}}, Set: map[string]float64{QuotaProducerByteRate: 1}},
		{Entity: QuotaEntity{User: name("a")}, Set: map[string]float64{QuotaProducerByteRate: 1}, Remove: []string{QuotaProducerByteRate}},
	} {
		if _, err := st.Next(AlterClientQuotas{Entries: []QuotaAlteration{bad}}); !errors.Is(err, ErrInvalidCommand) {
			t.Errorf("%+v: got %v, want ErrInvalidCommand", bad, err)
		}
	}
}
