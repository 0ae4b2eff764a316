package metadata

// Client quotas: Kafka's byte-rate quotas per user and/or client id,
// kept in the journal (AlterClientQuotas) so every agent enforces the
// same ones. Each agent enforces them on its own traffic, as Kafka's
// brokers do.

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
)

// Quota keys tlog enforces.
const (
	QuotaProducerByteRate = "producer_byte_rate"
	QuotaConsumerByteRate = "consumer_byte_rate"
)

// QuotaKeys are the keys AlterClientQuotas takes.
var QuotaKeys = []string{QuotaProducerByteRate, QuotaConsumerByteRate}

// QuotaName is one part of an entity: a name, or the default for its
// type (Default, Name empty).
type QuotaName struct {
	Name    string `json:"name,omitempty"`
	Default bool   `json:"default,omitempty"`
}

// QuotaEntity is what a quota applies to: a user, a client id, or a
// user's client id; nil parts are absent.
type QuotaEntity struct {
	User     *QuotaName `json:"user,omitempty"`
	ClientID *QuotaName `json:"client_id,omitempty"`
}

func (e QuotaEntity) String() string {
	part := func(typ string, n *QuotaName) string {
		if n.Default {
			return typ + "=<default>"
		}
		return typ + "=" + n.Name
	}
	switch {
	case e.User != nil && e.ClientID != nil:
		return part("user", e.User) + "," + part("client-id", e.ClientID)
	case e.User != nil:
		return part("user", e.User)
	case e.ClientID != nil:
		return part("client-id", e.ClientID)
	}
	return "<none>"
}

func sameName(a, b *QuotaName) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

// Equal says whether e and o are the same entity.
func (e QuotaEntity) Equal(o QuotaEntity) bool {
	return sameName(e.User, o.User) && sameName(e.ClientID, o.ClientID)
}

// ClientQuota is an entity's quota values (bytes per second).
type ClientQuota struct {
	Entity QuotaEntity        `json:"entity"`
	Values map[string]float64 `json:"values"`
}

// AlterClientQuotas sets and removes quota values of entities; an entity
// left with none is dropped.
type AlterClientQuotas struct {
	Entries []QuotaAlteration `json:"entries"`
}

// QuotaAlteration is one entity's change.
type QuotaAlteration struct {
	Entity QuotaEntity        `json:"entity"`
	Set    map[string]float64 `json:"set,omitempty"`
	Remove []string           `json:"remove,omitempty"`
}

func (AlterClientQuotas) CommandType() string { return "alter_client_quotas" }

// maxQuotaEntities bounds the journal's quota table.
const maxQuotaEntities = 100_000

// Validate checks an alteration is one tlog can enforce.
func (q QuotaAlteration) Validate() error {
	fail := func(why string) error { return fmt.Errorf("%w: quota for %s: %s", ErrInvalidCommand, q.Entity, why) }
	if q.Entity.User == nil && q.Entity.ClientID == nil {
		return fail("name a user, a client id, or both")
	}
	for _, n := range []*QuotaName{q.Entity.User, q.Entity.ClientID} {
		if n != nil && (n.Default == (n.Name != "") || len(n.Name) > 1024) {
			return fail("each part is a name (at most 1024 bytes) or the default")
		}
	}
	for k, v := range q.Set {
		if !slices.Contains(QuotaKeys, k) {
			return fail(fmt.Sprintf("%s is not a quota tlog enforces (%v)", k, QuotaKeys))
		}
		if !(v > 0) || v > 1e15 {
			return fail(fmt.Sprintf("%s must be a positive number of bytes per second, not %v", k, v))
		}
	}
	for _, k := range q.Remove {
		if !slices.Contains(QuotaKeys, k) {
			return fail(fmt.Sprintf("%s is not a quota tlog enforces (%v)", k, QuotaKeys))
		}
		if _, ok := q.Set[k]; ok {
			return fail(k + " both set and removed")
		}
	}
	return nil
}

func (c AlterClientQuotas) apply(tx *txn) error {
	for _, q := range c.Entries {
		if err := q.Validate(); err != nil {
			return err
		}
	}
	quotas := slices.Clone(tx.s.Quotas)
	for _, q := range c.Entries {
		i := slices.IndexFunc(quotas, func(cq ClientQuota) bool { return cq.Entity.Equal(q.Entity) })
		var values map[string]float64
		if i >= 0 {
			values = maps.Clone(quotas[i].Values)
		} else {
			values = map[string]float64{}
		}
		maps.Copy(values, q.Set)
		for _, k := range q.Remove {
			delete(values, k)
		}
		switch {
		case len(values) == 0 && i >= 0:
			quotas = slices.Delete(quotas, i, i+1)
		case len(values) == 0:
		case i >= 0:
			quotas[i] = ClientQuota{Entity: quotas[i].Entity, Values: values}
		default:
			quotas = append(quotas, ClientQuota{Entity: q.Entity, Values: values})
		}
	}
	if len(quotas) > maxQuotaEntities {
		return fmt.Errorf("%w: more than %d quota entities", ErrInvalidCommand, maxQuotaEntities)
	}
	slices.SortFunc(quotas, func(a, b ClientQuota) int { return cmp.Compare(a.Entity.String(), b.Entity.String()) })
	tx.s.Quotas = quotas
	return nil
}

// QuotaFor is the quota key applying to user's client clientID, and the
// entity it is set on, in Kafka's order of precedence: the user's client
// id, the user's default client, the user, the default user's client id,
// the default user's default client, the default user, the client id,
// the default client.
func (s *State) QuotaFor(user, clientID, key string) (float64, QuotaEntity, bool) {
	named := func(n string) *QuotaName { return &QuotaName{Name: n} }
	def := &QuotaName{Default: true}
	for _, e := range []QuotaEntity{
		{User: named(user), ClientID: named(clientID)},
		{User: named(user), ClientID: def},
		{User: named(user)},
		{User: def, ClientID: named(clientID)},
		{User: def, ClientID: def},
		{User: def},
		{ClientID: named(clientID)},
		{ClientID: def},
	} {
		for _, cq := range s.Quotas {
			if cq.Entity.Equal(e) {
				if v, ok := cq.Values[key]; ok {
					return v, cq.Entity, true
				}
			}
		}
	}
	return 0, QuotaEntity{}, false
}
