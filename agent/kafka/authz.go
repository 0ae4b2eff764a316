package kafka

// Authorization. With Config.Authorizer set (authorizer.class.name), every
// API asks, before it changes or tells anything, whether the connection's
// principal may do the operation Kafka's brokers ask for on the resource
// (the ACLs in the metadata journal decide, metadata.State.Authorized; a
// super user may do everything; allow.everyone.if.no.acl.found is false).
// Each API file's opening comment names what it asks. Without an
// authorizer everyone may do everything, as in Kafka, except managing
// SCRAM users and ACLs over an authenticated listener (see mayManage).
//
// Requests other agents send over the authenticated peer port (markers,
// transaction verification) run as the cluster itself: conn.internal.

import (
	"errors"
	"math"
	"slices"

	"github.com/tlog-io/tlog/metadata"
)

// errTopicAuthorization and errClusterAuthorization mark refusals by the
// authorizer in errors that go through createErrCode.
var (
	errTopicAuthorization   = errors.New("topic authorization failed")
	errClusterAuthorization = errors.New("cluster authorization failed")
)

// authorizedOpsUnknown is Kafka's "not asked for" authorized-operations
// value (INT32_MIN).
const authorizedOpsUnknown = math.MinInt32

// Operations each resource type has, for authorized_operations fields.
var (
	topicOps   = []string{metadata.OpRead, metadata.OpWrite, metadata.OpCreate, metadata.OpDelete, metadata.OpAlter, metadata.OpDescribe, metadata.OpDescribeConfigs, metadata.OpAlterConfigs}
	groupOps   = []string{metadata.OpRead, metadata.OpDescribe, metadata.OpDelete}
	clusterOps = []string{metadata.OpCreate, metadata.OpClusterAction, metadata.OpDescribeConfigs, metadata.OpAlterConfigs, metadata.OpIdempotentWrite, metadata.OpAlter, metadata.OpDescribe}
)

// superUser says whether the request runs with every permission: another
// agent over the peer port, or a configured super user.
func (r *request) superUser() bool {
	if r.c.internal {
		return true
	}
	return slices.Contains(r.c.s.cfg.SuperUsers, r.Principal())
}

// allowed says whether the request's principal may do op on the named
// resource (resource type as metadata spells it).
func (r *request) allowed(resourceType, name, op string) bool {
	if !r.c.s.cfg.Authorizer || r.superUser() {
		return true
	}
	return r.c.s.b.State().Authorized(r.Principal(), r.c.ip, resourceType, name, op)
}

func (r *request) allowedTopic(name, op string) bool {
	return r.allowed(metadata.ResourceTopic, name, op)
}

func (r *request) allowedGroup(name, op string) bool {
	return r.allowed(metadata.ResourceGroup, name, op)
}

func (r *request) allowedTxnID(name, op string) bool {
	return r.allowed(metadata.ResourceTransactionalID, name, op)
}

func (r *request) allowedCluster(op string) bool {
	return r.allowed(metadata.ResourceCluster, metadata.ClusterResourceName, op)
}

// allowedAnyTopic says whether the principal may do op on some topic
// (Kafka lets an idempotent producer in with WRITE on any topic, since
// 2.8, instead of IDEMPOTENT_WRITE on the cluster).
func (r *request) allowedAnyTopic(op string) bool {
	if !r.c.s.cfg.Authorizer || r.superUser() {
		return true
	}
	st := r.c.s.b.State()
	for _, a := range st.ACLs {
		if a.ResourceType != metadata.ResourceTopic || a.Permission != metadata.PermissionAllow {
			continue
		}
		// Deny ACLs on the topic may still win; check the rule on a name
		// the ACL covers.
		name := a.Name
		if st.Authorized(r.Principal(), r.c.ip, metadata.ResourceTopic, name, op) {
			return true
		}
	}
	return false
}

// mayManage says whether the request may list (op DESCRIBE) or change
// (op ALTER) SCRAM users and ACLs. With an authorizer that is op on the
// cluster; without one, a super user or anyone on a PLAINTEXT listener
// (it authenticates no one: keep such a listener on loopback or a private
// network), decided by the listener and not the principal's name.
func (r *request) mayManage(op string) bool {
	if r.c.s.cfg.Authorizer {
		return r.allowedCluster(op)
	}
	return r.c.lst.Protocol == Plaintext || r.superUser()
}

// authorizedOps is the authorized_operations bit field (bit n for Kafka's
// AclOperation n) of the named resource, of the ops it has.
func (r *request) authorizedOps(resourceType, name string, ops []string) int32 {
	var bits int32
	for _, op := range ops {
		if r.allowed(resourceType, name, op) {
			bits |= 1 << aclOperationCode(op)
		}
	}
	return bits
}
