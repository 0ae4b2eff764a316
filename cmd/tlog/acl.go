package main

// tlog acl create|list|delete: ACLs, through CreateAcls, DescribeAcls and
// DeleteAcls, with kafka-acls.sh's spellings (--allow-principal
// User:alice --operation read --topic orders). The agents need
// --authorizer acl: without it they answer SECURITY_DISABLED.

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/urfave/cli/v2"
)

func aclCommand() *cli.Command {
	resourceFlags := func(patternDefault string) []cli.Flag {
		return []cli.Flag{
			multiFlag("topic", "a topic (repeatable; * is every topic)"),
			multiFlag("group", "a consumer group (repeatable; * is every group)"),
			multiFlag("transactional-id", "a transactional id (repeatable; * is every one)"),
			&cli.BoolFlag{Name: "cluster", Usage: "the cluster itself (CREATE topics, ALTER and DESCRIBE ACLs and users, CLUSTER_ACTION, ...)"},
			&cli.StringFlag{Name: "resource-pattern-type", Value: patternDefault, Usage: "literal or prefixed" + map[bool]string{true: "; to select, also any or match (what applies to the name)"}[patternDefault != "literal"]},
		}
	}
	return &cli.Command{
		Name:  "acl",
		Usage: "create, list and delete ACLs (the agents need --authorizer acl)",
		Subcommands: []*cli.Command{
			{
				Name:  "create",
				Usage: "allow or deny principals operations on resources",
				Description: "Every combination of the principals, hosts, operations and resources given is one ACL.\n" +
					"Operations: all, read, write, create, delete, alter, describe, cluster_action,\n" +
					"describe_configs, alter_configs, idempotent_write.\n\n" +
					"  tlog acl create --allow-principal User:alice --operation read --operation describe --topic orders\n" +
					"  tlog acl create --allow-principal User:alice --operation read --group billing\n" +
					"  tlog acl create --allow-principal User:etl --operation write --topic etl- --resource-pattern-type prefixed\n\n" +
					exitCodesHelp,
				Flags: append([]cli.Flag{
					multiFlag("allow-principal", "User:NAME allowed (repeatable; User:* is everyone)"),
					multiFlag("deny-principal", "User:NAME denied (repeatable; a DENY wins over every ALLOW)"),
					multiFlag("allow-host", "address the allowed principals may connect from (repeatable; default *)"),
					multiFlag("deny-host", "address the denied principals are denied from (repeatable; default *)"),
					multiFlag("operation", "operation (repeatable, or comma-separated)"),
				}, resourceFlags("literal")...),
				Action: withArgs("", 0, 0, aclCreate),
			},
			{
				Name:    "list",
				Aliases: []string{"ls"},
				Usage:   "list ACLs, all or those matching the filters given",
				Description: "Prints RESOURCE NAME PATTERN PRINCIPAL HOST OPERATION PERMISSION.\n" +
					"--resource-pattern-type match with --topic T lists every ACL that applies to T.\n\n" + exitCodesHelp,
				Flags: append([]cli.Flag{
					&cli.StringFlag{Name: "principal", Usage: "only this principal's ACLs"},
				}, resourceFlags("any")...),
				Action: withArgs("", 0, 0, aclList),
			},
			{
				Name:  "delete",
				Usage: "delete the ACLs matching the filters given",
				Description: "Give at least a resource or --principal; every ACL matching all the filters given is\n" +
					"deleted and printed.\n\n" + exitCodesHelp,
				Flags: append([]cli.Flag{
					&cli.StringFlag{Name: "principal", Usage: "only this principal's ACLs"},
					&cli.StringFlag{Name: "host", Usage: "only ACLs for this host"},
					multiFlag("operation", "only these operations (repeatable, or comma-separated)"),
					&cli.StringFlag{Name: "permission", Usage: "only allow or deny ACLs"},
				}, resourceFlags("literal")...),
				Action: withArgs("", 0, 0, aclDelete),
			},
		},
	}
}

var aclOperationNames = map[string]kmsg.ACLOperation{
	"all": kmsg.ACLOperationAll, "read": kmsg.ACLOperationRead, "write": kmsg.ACLOperationWrite,
	"create": kmsg.ACLOperationCreate, "delete": kmsg.ACLOperationDelete, "alter": kmsg.ACLOperationAlter,
	"describe": kmsg.ACLOperationDescribe, "cluster_action": kmsg.ACLOperationClusterAction,
	"describe_configs": kmsg.ACLOperationDescribeConfigs, "alter_configs": kmsg.ACLOperationAlterConfigs,
	"idempotent_write": kmsg.ACLOperationIdempotentWrite,
}

// aclOperationsOf parses --operation values (repeatable and
// comma-separated, any case, '-' or '_').
func aclOperationsOf(c *cli.Context) ([]kmsg.ACLOperation, error) {
	var ops []kmsg.ACLOperation
	for _, v := range multi(c, "operation") {
		for _, name := range strings.Split(v, ",") {
			key := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(name)), "-", "_")
			op, ok := aclOperationNames[key]
			if !ok {
				return nil, fail(2, "bad --operation %q: give one of all, read, write, create, delete, alter, describe, cluster_action, describe_configs, alter_configs, idempotent_write", name)
			}
			if !slices.Contains(ops, op) {
				ops = append(ops, op)
			}
		}
	}
	return ops, nil
}

type aclResource struct {
	typ  kmsg.ACLResourceType
	name string
}

// aclResourcesOf is the resources named by --topic, --group,
// --transactional-id and --cluster.
func aclResourcesOf(c *cli.Context) []aclResource {
	var out []aclResource
	for _, f := range []struct {
		flag string
		typ  kmsg.ACLResourceType
	}{{"topic", kmsg.ACLResourceTypeTopic}, {"group", kmsg.ACLResourceTypeGroup}, {"transactional-id", kmsg.ACLResourceTypeTransactionalId}} {
		for _, n := range multi(c, f.flag) {
			out = append(out, aclResource{f.typ, n})
		}
	}
	if c.Bool("cluster") {
		out = append(out, aclResource{kmsg.ACLResourceTypeCluster, "kafka-cluster"})
	}
	return out
}

func aclPatternOf(c *cli.Context, filter bool) (kmsg.ACLResourcePatternType, error) {
	v := strings.ToLower(c.String("resource-pattern-type"))
	switch {
	case v == "literal":
		return kmsg.ACLResourcePatternTypeLiteral, nil
	case v == "prefixed":
		return kmsg.ACLResourcePatternTypePrefixed, nil
	case v == "any" && filter:
		return kmsg.ACLResourcePatternTypeAny, nil
	case v == "match" && filter:
		return kmsg.ACLResourcePatternTypeMatch, nil
	}
	if filter {
		return 0, fail(2, "bad --resource-pattern-type %q: give literal, prefixed, any or match", v)
	}
	return 0, fail(2, "bad --resource-pattern-type %q: give literal or prefixed", v)
}

func aclCreate(c *cli.Context, _ []string) error {
	ops, err := aclOperationsOf(c)
	if err != nil {
		return err
	}
	pattern, err := aclPatternOf(c, false)
	if err != nil {
		return err
	}
	resources := aclResourcesOf(c)
	allow, deny := multi(c, "allow-principal"), multi(c, "deny-principal")
	switch {
	case len(allow)+len(deny) == 0:
		return fail(2, "give --allow-principal or --deny-principal (User:NAME)")
	case len(ops) == 0:
		return fail(2, "give --operation")
	case len(resources) == 0:
		return fail(2, "give a resource: --topic, --group, --transactional-id or --cluster")
	}
	for _, p := range append(slices.Clone(allow), deny...) {
		if !strings.HasPrefix(p, "User:") || len(p) == len("User:") {
			return fail(2, "bad principal %q: give User:NAME (User:* for everyone)", p)
		}
	}
	hostsOr := func(flag string) []string {
		if h := multi(c, flag); len(h) > 0 {
			return h
		}
		return []string{"*"}
	}
	req := kmsg.NewPtrCreateACLsRequest()
	add := func(principals, hosts []string, perm kmsg.ACLPermissionType) {
		for _, p := range principals {
			for _, h := range hosts {
				for _, op := range ops {
					for _, r := range resources {
						cr := kmsg.NewCreateACLsRequestCreation()
						cr.ResourceType, cr.ResourceName, cr.ResourcePatternType = r.typ, r.name, pattern
						if r.typ == kmsg.ACLResourceTypeCluster {
							cr.ResourcePatternType = kmsg.ACLResourcePatternTypeLiteral
						}
						cr.Principal, cr.Host, cr.Operation, cr.PermissionType = p, h, op, perm
						req.Creations = append(req.Creations, cr)
					}
				}
			}
		}
	}
	add(allow, hostsOr("allow-host"), kmsg.ACLPermissionTypeAllow)
	add(deny, hostsOr("deny-host"), kmsg.ACLPermissionTypeDeny)
	cl, ctx, done, err := rawClient(c)
	if err != nil {
		return err
	}
	defer done()
	kresp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return requestErr(c, "create ACLs", err)
	}
	var failed []string
	for i, res := range kresp.Results {
		cr := req.Creations[i]
		if err := kerr.ErrorForCode(res.ErrorCode); err != nil {
			failed = append(failed, fmt.Sprintf("%s: %s", describeCreation(cr), errWithMsg(err, res.ErrorMessage)))
			continue
		}
		fmt.Fprintf(c.App.Writer, "created: %s\n", describeCreation(cr))
	}
	if len(failed) > 0 {
		return fail(1, "create ACLs:\n  %s", strings.Join(failed, "\n  "))
	}
	return nil
}

func describeCreation(cr kmsg.CreateACLsRequestCreation) string {
	return fmt.Sprintf("%s %s %s on %s %s:%s from %s", strings.ToLower(cr.PermissionType.String()), cr.Principal,
		strings.ToLower(cr.Operation.String()), strings.ToLower(cr.ResourceType.String()),
		strings.ToLower(cr.ResourcePatternType.String()), cr.ResourceName, cr.Host)
}

func errWithMsg(err error, msg *string) string {
	if msg != nil && *msg != "" {
		return fmt.Sprintf("%v (%s)", err, *msg)
	}
	return err.Error()
}

// aclFilters is one DescribeAcls/DeleteAcls filter per resource named, or
// one for every resource when none is.
func aclFilters(c *cli.Context) ([]kmsg.DeleteACLsRequestFilter, error) {
	pattern, err := aclPatternOf(c, true)
	if err != nil {
		return nil, err
	}
	base := kmsg.NewDeleteACLsRequestFilter()
	base.ResourceType, base.ResourcePatternType = kmsg.ACLResourceTypeAny, pattern
	base.Operation, base.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	if p := c.String("principal"); p != "" {
		if !strings.HasPrefix(p, "User:") || len(p) == len("User:") {
			return nil, fail(2, "bad --principal %q: give User:NAME", p)
		}
		base.Principal = kmsg.StringPtr(p)
	}
	if c.IsSet("host") {
		base.Host = kmsg.StringPtr(c.String("host"))
	}
	if c.IsSet("permission") {
		switch strings.ToLower(c.String("permission")) {
		case "allow":
			base.PermissionType = kmsg.ACLPermissionTypeAllow
		case "deny":
			base.PermissionType = kmsg.ACLPermissionTypeDeny
		default:
			return nil, fail(2, "bad --permission %q: give allow or deny", c.String("permission"))
		}
	}
	ops := []kmsg.ACLOperation{kmsg.ACLOperationAny}
	if c.Command.Names()[0] == "delete" {
		given, err := aclOperationsOf(c)
		if err != nil {
			return nil, err
		}
		if len(given) > 0 {
			ops = given
		}
	}
	resources := aclResourcesOf(c)
	var out []kmsg.DeleteACLsRequestFilter
	for _, op := range ops {
		if len(resources) == 0 {
			f := base
			f.Operation = op
			out = append(out, f)
		}
		for _, r := range resources {
			f := base
			f.Operation = op
			f.ResourceType, f.ResourceName = r.typ, kmsg.StringPtr(r.name)
			if r.typ == kmsg.ACLResourceTypeCluster && pattern == kmsg.ACLResourcePatternTypePrefixed {
				f.ResourcePatternType = kmsg.ACLResourcePatternTypeLiteral
			}
			out = append(out, f)
		}
	}
	return out, nil
}

func aclList(c *cli.Context, _ []string) error {
	filters, err := aclFilters(c)
	if err != nil {
		return err
	}
	cl, ctx, done, err := rawClient(c)
	if err != nil {
		return err
	}
	defer done()
	tw := newTable(c.App.Writer)
	fmt.Fprintln(tw, "RESOURCE\tNAME\tPATTERN\tPRINCIPAL\tHOST\tOPERATION\tPERMISSION")
	seen := map[string]bool{}
	for _, f := range filters {
		req := kmsg.NewPtrDescribeACLsRequest()
		req.ResourceType, req.ResourceName, req.ResourcePatternType = f.ResourceType, f.ResourceName, f.ResourcePatternType
		req.Principal, req.Host, req.Operation, req.PermissionType = f.Principal, f.Host, f.Operation, f.PermissionType
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return requestErr(c, "list ACLs", err)
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return fail(1, "list ACLs: %s", errWithMsg(err, resp.ErrorMessage))
		}
		for _, r := range resp.Resources {
			for _, a := range r.ACLs {
				line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s", strings.ToLower(r.ResourceType.String()), r.ResourceName,
					strings.ToLower(r.ResourcePatternType.String()), a.Principal, a.Host,
					strings.ToLower(a.Operation.String()), strings.ToLower(a.PermissionType.String()))
				if !seen[line] {
					seen[line] = true
					fmt.Fprintln(tw, line)
				}
			}
		}
	}
	return tw.Flush()
}

func aclDelete(c *cli.Context, _ []string) error {
	if len(aclResourcesOf(c)) == 0 && c.String("principal") == "" {
		return fail(2, "give a resource (--topic, --group, --transactional-id, --cluster) or --principal: delete does not take every ACL at once")
	}
	filters, err := aclFilters(c)
	if err != nil {
		return err
	}
	cl, ctx, done, err := rawClient(c)
	if err != nil {
		return err
	}
	defer done()
	req := kmsg.NewPtrDeleteACLsRequest()
	req.Filters = filters
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return requestErr(c, "delete ACLs", err)
	}
	var failed []string
	n := 0
	for _, res := range resp.Results {
		if err := kerr.ErrorForCode(res.ErrorCode); err != nil {
			failed = append(failed, errWithMsg(err, res.ErrorMessage))
			continue
		}
		for _, m := range res.MatchingACLs {
			n++
			fmt.Fprintf(c.App.Writer, "deleted: %s %s %s on %s %s:%s from %s\n", strings.ToLower(m.PermissionType.String()), m.Principal,
				strings.ToLower(m.Operation.String()), strings.ToLower(m.ResourceType.String()),
				strings.ToLower(m.ResourcePatternType.String()), m.ResourceName, m.Host)
		}
	}
	if len(failed) > 0 {
		return fail(1, "delete ACLs: %s", strings.Join(failed, "; "))
	}
	if n == 0 {
		fmt.Fprintln(c.App.Writer, "no ACL matched")
	}
	return nil
}

// rawClient is a connected client for requests kadm has no call for in
// the shape needed, with the admin timeout.
func rawClient(c *cli.Context) (*kgo.Client, context.Context, func(), error) {
	cl, err := connect(c)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(c.Context, adminTimeout)
	return cl, ctx, func() { cancel(); cl.Close() }, nil
}
