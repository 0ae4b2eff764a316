package kafka

// ApiVersions: v0-4
//
// Lists every API key this agent serves with the exact version range its
// handler implements; nothing is advertised that is not served. A request
// above our range is answered at v0 with UNSUPPORTED_VERSION (in the
// decoder), as KIP-511 asks, so the client can retry lower.
//
// Version notes:
// * v1: ThrottleMillis
// * v3: ClientSoftwareName/Version (validated), flexible versions

import (
	"regexp"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(18, 0, 4, handleApiVersions) }

var softwareRe = regexp.MustCompile(`^[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?$`)

func handleApiVersions(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.ApiVersionsRequest)
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	if req.Version >= 3 && (!softwareRe.MatchString(req.ClientSoftwareName) || !softwareRe.MatchString(req.ClientSoftwareVersion)) {
		resp.ErrorCode = kerr.InvalidRequest.Code
	}
	resp.ApiKeys = apiKeys()
	return now(resp), nil
}
