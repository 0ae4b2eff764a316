package kafka

// The wire's ACL enums (kmsg) and the journal's names (metadata) both
// ways, shared by DescribeAcls, CreateAcls and DeleteAcls.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/metadata"
)

var (
	aclResourceTypes = map[kmsg.ACLResourceType]string{
		kmsg.ACLResourceTypeTopic:           metadata.ResourceTopic,
		kmsg.ACLResourceTypeGroup:           metadata.ResourceGroup,
		kmsg.ACLResourceTypeCluster:         metadata.ResourceCluster,
		kmsg.ACLResourceTypeTransactionalId: metadata.ResourceTransactionalID,
	}
	aclPatternTypes = map[kmsg.ACLResourcePatternType]string{
		kmsg.ACLResourcePatternTypeLiteral:  metadata.PatternLiteral,
		kmsg.ACLResourcePatternTypePrefixed: metadata.PatternPrefixed,
	}
	aclOperations = map[kmsg.ACLOperation]string{
		kmsg.ACLOperationAll:             metadata.OpAll,
		kmsg.ACLOperationRead:            metadata.OpRead,
		kmsg.ACLOperationWrite:           metadata.OpWrite,
		kmsg.ACLOperationCreate:          metadata.OpCreate,
		kmsg.ACLOperationDelete:          metadata.OpDelete,
		kmsg.ACLOperationAlter:           metadata.OpAlter,
		kmsg.ACLOperationDescribe:        metadata.OpDescribe,
		kmsg.ACLOperationClusterAction:   metadata.OpClusterAction,
		kmsg.ACLOperationDescribeConfigs: metadata.OpDescribeConfigs,
		kmsg.ACLOperationAlterConfigs:    metadata.OpAlterConfigs,
		kmsg.ACLOperationIdempotentWrite: metadata.OpIdempotentWrite,
	}
	aclPermissions = map[kmsg.ACLPermissionType]string{
		kmsg.ACLPermissionTypeAllow: metadata.PermissionAllow,
		kmsg.ACLPermissionTypeDeny:  metadata.PermissionDeny,
	}
)

// wireCode finds the wire code a journal name has in m.
func wireCode[K comparable](m map[K]string, name string) K {
	for k, v := range m {
		if v == name {
			return k
		}
	}
	var zero K
	return zero
}

// aclOperationCode is op's AclOperation code (authorized_operations bits).
func aclOperationCode(op string) int8 { return int8(wireCode(aclOperations, op)) }

// aclFromWire builds a journal ACL from a CreateAcls creation, or says
// which field is not one tlog keeps.
func aclFromWire(c kmsg.CreateACLsRequestCreation, version int16) (metadata.ACL, string) {
	a := metadata.ACL{Principal: c.Principal, Host: c.Host, Name: c.ResourceName}
	var ok bool
	if a.ResourceType, ok = aclResourceTypes[c.ResourceType]; !ok {
		return a, "unsupported resource type " + c.ResourceType.String()
	}
	pt := c.ResourcePatternType
	if version == 0 {
		pt = kmsg.ACLResourcePatternTypeLiteral
	}
	if a.PatternType, ok = aclPatternTypes[pt]; !ok {
		return a, "pattern type must be LITERAL or PREFIXED, not " + pt.String()
	}
	if a.Operation, ok = aclOperations[c.Operation]; !ok {
		return a, "unsupported operation " + c.Operation.String()
	}
	if a.Permission, ok = aclPermissions[c.PermissionType]; !ok {
		return a, "permission must be ALLOW or DENY, not " + c.PermissionType.String()
	}
	return a, ""
}

// aclFilterFromWire builds a journal filter from a DescribeAcls or
// DeleteAcls filter's fields, or says which one is unusable.
func aclFilterFromWire(rt kmsg.ACLResourceType, name *string, pt kmsg.ACLResourcePatternType, principal, host *string,
	op kmsg.ACLOperation, perm kmsg.ACLPermissionType, version int16,
) (metadata.ACLFilter, string) {
	var f metadata.ACLFilter
	var ok bool
	if rt != kmsg.ACLResourceTypeAny {
		if f.ResourceType, ok = aclResourceTypes[rt]; !ok {
			return f, "unsupported resource type " + rt.String()
		}
	}
	if version == 0 {
		pt = kmsg.ACLResourcePatternTypeLiteral
	}
	switch pt {
	case kmsg.ACLResourcePatternTypeAny:
	case kmsg.ACLResourcePatternTypeMatch:
		f.PatternType = metadata.PatternMatch
	default:
		if f.PatternType, ok = aclPatternTypes[pt]; !ok {
			return f, "unsupported pattern type " + pt.String()
		}
	}
	if op != kmsg.ACLOperationAny {
		if f.Operation, ok = aclOperations[op]; !ok {
			return f, "unsupported operation " + op.String()
		}
	}
	if perm != kmsg.ACLPermissionTypeAny {
		if f.Permission, ok = aclPermissions[perm]; !ok {
			return f, "unsupported permission " + perm.String()
		}
	}
	if name != nil {
		f.Name = *name
	}
	if principal != nil {
		f.Principal = *principal
	}
	if host != nil {
		f.Host = *host
	}
	return f, ""
}
