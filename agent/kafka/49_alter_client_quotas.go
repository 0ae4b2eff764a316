package kafka

// AlterClientQuotas: v0-1
//
// Sets and removes quota values of user, client-id and user+client-id
// entities (a null name is the type's default), all valid entries in one
// journal entry; ValidateOnly checks without changing. tlog enforces
// producer_byte_rate and consumer_byte_rate (quotas.go); other keys
// (request_percentage, connection_creation_rate, controller_mutation_rate)
// and unknown entity types (ip) are INVALID_REQUEST for their entry, as
// are non-positive rates. With an authorizer: ALTER_CONFIGS on the cluster
// (CLUSTER_AUTHORIZATION_FAILED).
//
// Version notes:
// * v1: flexible versions

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/metadata"
)

func init() { register(49, 0, 1, handleAlterClientQuotas) }

func handleAlterClientQuotas(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.AlterClientQuotasRequest)
	resp := req.ResponseKind().(*kmsg.AlterClientQuotasResponse)
	var cmd metadata.AlterClientQuotas
	var pending []int
	for _, e := range req.Entries {
		out := kmsg.NewAlterClientQuotasResponseEntry()
		for _, pe := range e.Entity {
			oe := kmsg.NewAlterClientQuotasResponseEntryEntity()
			oe.Type, oe.Name = pe.Type, pe.Name
			out.Entity = append(out.Entity, oe)
		}
		failEntry := func(code int16, msg string) {
			out.ErrorCode, out.ErrorMessage = code, kmsg.StringPtr(msg)
		}
		alt, err := quotaAlteration(e)
		switch {
		case !r.allowedCluster(metadata.OpAlterConfigs):
			failEntry(kerr.ClusterAuthorizationFailed.Code, r.Principal()+" may not alter quotas (ALTER_CONFIGS on the cluster)")
		case err != nil:
			failEntry(kerr.InvalidRequest.Code, err.Error())
		default:
			if err := alt.Validate(); err != nil {
				failEntry(kerr.InvalidRequest.Code, err.Error())
				break
			}
			cmd.Entries = append(cmd.Entries, alt)
			pending = append(pending, len(resp.Entries))
		}
		resp.Entries = append(resp.Entries, out)
	}
	if len(cmd.Entries) > 0 && !req.ValidateOnly {
		if _, err := s.b.Propose(r.ctx, cmd); err != nil {
			code := errCode(err)
			if errors.Is(err, metadata.ErrInvalidCommand) {
				code = kerr.InvalidRequest.Code
			}
			for _, i := range pending {
				resp.Entries[i].ErrorCode, resp.Entries[i].ErrorMessage = code, errMsg(err)
			}
		} else {
			s.log.Info("client quotas altered", "principal", r.Principal(), "entities", len(cmd.Entries))
		}
	}
	return now(resp), nil
}

// quotaAlteration reads one entry into the journal's form.
func quotaAlteration(e kmsg.AlterClientQuotasRequestEntry) (metadata.QuotaAlteration, error) {
	var q metadata.QuotaAlteration
	for _, pe := range e.Entity {
		n := &metadata.QuotaName{Default: pe.Name == nil}
		if pe.Name != nil {
			n.Name = *pe.Name
		}
		switch {
		case pe.Type == quotaTypeUser && q.Entity.User == nil:
			q.Entity.User = n
		case pe.Type == quotaTypeClientID && q.Entity.ClientID == nil:
			q.Entity.ClientID = n
		case pe.Type == quotaTypeUser || pe.Type == quotaTypeClientID:
			return q, fmt.Errorf("entity type %s given twice", pe.Type)
		default:
			return q, fmt.Errorf("entity type %q is not one tlog keeps quotas for (user, client-id)", pe.Type)
		}
	}
	seen := map[string]bool{}
	for _, op := range e.Ops {
		if seen[op.Key] {
			return q, fmt.Errorf("quota %s given twice", op.Key)
		}
		seen[op.Key] = true
		if op.Remove {
			q.Remove = append(q.Remove, op.Key)
			continue
		}
		if q.Set == nil {
			q.Set = map[string]float64{}
		}
		q.Set[op.Key] = op.Value
	}
	return q, nil
}
