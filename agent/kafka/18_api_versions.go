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
// * v3: ClientSoftwareName/Version (validated), flexible versions;
//   feature levels (transaction.version)

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
	if req.Version >= 3 {
		resp.SupportedFeatures, resp.FinalizedFeatures, resp.FinalizedFeaturesEpoch = s.features(req.Version)
	}
	return now(resp), nil
}

// features is what ApiVersions v3+ says of feature levels: the range this
// agent supports, and the level in force. Only transaction.version is
// served: levels 0 to 2, finalized at Config.TransactionVersion. A
// supported range starting at 0 is listed for v4+ only, as Kafka does:
// older clients read a minimum of 0 as "not supported".
func (s *Server) features(version int16) ([]kmsg.ApiVersionsResponseSupportedFeature, []kmsg.ApiVersionsResponseFinalizedFeature, int64) {
	var supported []kmsg.ApiVersionsResponseSupportedFeature
	if version >= 4 {
		sf := kmsg.NewApiVersionsResponseSupportedFeature()
		sf.Name, sf.MinVersion, sf.MaxVersion = "transaction.version", 0, 2
		supported = append(supported, sf)
	}
	var finalized []kmsg.ApiVersionsResponseFinalizedFeature
	if level := s.cfg.TransactionVersion; level > 0 {
		ff := kmsg.NewApiVersionsResponseFinalizedFeature()
		ff.Name, ff.MinVersionLevel, ff.MaxVersionLevel = "transaction.version", level, level
		finalized = append(finalized, ff)
	}
	// The level is fixed for an agent's life: one epoch.
	return supported, finalized, 1
}
