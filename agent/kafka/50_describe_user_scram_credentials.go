package kafka

// DescribeUserScramCredentials: v0
//
// Lists SCRAM users with each credential's mechanism and iteration count
// (never salts or keys): the named users (RESOURCE_NOT_FOUND for one that
// has none, DUPLICATE_RESOURCE for one named twice), or all when Users is
// null. Needs DESCRIBE on the cluster with an authorizer; without one a
// super user (or anyone on a PLAINTEXT listener).

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/metadata"
)

func init() { register(50, 0, 0, handleDescribeUserScramCredentials) }

// scramMechanismIDs are the wire's mechanism numbers.
var scramMechanismIDs = map[string]int8{metadata.ScramSHA256: 1, metadata.ScramSHA512: 2}

func scramMechanismName(id int8) string {
	for name, n := range scramMechanismIDs {
		if n == id {
			return name
		}
	}
	return ""
}

func handleDescribeUserScramCredentials(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.DescribeUserSCRAMCredentialsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
	if !r.mayManage(metadata.OpDescribe) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		resp.ErrorMessage = kmsg.StringPtr(r.Principal() + " may not list users (DESCRIBE on the cluster)")
		return now(resp), nil
	}
	st := s.b.State()
	var names []string
	if req.Users == nil {
		for u := range st.Users {
			names = append(names, u)
		}
		sort.Strings(names)
	} else {
		for _, u := range req.Users {
			names = append(names, u.Name)
		}
	}
	seen := map[string]int{}
	for _, n := range names {
		seen[n]++
	}
	for _, n := range names {
		res := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
		res.User = n
		creds, ok := st.Users[n]
		switch {
		case seen[n] > 1:
			res.ErrorCode = kerr.DuplicateResource.Code
			res.ErrorMessage = kmsg.StringPtr("user named more than once")
		case !ok:
			res.ErrorCode = kerr.ResourceNotFound.Code
			res.ErrorMessage = kmsg.StringPtr("no SCRAM credentials for user " + n)
		default:
			mechs := make([]string, 0, len(creds))
			for m := range creds {
				mechs = append(mechs, m)
			}
			sort.Strings(mechs)
			for _, m := range mechs {
				ci := kmsg.NewDescribeUserSCRAMCredentialsResponseResultCredentialInfo()
				ci.Mechanism, ci.Iterations = scramMechanismIDs[m], int32(creds[m].Iterations)
				res.CredentialInfos = append(res.CredentialInfos, ci)
			}
		}
		resp.Results = append(resp.Results, res)
	}
	return now(resp), nil
}
