package metadata

import "testing"

func acl(principal, resType, pattern, name, op, perm string) ACL {
	return ACL{Principal: principal, Host: "*", ResourceType: resType, PatternType: pattern, Name: name, Operation: op, Permission: perm}
}

// ACLs are checked before they are kept, kept once, deleted exactly; the
// decision follows Kafka: deny wins, implied operations allow, wildcards
// and prefixes match, nothing matching denies.
func TestACLs(t *testing.T) {
	s := NewState()
	for _, bad := range []ACL{
		acl("alice", ResourceTopic, PatternLiteral, "t", OpRead, PermissionAllow),
		acl("User:a", "broker", PatternLiteral, "t", OpRead, PermissionAllow),
		acl("User:a", ResourceTopic, "match", "t", OpRead, PermissionAllow),
		acl("User:a", ResourceTopic, PatternPrefixed, "*", OpRead, PermissionAllow),
		acl("User:a", ResourceCluster, PatternLiteral, "other", OpAlter, PermissionAllow),
		acl("User:a", ResourceTopic, PatternLiteral, "t", "fly", PermissionAllow),
		acl("User:a", ResourceTopic, PatternLiteral, "t", OpRead, "maybe"),
		acl("User:a", ResourceTopic, PatternLiteral, "", OpRead, PermissionAllow),
	} {
		mustFail(t, s, ErrInvalidCommand, CreateACLs{ACLs: []ACL{bad}})
	}
	mustApply(t, s, CreateACLs{ACLs: []ACL{
		acl("User:alice", ResourceTopic, PatternPrefixed, "orders-", OpRead, PermissionAllow),
		acl("User:alice", ResourceTopic, PatternLiteral, "orders-secret", OpAll, PermissionDeny),
		acl("User:*", ResourceTopic, PatternLiteral, "public", OpWrite, PermissionAllow),
		acl("User:bob", ResourceGroup, PatternLiteral, "*", OpRead, PermissionAllow),
		acl("User:ops", ResourceTopic, PatternLiteral, "cfg", OpAlterConfigs, PermissionAllow),
		acl("User:ops", ResourceCluster, PatternLiteral, ClusterResourceName, OpAll, PermissionAllow),
	}})
	mustApply(t, s, CreateACLs{ACLs: []ACL{acl("User:*", ResourceTopic, PatternLiteral, "public", OpWrite, PermissionAllow)}})
	if len(s.ACLs) != 6 {
		t.Fatalf("%d ACLs after adding one twice, want 6", len(s.ACLs))
	}
	for _, tc := range []struct {
		principal, resType, name, op string
		want                         bool
	}{
		{"User:alice", ResourceTopic, "orders-eu", OpRead, true},
		{"User:alice", ResourceTopic, "orders-eu", OpDescribe, true}, // read implies describe
		{"User:alice", ResourceTopic, "orders-eu", OpWrite, false},
		{"User:alice", ResourceTopic, "orders-secret", OpRead, false}, // deny wins
		{"User:alice", ResourceTopic, "payments", OpRead, false},      // nothing matches
		{"User:carol", ResourceTopic, "public", OpWrite, true},        // User:*
		{"User:carol", ResourceTopic, "public", OpRead, false},
		{"User:bob", ResourceGroup, "any-group", OpRead, true}, // literal *
		{"User:bob", ResourceTopic, "any-group", OpRead, false},
		{"User:ops", ResourceTopic, "cfg", OpDescribeConfigs, true}, // alter_configs implies it
		{"User:ops", ResourceTopic, "cfg", OpAlter, false},
		{"User:ops", ResourceCluster, ClusterResourceName, OpCreate, true}, // all
	} {
		if got := s.Authorized(tc.principal, "10.0.0.1", tc.resType, tc.name, tc.op); got != tc.want {
			t.Errorf("%s %s on %s %s: %v, want %v", tc.principal, tc.op, tc.resType, tc.name, got, tc.want)
		}
	}
	before := s.Clone()
	mustApply(t, s, DeleteACLs{ACLs: []ACL{acl("User:alice", ResourceTopic, PatternLiteral, "orders-secret", OpAll, PermissionDeny)}})
	if !s.Authorized("User:alice", "h", ResourceTopic, "orders-secret", OpRead) {
		t.Fatal("the deny is still in force after its deletion")
	}
	if before.Authorized("User:alice", "h", ResourceTopic, "orders-secret", OpRead) {
		t.Fatal("a clone taken before the deletion changed")
	}
}
