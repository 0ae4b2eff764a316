package kafka

// DescribeClientQuotas: v0-1
//
// Lists the quotas in the journal whose entity matches every filter
// component: a type ("user" or "client-id") with an exact name (match
// type 0), its default (1) or any value (2); Strict leaves out entities
// that have types the components do not name. Unknown entity types are
// INVALID_REQUEST. Names are null for defaults. With an authorizer:
// DESCRIBE_CONFIGS on the cluster (CLUSTER_AUTHORIZATION_FAILED).
//
// Version notes:
// * v1: flexible versions

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/metadata"
)

func init() { register(48, 0, 1, handleDescribeClientQuotas) }

// quotaEntityTypes are the entity types tlog keeps quotas for.
const (
	quotaTypeUser     = "user"
	quotaTypeClientID = "client-id"
)

func handleDescribeClientQuotas(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.DescribeClientQuotasRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClientQuotasResponse)
	fail := func(code int16, msg string) (reply, error) {
		resp.ErrorCode, resp.ErrorMessage = code, kmsg.StringPtr(msg)
		return now(resp), nil
	}
	if !r.allowedCluster(metadata.OpDescribeConfigs) {
		return fail(kerr.ClusterAuthorizationFailed.Code, r.Principal()+" may not describe quotas (DESCRIBE_CONFIGS on the cluster)")
	}
	named := map[string]bool{}
	for _, c := range req.Components {
		if c.EntityType != quotaTypeUser && c.EntityType != quotaTypeClientID {
			return fail(kerr.InvalidRequest.Code, "unknown entity type "+c.EntityType+" (user or client-id)")
		}
		if named[c.EntityType] {
			return fail(kerr.InvalidRequest.Code, "entity type "+c.EntityType+" given twice")
		}
		named[c.EntityType] = true
		if c.MatchType == 0 && c.Match == nil {
			return fail(kerr.InvalidRequest.Code, "an exact match needs a name")
		}
	}
	for _, cq := range s.b.State().Quotas {
		if !quotaMatches(cq.Entity, req.Components, req.Strict) {
			continue
		}
		e := kmsg.NewDescribeClientQuotasResponseEntry()
		for _, part := range quotaEntityParts(cq.Entity) {
			pe := kmsg.NewDescribeClientQuotasResponseEntryEntity()
			pe.Type, pe.Name = part.typ, part.name
			e.Entity = append(e.Entity, pe)
		}
		for _, k := range metadata.QuotaKeys {
			if v, ok := cq.Values[k]; ok {
				ev := kmsg.NewDescribeClientQuotasResponseEntryValue()
				ev.Key, ev.Value = k, v
				e.Values = append(e.Values, ev)
			}
		}
		resp.Entries = append(resp.Entries, e)
	}
	return now(resp), nil
}

type quotaPart struct {
	typ  string
	name *string // nil: the default
}

func quotaEntityParts(e metadata.QuotaEntity) []quotaPart {
	var out []quotaPart
	add := func(typ string, n *metadata.QuotaName) {
		if n == nil {
			return
		}
		p := quotaPart{typ: typ}
		if !n.Default {
			p.name = kmsg.StringPtr(n.Name)
		}
		out = append(out, p)
	}
	add(quotaTypeUser, e.User)
	add(quotaTypeClientID, e.ClientID)
	return out
}

func quotaMatches(e metadata.QuotaEntity, comps []kmsg.DescribeClientQuotasRequestComponent, strict bool) bool {
	partOf := func(typ string) *metadata.QuotaName {
		if typ == quotaTypeUser {
			return e.User
		}
		return e.ClientID
	}
	for _, c := range comps {
		n := partOf(c.EntityType)
		if n == nil {
			return false
		}
		switch c.MatchType {
		case 0: // exact
			if n.Default || n.Name != *c.Match {
				return false
			}
		case 1: // the default
			if !n.Default {
				return false
			}
		}
	}
	if strict {
		for _, typ := range []string{quotaTypeUser, quotaTypeClientID} {
			if partOf(typ) != nil && !slices.ContainsFunc(comps, func(c kmsg.DescribeClientQuotasRequestComponent) bool { return c.EntityType == typ }) {
				return false
			}
		}
	}
	return true
}
