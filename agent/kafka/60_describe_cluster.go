package kafka

// DescribeCluster: v0-1
//
// Every live (unfenced) agent as a broker, the controller (the lease holder, as
// far as this agent knows) and the cluster id fixed in the bucket. With
// an authorizer anyone authenticated may ask, as in Kafka; the cluster's
// authorized operations are told when asked for.
//
// Version notes:
// * v1: EndpointType: only brokers (1) are described; controllers (2) are
//   UNSUPPORTED_ENDPOINT_TYPE, as there is no separate controller listener.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/metadata"
)

func init() { register(60, 0, 1, handleDescribeCluster) }

func handleDescribeCluster(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.DescribeClusterRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.EndpointType = 1
	if req.Version >= 1 && req.EndpointType != 1 {
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		return now(resp), nil
	}
	st := s.b.State()
	resp.ClusterID = s.cfg.ClusterID
	resp.ControllerID = s.b.ControllerID()
	resp.ClusterAuthorizedOperations = authorizedOpsUnknown
	if req.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = r.authorizedOps(metadata.ResourceCluster, metadata.ClusterResourceName, clusterOps)
	}
	for _, id := range st.AgentIDs() {
		ag := st.Agents[id]
		if ag.Fenced {
			continue
		}
		host, port := splitHostPort(ag.AddrFor(r.c.lst.Name))
		b := kmsg.NewDescribeClusterResponseBroker()
		b.NodeID, b.Host, b.Port = id, host, port
		if ag.Zone != "" {
			z := ag.Zone
			b.Rack = &z
		}
		resp.Brokers = append(resp.Brokers, b)
	}
	return now(resp), nil
}
