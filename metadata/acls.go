package metadata

// ACLs: Kafka's access control entries, kept in the journal like every
// other change, so every agent decides the same way. The decision rule is
// Kafka's (AclAuthorizer): a matching DENY wins; else a matching ALLOW
// for the operation, or for one that implies it (READ, WRITE, DELETE and
// ALTER imply DESCRIBE; ALTER_CONFIGS implies DESCRIBE_CONFIGS; ALL
// implies every one); else denied (allow.everyone.if.no.acl.found is
// false). Super users are the caller's to decide before asking.

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// ACL resource types, pattern types, operations and permissions, as the
// journal spells them (Kafka's names, lower case).
const (
	ResourceTopic           = "topic"
	ResourceGroup           = "group"
	ResourceCluster         = "cluster"
	ResourceTransactionalID = "transactional_id"

	PatternLiteral  = "literal"
	PatternPrefixed = "prefixed"

	OpAll             = "all"
	OpRead            = "read"
	OpWrite           = "write"
	OpCreate          = "create"
	OpDelete          = "delete"
	OpAlter           = "alter"
	OpDescribe        = "describe"
	OpClusterAction   = "cluster_action"
	OpDescribeConfigs = "describe_configs"
	OpAlterConfigs    = "alter_configs"
	OpIdempotentWrite = "idempotent_write"

	PermissionAllow = "allow"
	PermissionDeny  = "deny"

	// ClusterResourceName is the one cluster resource's name.
	ClusterResourceName = "kafka-cluster"
	// WildcardName (literal) matches every resource of its type;
	// WildcardPrincipal every principal; WildcardHost every host.
	WildcardName      = "*"
	WildcardPrincipal = "User:*"
	WildcardHost      = "*"
)

var (
	resourceTypes = []string{ResourceTopic, ResourceGroup, ResourceCluster, ResourceTransactionalID}
	operations    = []string{OpAll, OpRead, OpWrite, OpCreate, OpDelete, OpAlter, OpDescribe, OpClusterAction,
		OpDescribeConfigs, OpAlterConfigs, OpIdempotentWrite}
)

// ACL is one access control entry.
type ACL struct {
	Principal    string `json:"principal"`     // "User:NAME", or "User:*"
	Host         string `json:"host"`          // an address, or "*"
	ResourceType string `json:"resource_type"` // topic, group, cluster, transactional_id
	PatternType  string `json:"pattern_type"`  // literal or prefixed
	Name         string `json:"name"`          // the resource, its prefix, or "*" (literal)
	Operation    string `json:"operation"`
	Permission   string `json:"permission"` // allow or deny
}

func (a ACL) String() string {
	return fmt.Sprintf("%s %s on %s %s:%s from %s: %s", a.Principal, a.Operation, a.ResourceType, a.PatternType, a.Name, a.Host, a.Permission)
}

func compareACL(x, y ACL) int {
	return cmp.Or(cmp.Compare(x.ResourceType, y.ResourceType), cmp.Compare(x.PatternType, y.PatternType),
		cmp.Compare(x.Name, y.Name), cmp.Compare(x.Principal, y.Principal), cmp.Compare(x.Host, y.Host),
		cmp.Compare(x.Operation, y.Operation), cmp.Compare(x.Permission, y.Permission))
}

// Validate checks an ACL is one Kafka could hold.
func (a ACL) Validate() error {
	fail := func(why string) error { return fmt.Errorf("%w: ACL %s: %s", ErrInvalidCommand, a, why) }
	switch {
	case !strings.HasPrefix(a.Principal, "User:") || len(a.Principal) == len("User:"):
		return fail("principal must be User:NAME or User:*")
	case a.Host == "":
		return fail("host must be an address or *")
	case !slices.Contains(resourceTypes, a.ResourceType):
		return fail("unknown resource type")
	case a.PatternType != PatternLiteral && a.PatternType != PatternPrefixed:
		return fail("pattern type must be literal or prefixed")
	case a.Name == "":
		return fail("empty resource name")
	case a.PatternType == PatternPrefixed && a.Name == WildcardName:
		return fail("* is a literal name")
	case a.ResourceType == ResourceCluster && (a.Name != ClusterResourceName || a.PatternType != PatternLiteral):
		return fail("the cluster resource is literal kafka-cluster")
	case !slices.Contains(operations, a.Operation):
		return fail("unknown operation")
	case a.Permission != PermissionAllow && a.Permission != PermissionDeny:
		return fail("permission must be allow or deny")
	case len(a.Name) > 1024 || len(a.Principal) > 1024 || len(a.Host) > 256:
		return fail("too long")
	}
	return nil
}

// CreateACLs adds ACLs (ones already there are kept once).
type CreateACLs struct {
	ACLs []ACL `json:"acls"`
}

// DeleteACLs removes exactly these ACLs (the proposer matched its
// filters against the state it saw; absent ones are skipped).
type DeleteACLs struct {
	ACLs []ACL `json:"acls"`
}

func (CreateACLs) CommandType() string { return "create_acls" }
func (DeleteACLs) CommandType() string { return "delete_acls" }

// maxACLs bounds the journal's ACL table.
const maxACLs = 100_000

func (c CreateACLs) apply(tx *txn) error {
	for _, a := range c.ACLs {
		if err := a.Validate(); err != nil {
			return err
		}
	}
	acls := slices.Clone(tx.s.ACLs)
	for _, a := range c.ACLs {
		if i, found := slices.BinarySearchFunc(acls, a, compareACL); !found {
			acls = slices.Insert(acls, i, a)
		}
	}
	if len(acls) > maxACLs {
		return fmt.Errorf("%w: more than %d ACLs", ErrInvalidCommand, maxACLs)
	}
	tx.s.ACLs = acls
	return nil
}

func (c DeleteACLs) apply(tx *txn) error {
	acls := slices.Clone(tx.s.ACLs)
	for _, a := range c.ACLs {
		if i, found := slices.BinarySearchFunc(acls, a, compareACL); found {
			acls = slices.Delete(acls, i, i+1)
		}
	}
	tx.s.ACLs = acls
	return nil
}

// implies lists the operations whose ALLOW also allows op.
func implies(op string) []string {
	switch op {
	case OpDescribe:
		return []string{OpDescribe, OpRead, OpWrite, OpDelete, OpAlter, OpAll}
	case OpDescribeConfigs:
		return []string{OpDescribeConfigs, OpAlterConfigs, OpAll}
	}
	return []string{op, OpAll}
}

// matches reports whether a applies to principal from host on the named
// resource.
func (a ACL) matches(principal, host, resourceType, name string) bool {
	if a.ResourceType != resourceType || (a.Principal != principal && a.Principal != WildcardPrincipal) ||
		(a.Host != host && a.Host != WildcardHost) {
		return false
	}
	if a.PatternType == PatternPrefixed {
		return strings.HasPrefix(name, a.Name)
	}
	return a.Name == name || a.Name == WildcardName
}

// Authorized decides whether principal, connected from host, may do op on
// the named resource, by the ACLs alone (Kafka's rule; see the top).
func (s *State) Authorized(principal, host, resourceType, name, op string) bool {
	allowed := false
	allow := implies(op)
	for _, a := range s.ACLs {
		if !a.matches(principal, host, resourceType, name) {
			continue
		}
		if a.Permission == PermissionDeny && (a.Operation == op || a.Operation == OpAll) {
			return false
		}
		if a.Permission == PermissionAllow && slices.Contains(allow, a.Operation) {
			allowed = true
		}
	}
	return allowed
}

// ACLFilter selects ACLs as DescribeAcls and DeleteAcls filters do: an
// empty field matches anything. PatternType may also be PatternMatch:
// every ACL that applies to the resource Name (literal equal, the
// literal wildcard, or a prefix of it); with PatternType empty or a
// pattern type the name must equal the ACL's.
type ACLFilter struct {
	Principal, Host, ResourceType, PatternType, Name, Operation, Permission string
}

// PatternMatch is ACLFilter's "what applies to this resource" pattern.
const PatternMatch = "match"

// Matches says whether f selects a.
func (f ACLFilter) Matches(a ACL) bool {
	eq := func(want, got string) bool { return want == "" || want == got }
	if !eq(f.Principal, a.Principal) || !eq(f.Host, a.Host) || !eq(f.ResourceType, a.ResourceType) ||
		!eq(f.Operation, a.Operation) || !eq(f.Permission, a.Permission) {
		return false
	}
	if f.PatternType == PatternMatch {
		if f.Name == "" {
			return true
		}
		if a.PatternType == PatternPrefixed {
			return strings.HasPrefix(f.Name, a.Name)
		}
		return a.Name == f.Name || a.Name == WildcardName
	}
	return eq(f.PatternType, a.PatternType) && eq(f.Name, a.Name)
}

// MatchingACLs is every ACL f selects, in the journal's order.
func (s *State) MatchingACLs(f ACLFilter) []ACL {
	var out []ACL
	for _, a := range s.ACLs {
		if f.Matches(a) {
			out = append(out, a)
		}
	}
	return out
}
