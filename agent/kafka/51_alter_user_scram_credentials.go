package kafka

// AlterUserScramCredentials: v0
//
// Creates, replaces and deletes SCRAM credentials. An upsertion carries the
// salted password (the client salted and iterated it; the password itself
// never travels); the agent derives the StoredKey and ServerKey (RFC 5802)
// and journals those with the salt and iteration count. Per user:
// UNSUPPORTED_SASL_MECHANISM, UNACCEPTABLE_CREDENTIAL (iterations outside
// 4,096-16,384, a short salt, a salted password of the wrong length),
// RESOURCE_NOT_FOUND (deleting what is not there), DUPLICATE_RESOURCE (a
// user named twice); nothing of a user with an error is changed. Needs
// ALTER on the cluster with an authorizer; without one a super user (or
// anyone on a PLAINTEXT listener): CLUSTER_AUTHORIZATION_FAILED otherwise.

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/metadata"
)

func init() { register(51, 0, 0, handleAlterUserScramCredentials) }

// ScramKeys derives RFC 5802's StoredKey and ServerKey from a salted
// password for mechanism.
func ScramKeys(mechanism string, salted []byte) (storedKey, serverKey []byte) {
	h := sha256.New
	if mechanism == metadata.ScramSHA512 {
		h = sha512.New
	}
	mac := func(key []byte, msg string) []byte {
		m := hmac.New(h, key)
		m.Write([]byte(msg))
		return m.Sum(nil)
	}
	sh := h()
	sh.Write(mac(salted, "Client Key"))
	return sh.Sum(nil), mac(salted, "Server Key")
}

func handleAlterUserScramCredentials(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.AlterUserSCRAMCredentialsRequest)
	resp := req.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
	type userResult struct {
		code int16
		msg  string
	}
	results := map[string]*userResult{}
	var order []string
	count := map[string]int{}
	for _, d := range req.Deletions {
		count[d.Name]++
	}
	for _, u := range req.Upsertions {
		count[u.Name]++
	}
	result := func(user string) *userResult {
		if results[user] == nil {
			results[user] = &userResult{}
			order = append(order, user)
		}
		return results[user]
	}
	fail := func(user string, code int16, msg string) {
		if res := result(user); res.code == 0 {
			res.code, res.msg = code, msg
		}
	}
	if !r.mayManage(metadata.OpAlter) {
		for _, d := range req.Deletions {
			fail(d.Name, kerr.ClusterAuthorizationFailed.Code, r.Principal()+" may not manage users (ALTER on the cluster)")
		}
		for _, u := range req.Upsertions {
			fail(u.Name, kerr.ClusterAuthorizationFailed.Code, r.Principal()+" may not manage users (ALTER on the cluster)")
		}
	}
	st := s.b.State()
	cmds := map[string][]metadata.Command{}
	for _, d := range req.Deletions {
		mech := scramMechanismName(d.Mechanism)
		result(d.Name)
		switch {
		case count[d.Name] > 1:
			fail(d.Name, kerr.DuplicateResource.Code, "user named more than once")
		case mech == "":
			fail(d.Name, kerr.UnsupportedSaslMechanism.Code, "unknown SCRAM mechanism")
		default:
			if _, ok := st.ScramCredentialOf(d.Name, mech); !ok {
				fail(d.Name, kerr.ResourceNotFound.Code, "no "+mech+" credential for "+d.Name)
				continue
			}
			cmds[d.Name] = append(cmds[d.Name], metadata.DeleteScramCredential{User: d.Name, Mechanism: mech})
		}
	}
	for _, u := range req.Upsertions {
		mech := scramMechanismName(u.Mechanism)
		result(u.Name)
		switch {
		case count[u.Name] > 1:
			fail(u.Name, kerr.DuplicateResource.Code, "user named more than once")
		case mech == "":
			fail(u.Name, kerr.UnsupportedSaslMechanism.Code, "unknown SCRAM mechanism")
		case u.Name == "":
			fail(u.Name, kerr.UnacceptableCredential.Code, "empty user name")
		case u.Iterations < metadata.MinScramIterations || u.Iterations > metadata.MaxScramIterations:
			fail(u.Name, kerr.UnacceptableCredential.Code, "iterations must be 4096 to 16384")
		case len(u.Salt) < 16 || len(u.Salt) > 1024:
			fail(u.Name, kerr.UnacceptableCredential.Code, "salt must be 16 to 1024 bytes")
		case len(u.SaltedPassword) != metadata.ScramKeyLen(mech):
			fail(u.Name, kerr.UnacceptableCredential.Code, "salted password has the wrong length for "+mech)
		default:
			stored, server := ScramKeys(mech, u.SaltedPassword)
			cmds[u.Name] = append(cmds[u.Name], metadata.SetScramCredential{User: u.Name, Mechanism: mech,
				Credential: metadata.ScramCredential{Iterations: int(u.Iterations), Salt: u.Salt, StoredKey: stored, ServerKey: server}})
		}
	}
	for _, user := range order {
		res := results[user]
		if res.code == 0 && len(cmds[user]) > 0 {
			if _, err := s.b.Propose(r.ctx, cmds[user]...); err != nil {
				res.code, res.msg = errCode(err), err.Error()
				if errors.Is(err, metadata.ErrInvalidCommand) {
					res.code = kerr.UnacceptableCredential.Code
				}
			}
		}
		out := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
		out.User, out.ErrorCode = user, res.code
		if res.msg != "" {
			out.ErrorMessage = kmsg.StringPtr(res.msg)
		}
		resp.Results = append(resp.Results, out)
	}
	return now(resp), nil
}
