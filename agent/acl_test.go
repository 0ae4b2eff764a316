package agent_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/tlog-io/tlog/agent"
	"github.com/tlog-io/tlog/agent/kafka"
)

// aclGrant is one ALLOW for the principal under test.
type aclGrant struct {
	typ  kmsg.ACLResourceType
	name string
	op   kmsg.ACLOperation
}

// aclCase is one API as a principal without ACLs, then with grant, sees
// it. code extracts the answer's error code for the resource asked about;
// for APIs that filter rather than refuse it returns errAbsent when the
// resource is left out.
type aclCase struct {
	name  string
	key   int16
	req   func() kmsg.Request
	code  func(kmsg.Response) int16
	deny  int16
	grant []aclGrant
	pre   []aclGrant // held while denied too: the case aims at a later check
	old   bool       // sent at Kafka 3.5's versions (AddPartitionsToTxn's client form)
}

const errAbsent = -100

var authCodes = []int16{kerr.TopicAuthorizationFailed.Code, kerr.GroupAuthorizationFailed.Code,
	kerr.ClusterAuthorizationFailed.Code, kerr.TransactionalIDAuthorizationFailed.Code, errAbsent}

// Every API under --authorizer acl: a principal with no ACLs gets Kafka's
// authorization error (or, for listings, is not shown the resource) and
// nothing any API can see changes; given the ACLs Kafka asks for, the same
// request gets past the authorizer. Every API the agent serves has a case
// here or is named as open to every authenticated principal.
func TestAuthorizerEveryAPI(t *testing.T) {
	t.Parallel()
	a := startAgent(t, func(c *agent.Config) {
		c.Listeners = []kafka.ListenerSpec{
			{Name: "SASL", Protocol: kafka.SASLPlaintext, Addr: "127.0.0.1:0"},
		}
		c.BootstrapUser, c.BootstrapPassword = "admin", "admin-secret"
		c.Authorizer = true
	})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	addr := a.KafkaAddrs()["SASL"]
	newClient := func(user, pass string) *kgo.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()),
			kgo.RequestRetries(0))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	admCl := newClient("admin", "admin-secret")
	adm := kadm.NewClient(admCl)
	var err error
	for deadline := time.Now().Add(20 * time.Second); ; {
		if _, err = adm.BrokerMetadata(ctx); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("admin login: %v", err)
	}
	if res, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "alice", Mechanism: kadm.ScramSha512, Iterations: 4096, Password: "alice-secret"}}); err != nil || res.Error() != nil {
		t.Fatalf("create alice: %v %v", err, res.Error())
	}

	// The world alice is refused to change: topics t (with records) and
	// doomed, groups g and g2 with offsets, transactional id tx.
	for _, name := range []string{"t", "doomed"} {
		if _, err := adm.CreateTopic(ctx, 1, 1, nil, name); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
	}
	if err := admCl.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte("a")}, &kgo.Record{Topic: "t", Value: []byte("b")}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	for _, g := range []string{"g", "g2"} {
		offs := kadm.Offsets{}
		offs.Add(kadm.Offset{Topic: "t", Partition: 0, At: 1, LeaderEpoch: -1})
		if _, err := adm.CommitOffsets(ctx, g, offs); err != nil {
			t.Fatalf("commit for %s: %v", g, err)
		}
	}
	initTx := kmsg.NewPtrInitProducerIDRequest()
	initTx.TransactionalID, initTx.TransactionTimeoutMillis = kmsg.StringPtr("tx"), 60000
	var pid int64
	var epoch int16
	checkForNoErr(t, func() error {
		resp, err := initTx.RequestWith(ctx, admCl)
		if err != nil {
			return err
		}
		pid, epoch = resp.ProducerID, resp.ProducerEpoch
		return kerr.ErrorForCode(resp.ErrorCode)
	})

	alice := newClient("alice", "alice-secret")
	if _, err := kadm.NewClient(alice).BrokerMetadata(ctx); err != nil {
		t.Fatalf("alice login: %v", err)
	}
	broker := alice.Broker(int(a.ID()))
	aliceOld, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.SASL(scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha512Mechanism()),
		kgo.RequestRetries(0), kgo.MaxVersions(kversion.V3_5_0()))
	if err != nil {
		t.Fatal(err)
	}
	defer aliceOld.Close()
	if _, err := kadm.NewClient(aliceOld).BrokerMetadata(ctx); err != nil {
		t.Fatalf("alice login: %v", err)
	}
	brokerOld := aliceOld.Broker(int(a.ID()))
	tds, err := adm.ListTopics(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	topicID := tds["t"].ID

	// fingerprint is everything the denied requests could have changed,
	// as the super user sees it.
	fingerprint := func() string {
		var b strings.Builder
		tds, err := adm.ListTopics(ctx)
		if err != nil {
			t.Fatalf("list topics: %v", err)
		}
		for _, td := range tds.Sorted() {
			fmt.Fprintf(&b, "topic %s %d;", td.Topic, len(td.Partitions))
		}
		cfgs, err := adm.DescribeTopicConfigs(ctx, "t")
		if err != nil {
			t.Fatalf("describe configs: %v", err)
		}
		for _, rc := range cfgs {
			for _, c := range rc.Configs {
				if c.Source == kmsg.ConfigSourceDynamicTopicConfig {
					fmt.Fprintf(&b, "config %s=%s;", c.Key, c.MaybeValue())
				}
			}
		}
		starts, err := adm.ListStartOffsets(ctx, "t")
		if err != nil {
			t.Fatalf("start offsets: %v", err)
		}
		ends, err := adm.ListEndOffsets(ctx, "t")
		if err != nil {
			t.Fatalf("end offsets: %v", err)
		}
		s, _ := starts.Lookup("t", 0)
		e, _ := ends.Lookup("t", 0)
		fmt.Fprintf(&b, "t/0 %d-%d;", s.Offset, e.Offset)
		groups, err := adm.ListGroups(ctx)
		if err != nil {
			t.Fatalf("list groups: %v", err)
		}
		for _, g := range groups.Sorted() {
			offs, err := adm.FetchOffsets(ctx, g.Group)
			if err != nil {
				t.Fatalf("fetch offsets of %s: %v", g.Group, err)
			}
			fmt.Fprintf(&b, "group %s %s", g.Group, g.State)
			offs.Each(func(o kadm.OffsetResponse) { fmt.Fprintf(&b, " %s/%d@%d", o.Topic, o.Partition, o.At) })
			b.WriteString(";")
		}
		users, err := adm.DescribeUserSCRAMs(ctx)
		if err != nil {
			t.Fatalf("users: %v", err)
		}
		for _, u := range users.Sorted() {
			fmt.Fprintf(&b, "user %s %d;", u.User, len(u.CredInfos))
		}
		acls := kmsg.NewPtrDescribeACLsRequest()
		acls.ResourceType, acls.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
		acls.Operation, acls.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
		aresp, err := acls.RequestWith(ctx, admCl)
		if err != nil || aresp.ErrorCode != 0 {
			t.Fatalf("describe ACLs: %v %d", err, aresp.ErrorCode)
		}
		var lines []string
		for _, r := range aresp.Resources {
			for _, x := range r.ACLs {
				lines = append(lines, fmt.Sprintf("acl %v %s %v %s %v %v;", r.ResourceType, r.ResourceName, r.ResourcePatternType, x.Principal, x.Operation, x.PermissionType))
			}
		}
		sort.Strings(lines)
		b.WriteString(strings.Join(lines, ""))
		quotas, err := adm.DescribeClientQuotas(ctx, false, nil)
		if err != nil {
			t.Fatalf("describe quotas: %v", err)
		}
		for _, q := range quotas {
			fmt.Fprintf(&b, "quota %s %v;", q.Entity, q.Values)
		}
		dt := kmsg.NewPtrDescribeTransactionsRequest()
		dt.TransactionalIDs = []string{"tx"}
		dresp, err := dt.RequestWith(ctx, admCl)
		if err != nil {
			t.Fatalf("describe transactions: %v", err)
		}
		for _, ts := range dresp.TransactionStates {
			fmt.Fprintf(&b, "txn %s %s %d/%d %d topics;", ts.TransactionalID, ts.State, ts.ProducerID, ts.ProducerEpoch, len(ts.Topics))
		}
		return b.String()
	}

	grant := func(gs []aclGrant, create bool) {
		t.Helper()
		if create {
			req := kmsg.NewPtrCreateACLsRequest()
			for _, g := range gs {
				c := kmsg.NewCreateACLsRequestCreation()
				c.ResourceType, c.ResourceName, c.ResourcePatternType = g.typ, g.name, kmsg.ACLResourcePatternTypeLiteral
				c.Principal, c.Host, c.Operation, c.PermissionType = "User:alice", "*", g.op, kmsg.ACLPermissionTypeAllow
				req.Creations = append(req.Creations, c)
			}
			resp, err := req.RequestWith(ctx, admCl)
			if err != nil {
				t.Fatalf("create ACLs: %v", err)
			}
			for _, r := range resp.Results {
				if r.ErrorCode != 0 {
					t.Fatalf("create ACLs: %v %s", kerr.ErrorForCode(r.ErrorCode), deref(r.ErrorMessage))
				}
			}
			return
		}
		req := kmsg.NewPtrDeleteACLsRequest()
		f := kmsg.NewDeleteACLsRequestFilter()
		f.ResourceType, f.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
		f.Operation, f.PermissionType, f.Principal = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny, kmsg.StringPtr("User:alice")
		req.Filters = append(req.Filters, f)
		if resp, err := req.RequestWith(ctx, admCl); err != nil || resp.Results[0].ErrorCode != 0 {
			t.Fatalf("delete ACLs: %v", err)
		}
	}

	topicT := func(op kmsg.ACLOperation) aclGrant { return aclGrant{kmsg.ACLResourceTypeTopic, "t", op} }
	group := func(name string, op kmsg.ACLOperation) aclGrant {
		return aclGrant{kmsg.ACLResourceTypeGroup, name, op}
	}
	txnID := func(op kmsg.ACLOperation) aclGrant { return aclGrant{kmsg.ACLResourceTypeTransactionalId, "tx", op} }
	cluster := func(op kmsg.ACLOperation) aclGrant { return aclGrant{kmsg.ACLResourceTypeCluster, "kafka-cluster", op} }

	cases := []aclCase{
		{name: "Produce", key: 0, deny: kerr.TopicAuthorizationFailed.Code, grant: []aclGrant{topicT(kmsg.ACLOperationWrite)},
			req: func() kmsg.Request { return produceReq(-1, "t", 0, mkBatch(plainBatch(), "x")) },
			code: func(r kmsg.Response) int16 {
				return r.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
			}},
		{name: "Fetch", key: 1, deny: kerr.TopicAuthorizationFailed.Code, grant: []aclGrant{topicT(kmsg.ACLOperationRead)},
			req: func() kmsg.Request {
				req := fetchReq(0, 0, 1<<20)
				addFetch(req, "t", topicID, 0, 0, 1<<20)
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.FetchResponse).Topics[0].Partitions[0].ErrorCode }},
		{name: "ListOffsets", key: 2, deny: kerr.TopicAuthorizationFailed.Code, grant: []aclGrant{topicT(kmsg.ACLOperationDescribe)},
			req: func() kmsg.Request {
				req := kmsg.NewPtrListOffsetsRequest()
				rt := kmsg.NewListOffsetsRequestTopic()
				rt.Topic = "t"
				rp := kmsg.NewListOffsetsRequestTopicPartition()
				rp.Timestamp = -1
				rt.Partitions = append(rt.Partitions, rp)
				req.Topics = append(req.Topics, rt)
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0].ErrorCode }},
		{name: "Metadata", key: 3, deny: kerr.TopicAuthorizationFailed.Code, grant: []aclGrant{topicT(kmsg.ACLOperationDescribe)},
			req: func() kmsg.Request {
				req := kmsg.NewPtrMetadataRequest()
				rt := kmsg.NewMetadataRequestTopic()
				rt.Topic = kmsg.StringPtr("t")
				req.Topics = append(req.Topics, rt)
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.MetadataResponse).Topics[0].ErrorCode }},
		{name: "Metadata all topics", key: 3, deny: errAbsent, grant: []aclGrant{topicT(kmsg.ACLOperationDescribe)},
			req: func() kmsg.Request { return kmsg.NewPtrMetadataRequest() },
			code: func(r kmsg.Response) int16 {
				for _, t := range r.(*kmsg.MetadataResponse).Topics {
					if deref(t.Topic) == "t" {
						return t.ErrorCode
					}
				}
				return errAbsent
			}},
		{name: "Metadata auto-create", key: 3, deny: kerr.TopicAuthorizationFailed.Code,
			grant: []aclGrant{{kmsg.ACLResourceTypeTopic, "auto", kmsg.ACLOperationDescribe}, {kmsg.ACLResourceTypeTopic, "auto", kmsg.ACLOperationCreate}},
			req: func() kmsg.Request {
				req := kmsg.NewPtrMetadataRequest()
				rt := kmsg.NewMetadataRequestTopic()
				rt.Topic = kmsg.StringPtr("auto")
				req.Topics = append(req.Topics, rt)
				req.AllowAutoTopicCreation = true
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.MetadataResponse).Topics[0].ErrorCode }},
		{name: "OffsetCommit", key: 8, deny: kerr.GroupAuthorizationFailed.Code, grant: []aclGrant{group("g", kmsg.ACLOperationRead), topicT(kmsg.ACLOperationRead)},
			req: func() kmsg.Request {
				req := kmsg.NewPtrOffsetCommitRequest()
				req.Group, req.Generation = "g", -1
				rt := kmsg.NewOffsetCommitRequestTopic()
				rt.Topic = "t"
				rp := kmsg.NewOffsetCommitRequestTopicPartition()
				rp.Offset = 2
				rt.Partitions = append(rt.Partitions, rp)
				req.Topics = append(req.Topics, rt)
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode }},
		{name: "OffsetCommit topic", key: 8, deny: kerr.TopicAuthorizationFailed.Code,
			pre: []aclGrant{group("g", kmsg.ACLOperationRead)}, grant: []aclGrant{group("g", kmsg.ACLOperationRead), topicT(kmsg.ACLOperationRead)},
			req: func() kmsg.Request {
				req := kmsg.NewPtrOffsetCommitRequest()
				req.Group, req.Generation = "g", -1
				rt := kmsg.NewOffsetCommitRequestTopic()
				rt.Topic = "t"
				rp := kmsg.NewOffsetCommitRequestTopicPartition()
				rp.Offset = 2
				rt.Partitions = append(rt.Partitions, rp)
				req.Topics = append(req.Topics, rt)
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode }},
		{name: "OffsetFetch", key: 9, deny: kerr.GroupAuthorizationFailed.Code, grant: []aclGrant{group("g", kmsg.ACLOperationDescribe)},
			req: func() kmsg.Request {
				req := kmsg.NewPtrOffsetFetchRequest()
				rg := kmsg.NewOffsetFetchRequestGroup()
				rg.Group = "g"
				req.Groups = append(req.Groups, rg)
				req.Group = "g"
				return req
			},
			code: func(r kmsg.Response) int16 {
				resp := r.(*kmsg.OffsetFetchResponse)
				if resp.Version >= 8 {
					return resp.Groups[0].ErrorCode
				}
				return resp.ErrorCode
			}},
		{name: "FindCoordinator group", key: 10, deny: kerr.GroupAuthorizationFailed.Code, grant: []aclGrant{group("g", kmsg.ACLOperationDescribe)},
			req: func() kmsg.Request {
				req := kmsg.NewPtrFindCoordinatorRequest()
				req.CoordinatorKey, req.CoordinatorKeys = "g", []string{"g"}
				return req
			},
			code: func(r kmsg.Response) int16 {
				resp := r.(*kmsg.FindCoordinatorResponse)
				if resp.Version >= 4 {
					return resp.Coordinators[0].ErrorCode
				}
				return resp.ErrorCode
			}},
		{name: "FindCoordinator transaction", key: 10, deny: kerr.TransactionalIDAuthorizationFailed.Code, grant: []aclGrant{txnID(kmsg.ACLOperationDescribe)},
			req: func() kmsg.Request {
				req := kmsg.NewPtrFindCoordinatorRequest()
				req.CoordinatorType = 1
				req.CoordinatorKey, req.CoordinatorKeys = "tx", []string{"tx"}
				return req
			},
			code: func(r kmsg.Response) int16 {
				resp := r.(*kmsg.FindCoordinatorResponse)
				if resp.Version >= 4 {
					return resp.Coordinators[0].ErrorCode
				}
				return resp.ErrorCode
			}},
		{name: "JoinGroup", key: 11, deny: kerr.GroupAuthorizationFailed.Code, grant: []aclGrant{group("g3", kmsg.ACLOperationRead)},
			req: func() kmsg.Request {
				req := kmsg.NewPtrJoinGroupRequest()
				req.Group, req.ProtocolType = "g3", "consumer"
				req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 10000, 10000
				p := kmsg.NewJoinGroupRequestProtocol()
				p.Name, p.Metadata = "range", []byte{0, 1, 0, 0, 0, 0, 0, 0, 0, 0}
				req.Protocols = append(req.Protocols, p)
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.JoinGroupResponse).ErrorCode }},
		{name: "Heartbeat", key: 12, deny: kerr.GroupAuthorizationFailed.Code, grant: []aclGrant{group("g", kmsg.ACLOperationRead)},
			req: func() kmsg.Request {
				req := kmsg.NewPtrHeartbeatRequest()
				req.Group, req.MemberID, req.Generation = "g", "nobody", 1
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.HeartbeatResponse).ErrorCode }},
		{name: "LeaveGroup", key: 13, deny: kerr.GroupAuthorizationFailed.Code, grant: []aclGrant{group("g", kmsg.ACLOperationRead)},
			req: func() kmsg.Request {
				req := kmsg.NewPtrLeaveGroupRequest()
				req.Group, req.MemberID = "g", "nobody"
				m := kmsg.NewLeaveGroupRequestMember()
				m.MemberID = "nobody"
				req.Members = append(req.Members, m)
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.LeaveGroupResponse).ErrorCode }},
		{name: "SyncGroup", key: 14, deny: kerr.GroupAuthorizationFailed.Code, grant: []aclGrant{group("g", kmsg.ACLOperationRead)},
			req: func() kmsg.Request {
				req := kmsg.NewPtrSyncGroupRequest()
				req.Group, req.MemberID, req.Generation = "g", "nobody", 1
				req.ProtocolType, req.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.SyncGroupResponse).ErrorCode }},
		{name: "DescribeGroups", key: 15, deny: kerr.GroupAuthorizationFailed.Code, grant: []aclGrant{group("g", kmsg.ACLOperationDescribe)},
			req: func() kmsg.Request {
				req := kmsg.NewPtrDescribeGroupsRequest()
				req.Groups = []string{"g"}
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.DescribeGroupsResponse).Groups[0].ErrorCode }},
		{name: "ListGroups", key: 16, deny: errAbsent, grant: []aclGrant{group("g", kmsg.ACLOperationDescribe)},
			req: func() kmsg.Request { return kmsg.NewPtrListGroupsRequest() },
			code: func(r kmsg.Response) int16 {
				resp := r.(*kmsg.ListGroupsResponse)
				for _, g := range resp.Groups {
					if g.Group == "g" {
						return resp.ErrorCode
					}
				}
				return errAbsent
			}},
		{name: "CreateTopics", key: 19, deny: kerr.TopicAuthorizationFailed.Code, grant: []aclGrant{cluster(kmsg.ACLOperationCreate)},
			req: func() kmsg.Request {
				return createTopicsReq(false, topicSpec{name: "fresh", partitions: 1, rf: 1})
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode }},
		{name: "DeleteTopics", key: 20, deny: kerr.TopicAuthorizationFailed.Code, grant: []aclGrant{{kmsg.ACLResourceTypeTopic, "doomed", kmsg.ACLOperationDelete}},
			req: func() kmsg.Request {
				req := kmsg.NewPtrDeleteTopicsRequest()
				req.TopicNames = []string{"doomed"}
				rt := kmsg.NewDeleteTopicsRequestTopic()
				rt.Topic = kmsg.StringPtr("doomed")
				req.Topics = append(req.Topics, rt)
				req.TimeoutMillis = 10000
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.DeleteTopicsResponse).Topics[0].ErrorCode }},
		{name: "DeleteRecords", key: 21, deny: kerr.TopicAuthorizationFailed.Code, grant: []aclGrant{topicT(kmsg.ACLOperationDelete)},
			req: func() kmsg.Request {
				req := kmsg.NewPtrDeleteRecordsRequest()
				rt := kmsg.NewDeleteRecordsRequestTopic()
				rt.Topic = "t"
				rp := kmsg.NewDeleteRecordsRequestTopicPartition()
				rp.Offset = 1
				rt.Partitions = append(rt.Partitions, rp)
				req.Topics = append(req.Topics, rt)
				req.TimeoutMillis = 10000
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.DeleteRecordsResponse).Topics[0].Partitions[0].ErrorCode }},
		{name: "InitProducerId idempotent", key: 22, deny: kerr.ClusterAuthorizationFailed.Code, grant: []aclGrant{cluster(kmsg.ACLOperationIdempotentWrite)},
			req:  func() kmsg.Request { return kmsg.NewPtrInitProducerIDRequest() },
			code: func(r kmsg.Response) int16 { return r.(*kmsg.InitProducerIDResponse).ErrorCode }},
		{name: "InitProducerId idempotent, WRITE on a topic", key: 22, deny: kerr.ClusterAuthorizationFailed.Code, grant: []aclGrant{topicT(kmsg.ACLOperationWrite)},
			req:  func() kmsg.Request { return kmsg.NewPtrInitProducerIDRequest() },
			code: func(r kmsg.Response) int16 { return r.(*kmsg.InitProducerIDResponse).ErrorCode }},
		{name: "InitProducerId transactional", key: 22, deny: kerr.TransactionalIDAuthorizationFailed.Code, grant: []aclGrant{txnID(kmsg.ACLOperationWrite)},
			req: func() kmsg.Request {
				req := kmsg.NewPtrInitProducerIDRequest()
				req.TransactionalID, req.TransactionTimeoutMillis = kmsg.StringPtr("tx"), 60000
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.InitProducerIDResponse).ErrorCode }},
		{name: "OffsetForLeaderEpoch", key: 23, deny: kerr.TopicAuthorizationFailed.Code, grant: []aclGrant{topicT(kmsg.ACLOperationDescribe)},
			req: func() kmsg.Request {
				req := kmsg.NewPtrOffsetForLeaderEpochRequest()
				req.ReplicaID = -1
				rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
				rt.Topic = "t"
				rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
				rp.CurrentLeaderEpoch, rp.LeaderEpoch = -1, 0
				rt.Partitions = append(rt.Partitions, rp)
				req.Topics = append(req.Topics, rt)
				return req
			},
			code: func(r kmsg.Response) int16 {
				return r.(*kmsg.OffsetForLeaderEpochResponse).Topics[0].Partitions[0].ErrorCode
			}},
		{name: "AddPartitionsToTxn", key: 24, old: true, deny: kerr.TransactionalIDAuthorizationFailed.Code, grant: []aclGrant{txnID(kmsg.ACLOperationWrite), topicT(kmsg.ACLOperationWrite)},
			req: func() kmsg.Request {
				req := kmsg.NewPtrAddPartitionsToTxnRequest()
				req.TransactionalID, req.ProducerID, req.ProducerEpoch = "tx", pid, epoch
				rt := kmsg.NewAddPartitionsToTxnRequestTopic()
				rt.Topic, rt.Partitions = "t", []int32{0}
				req.Topics = append(req.Topics, rt)
				return req
			},
			code: func(r kmsg.Response) int16 {
				return r.(*kmsg.AddPartitionsToTxnResponse).Topics[0].Partitions[0].ErrorCode
			}},
		{name: "AddPartitionsToTxn topic", key: 24, old: true, deny: kerr.TopicAuthorizationFailed.Code,
			pre: []aclGrant{txnID(kmsg.ACLOperationWrite)}, grant: []aclGrant{txnID(kmsg.ACLOperationWrite), topicT(kmsg.ACLOperationWrite)},
			req: func() kmsg.Request {
				req := kmsg.NewPtrAddPartitionsToTxnRequest()
				req.TransactionalID, req.ProducerID, req.ProducerEpoch = "tx", pid, epoch
				rt := kmsg.NewAddPartitionsToTxnRequestTopic()
				rt.Topic, rt.Partitions = "t", []int32{0}
				req.Topics = append(req.Topics, rt)
				return req
			},
			code: func(r kmsg.Response) int16 {
				return r.(*kmsg.AddPartitionsToTxnResponse).Topics[0].Partitions[0].ErrorCode
			}},
		{name: "AddPartitionsToTxn batched (agents only)", key: 24, deny: kerr.ClusterAuthorizationFailed.Code, grant: []aclGrant{cluster(kmsg.ACLOperationClusterAction)},
			req: func() kmsg.Request {
				req := kmsg.NewPtrAddPartitionsToTxnRequest()
				rt := kmsg.NewAddPartitionsToTxnRequestTransaction()
				rt.TransactionalID, rt.ProducerID, rt.ProducerEpoch, rt.VerifyOnly = "tx", pid, epoch, true
				tt := kmsg.NewAddPartitionsToTxnRequestTransactionTopic()
				tt.Topic, tt.Partitions = "t", []int32{0}
				rt.Topics = append(rt.Topics, tt)
				req.Transactions = append(req.Transactions, rt)
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.AddPartitionsToTxnResponse).ErrorCode }},
		{name: "AddOffsetsToTxn", key: 25, deny: kerr.TransactionalIDAuthorizationFailed.Code, grant: []aclGrant{txnID(kmsg.ACLOperationWrite), group("g", kmsg.ACLOperationRead)},
			req: func() kmsg.Request {
				req := kmsg.NewPtrAddOffsetsToTxnRequest()
				req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group = "tx", pid, epoch, "g"
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.AddOffsetsToTxnResponse).ErrorCode }},
		{name: "AddOffsetsToTxn group", key: 25, deny: kerr.GroupAuthorizationFailed.Code,
			pre: []aclGrant{txnID(kmsg.ACLOperationWrite)}, grant: []aclGrant{txnID(kmsg.ACLOperationWrite), group("g", kmsg.ACLOperationRead)},
			req: func() kmsg.Request {
				req := kmsg.NewPtrAddOffsetsToTxnRequest()
				req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group = "tx", pid, epoch, "g"
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.AddOffsetsToTxnResponse).ErrorCode }},
		{name: "EndTxn", key: 26, deny: kerr.TransactionalIDAuthorizationFailed.Code, grant: []aclGrant{txnID(kmsg.ACLOperationWrite)},
			req: func() kmsg.Request {
				req := kmsg.NewPtrEndTxnRequest()
				req.TransactionalID, req.ProducerID, req.ProducerEpoch = "tx", pid, epoch
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.EndTxnResponse).ErrorCode }},
		{name: "WriteTxnMarkers (agents only)", key: 27, deny: kerr.ClusterAuthorizationFailed.Code, grant: []aclGrant{cluster(kmsg.ACLOperationClusterAction)},
			req: func() kmsg.Request {
				req := kmsg.NewPtrWriteTxnMarkersRequest()
				m := kmsg.NewWriteTxnMarkersRequestMarker()
				m.ProducerID, m.ProducerEpoch, m.Committed = 987654, 0, false
				mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
				mt.Topic, mt.Partitions = "t", []int32{0}
				m.Topics = append(m.Topics, mt)
				req.Markers = append(req.Markers, m)
				return req
			},
			code: func(r kmsg.Response) int16 {
				return r.(*kmsg.WriteTxnMarkersResponse).Markers[0].Topics[0].Partitions[0].ErrorCode
			}},
		{name: "TxnOffsetCommit", key: 28, deny: kerr.TransactionalIDAuthorizationFailed.Code, grant: []aclGrant{txnID(kmsg.ACLOperationWrite), group("g", kmsg.ACLOperationRead), topicT(kmsg.ACLOperationRead)},
			req: func() kmsg.Request {
				req := kmsg.NewPtrTxnOffsetCommitRequest()
				req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group, req.Generation = "tx", pid, epoch, "g", -1
				rt := kmsg.NewTxnOffsetCommitRequestTopic()
				rt.Topic = "t"
				rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
				rp.Offset = 2
				rt.Partitions = append(rt.Partitions, rp)
				req.Topics = append(req.Topics, rt)
				return req
			},
			code: func(r kmsg.Response) int16 {
				return r.(*kmsg.TxnOffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
			}},
		{name: "DescribeAcls", key: 29, deny: kerr.ClusterAuthorizationFailed.Code, grant: []aclGrant{cluster(kmsg.ACLOperationDescribe)},
			req: func() kmsg.Request {
				req := kmsg.NewPtrDescribeACLsRequest()
				req.ResourceType, req.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
				req.Operation, req.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.DescribeACLsResponse).ErrorCode }},
		{name: "CreateAcls", key: 30, deny: kerr.ClusterAuthorizationFailed.Code, grant: []aclGrant{cluster(kmsg.ACLOperationAlter)},
			req: func() kmsg.Request {
				req := kmsg.NewPtrCreateACLsRequest()
				c := kmsg.NewCreateACLsRequestCreation()
				c.ResourceType, c.ResourceName, c.ResourcePatternType = kmsg.ACLResourceTypeTopic, "*", kmsg.ACLResourcePatternTypeLiteral
				c.Principal, c.Host, c.Operation, c.PermissionType = "User:mallory", "*", kmsg.ACLOperationAll, kmsg.ACLPermissionTypeAllow
				req.Creations = append(req.Creations, c)
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.CreateACLsResponse).Results[0].ErrorCode }},
		{name: "DeleteAcls", key: 31, deny: kerr.ClusterAuthorizationFailed.Code, grant: []aclGrant{cluster(kmsg.ACLOperationAlter)},
			req: func() kmsg.Request {
				req := kmsg.NewPtrDeleteACLsRequest()
				f := kmsg.NewDeleteACLsRequestFilter()
				f.ResourceType, f.ResourcePatternType = kmsg.ACLResourceTypeTopic, kmsg.ACLResourcePatternTypeAny
				f.Operation, f.PermissionType, f.Principal = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny, kmsg.StringPtr("User:mallory")
				req.Filters = append(req.Filters, f)
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.DeleteACLsResponse).Results[0].ErrorCode }},
		{name: "DescribeConfigs topic", key: 32, deny: kerr.TopicAuthorizationFailed.Code, grant: []aclGrant{topicT(kmsg.ACLOperationDescribeConfigs)},
			req: func() kmsg.Request {
				req := kmsg.NewPtrDescribeConfigsRequest()
				rr := kmsg.NewDescribeConfigsRequestResource()
				rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, "t"
				req.Resources = append(req.Resources, rr)
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.DescribeConfigsResponse).Resources[0].ErrorCode }},
		{name: "DescribeConfigs broker", key: 32, deny: kerr.ClusterAuthorizationFailed.Code, grant: []aclGrant{cluster(kmsg.ACLOperationDescribeConfigs)},
			req: func() kmsg.Request {
				req := kmsg.NewPtrDescribeConfigsRequest()
				rr := kmsg.NewDescribeConfigsRequestResource()
				rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeBroker, fmt.Sprint(a.ID())
				req.Resources = append(req.Resources, rr)
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.DescribeConfigsResponse).Resources[0].ErrorCode }},
		{name: "AlterConfigs", key: 33, deny: kerr.TopicAuthorizationFailed.Code, grant: []aclGrant{topicT(kmsg.ACLOperationAlterConfigs)},
			req: func() kmsg.Request {
				req := kmsg.NewPtrAlterConfigsRequest()
				rr := kmsg.NewAlterConfigsRequestResource()
				rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, "t"
				c := kmsg.NewAlterConfigsRequestResourceConfig()
				c.Name, c.Value = "retention.ms", kmsg.StringPtr("1000")
				rr.Configs = append(rr.Configs, c)
				req.Resources = append(req.Resources, rr)
				req.ValidateOnly = true
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.AlterConfigsResponse).Resources[0].ErrorCode }},
		{name: "DescribeLogDirs", key: 35, deny: kerr.ClusterAuthorizationFailed.Code, grant: []aclGrant{cluster(kmsg.ACLOperationDescribe)},
			req:  func() kmsg.Request { return kmsg.NewPtrDescribeLogDirsRequest() },
			code: func(r kmsg.Response) int16 { return r.(*kmsg.DescribeLogDirsResponse).ErrorCode }},
		{name: "CreatePartitions", key: 37, deny: kerr.TopicAuthorizationFailed.Code, grant: []aclGrant{topicT(kmsg.ACLOperationAlter)},
			req: func() kmsg.Request {
				req := kmsg.NewPtrCreatePartitionsRequest()
				rt := kmsg.NewCreatePartitionsRequestTopic()
				rt.Topic, rt.Count = "t", 2
				req.Topics = append(req.Topics, rt)
				req.TimeoutMillis, req.ValidateOnly = 10000, true
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.CreatePartitionsResponse).Topics[0].ErrorCode }},
		{name: "DeleteGroups", key: 42, deny: kerr.GroupAuthorizationFailed.Code, grant: []aclGrant{group("g2", kmsg.ACLOperationDelete)},
			req: func() kmsg.Request {
				req := kmsg.NewPtrDeleteGroupsRequest()
				req.Groups = []string{"g2"}
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.DeleteGroupsResponse).Groups[0].ErrorCode }},
		{name: "IncrementalAlterConfigs topic", key: 44, deny: kerr.TopicAuthorizationFailed.Code, grant: []aclGrant{topicT(kmsg.ACLOperationAlterConfigs)},
			req: func() kmsg.Request {
				req := kmsg.NewPtrIncrementalAlterConfigsRequest()
				rr := kmsg.NewIncrementalAlterConfigsRequestResource()
				rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, "t"
				c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
				c.Name, c.Value = "retention.ms", kmsg.StringPtr("1000")
				rr.Configs = append(rr.Configs, c)
				req.Resources = append(req.Resources, rr)
				req.ValidateOnly = true
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.IncrementalAlterConfigsResponse).Resources[0].ErrorCode }},
		{name: "IncrementalAlterConfigs broker", key: 44, deny: kerr.ClusterAuthorizationFailed.Code, grant: []aclGrant{cluster(kmsg.ACLOperationAlterConfigs)},
			req: func() kmsg.Request {
				req := kmsg.NewPtrIncrementalAlterConfigsRequest()
				rr := kmsg.NewIncrementalAlterConfigsRequestResource()
				rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeBroker, fmt.Sprint(a.ID())
				c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
				c.Name, c.Value = "tlog.agent.draining", kmsg.StringPtr("false")
				rr.Configs = append(rr.Configs, c)
				req.Resources = append(req.Resources, rr)
				req.ValidateOnly = true
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.IncrementalAlterConfigsResponse).Resources[0].ErrorCode }},
		{name: "OffsetDelete", key: 47, deny: kerr.GroupAuthorizationFailed.Code, grant: []aclGrant{group("g", kmsg.ACLOperationDelete), topicT(kmsg.ACLOperationRead)},
			req: func() kmsg.Request {
				req := kmsg.NewPtrOffsetDeleteRequest()
				req.Group = "g"
				rt := kmsg.NewOffsetDeleteRequestTopic()
				rt.Topic = "t"
				rp := kmsg.NewOffsetDeleteRequestTopicPartition()
				rp.Partition = 7 // no such partition: past the authorizer, nothing to delete
				rt.Partitions = append(rt.Partitions, rp)
				req.Topics = append(req.Topics, rt)
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.OffsetDeleteResponse).ErrorCode }},
		{name: "DescribeClientQuotas", key: 48, deny: kerr.ClusterAuthorizationFailed.Code, grant: []aclGrant{cluster(kmsg.ACLOperationDescribeConfigs)},
			req:  func() kmsg.Request { return kmsg.NewPtrDescribeClientQuotasRequest() },
			code: func(r kmsg.Response) int16 { return r.(*kmsg.DescribeClientQuotasResponse).ErrorCode }},
		{name: "AlterClientQuotas", key: 49, deny: kerr.ClusterAuthorizationFailed.Code, grant: []aclGrant{cluster(kmsg.ACLOperationAlterConfigs)},
			req: func() kmsg.Request {
				req := kmsg.NewPtrAlterClientQuotasRequest()
				e := kmsg.NewAlterClientQuotasRequestEntry()
				ee := kmsg.NewAlterClientQuotasRequestEntryEntity()
				ee.Type, ee.Name = "user", kmsg.StringPtr("alice")
				e.Entity = append(e.Entity, ee)
				op := kmsg.NewAlterClientQuotasRequestEntryOp()
				op.Key, op.Value = "producer_byte_rate", 1<<30
				e.Ops = append(e.Ops, op)
				req.Entries = append(req.Entries, e)
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.AlterClientQuotasResponse).Entries[0].ErrorCode }},
		{name: "DescribeUserScramCredentials", key: 50, deny: kerr.ClusterAuthorizationFailed.Code, grant: []aclGrant{cluster(kmsg.ACLOperationDescribe)},
			req:  func() kmsg.Request { return kmsg.NewPtrDescribeUserSCRAMCredentialsRequest() },
			code: func(r kmsg.Response) int16 { return r.(*kmsg.DescribeUserSCRAMCredentialsResponse).ErrorCode }},
		{name: "AlterUserScramCredentials", key: 51, deny: kerr.ClusterAuthorizationFailed.Code, grant: []aclGrant{cluster(kmsg.ACLOperationAlter)},
			req: func() kmsg.Request {
				req := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
				d := kmsg.NewAlterUserSCRAMCredentialsRequestDeletion()
				d.Name, d.Mechanism = "nobody", 2
				req.Deletions = append(req.Deletions, d)
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.AlterUserSCRAMCredentialsResponse).Results[0].ErrorCode }},
		{name: "DescribeProducers", key: 61, deny: kerr.TopicAuthorizationFailed.Code, grant: []aclGrant{topicT(kmsg.ACLOperationRead)},
			req: func() kmsg.Request {
				req := kmsg.NewPtrDescribeProducersRequest()
				rt := kmsg.NewDescribeProducersRequestTopic()
				rt.Topic, rt.Partitions = "t", []int32{0}
				req.Topics = append(req.Topics, rt)
				return req
			},
			code: func(r kmsg.Response) int16 {
				return r.(*kmsg.DescribeProducersResponse).Topics[0].Partitions[0].ErrorCode
			}},
		{name: "DescribeTransactions", key: 65, deny: kerr.TransactionalIDAuthorizationFailed.Code, grant: []aclGrant{txnID(kmsg.ACLOperationDescribe)},
			req: func() kmsg.Request {
				req := kmsg.NewPtrDescribeTransactionsRequest()
				req.TransactionalIDs = []string{"tx"}
				return req
			},
			code: func(r kmsg.Response) int16 {
				return r.(*kmsg.DescribeTransactionsResponse).TransactionStates[0].ErrorCode
			}},
		{name: "ListTransactions", key: 66, deny: errAbsent, grant: []aclGrant{txnID(kmsg.ACLOperationDescribe)},
			req: func() kmsg.Request { return kmsg.NewPtrListTransactionsRequest() },
			code: func(r kmsg.Response) int16 {
				resp := r.(*kmsg.ListTransactionsResponse)
				for _, ts := range resp.TransactionStates {
					if ts.TransactionalID == "tx" {
						return resp.ErrorCode
					}
				}
				return errAbsent
			}},
		{name: "ConsumerGroupHeartbeat", key: 68, deny: kerr.GroupAuthorizationFailed.Code, grant: []aclGrant{group("g4", kmsg.ACLOperationRead), topicT(kmsg.ACLOperationDescribe)},
			req: func() kmsg.Request {
				req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
				req.Group, req.MemberEpoch, req.RebalanceTimeoutMillis = "g4", 0, 10000
				req.MemberID = "tlog-acl-test-member-0001"
				req.SubscribedTopicNames = []string{"t"}
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.ConsumerGroupHeartbeatResponse).ErrorCode }},
		{name: "ConsumerGroupHeartbeat topic", key: 68, deny: kerr.TopicAuthorizationFailed.Code,
			pre: []aclGrant{group("g4", kmsg.ACLOperationRead)}, grant: []aclGrant{group("g4", kmsg.ACLOperationRead), topicT(kmsg.ACLOperationDescribe)},
			req: func() kmsg.Request {
				req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
				req.Group, req.MemberEpoch, req.RebalanceTimeoutMillis = "g4", 0, 10000
				req.MemberID = "tlog-acl-test-member-0002"
				req.SubscribedTopicNames = []string{"t"}
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.ConsumerGroupHeartbeatResponse).ErrorCode }},
		{name: "ConsumerGroupDescribe", key: 69, deny: kerr.GroupAuthorizationFailed.Code, grant: []aclGrant{group("g", kmsg.ACLOperationDescribe)},
			req: func() kmsg.Request {
				req := kmsg.NewPtrConsumerGroupDescribeRequest()
				req.Groups = []string{"g"}
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.ConsumerGroupDescribeResponse).Groups[0].ErrorCode }},
	}
	// Open to every authenticated principal, as in Kafka.
	open := map[int16]string{17: "SaslHandshake", 18: "ApiVersions", 36: "SaslAuthenticate", 60: "DescribeCluster"}

	// Every API the agent serves is covered.
	av, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range av.ApiKeys {
		if _, ok := open[k.ApiKey]; ok {
			continue
		}
		if !slices.ContainsFunc(cases, func(c aclCase) bool { return c.key == k.ApiKey }) {
			t.Errorf("%s (key %d) is served but has no authorization case", kmsg.NameForKey(k.ApiKey), k.ApiKey)
		}
	}

	before := fingerprint()
	for _, c := range cases {
		if len(c.pre) > 0 {
			grant(c.pre, true)
		}
		send := broker
		if c.old {
			send = brokerOld
		}
		resp, err := send.Request(ctx, c.req())
		if err != nil {
			t.Fatalf("%s denied: %v", c.name, err)
		}
		if got := c.code(resp); got != c.deny {
			t.Errorf("%s without ACLs: code %d (%v), want %d (%v)", c.name, got, kerr.ErrorForCode(got), c.deny, kerr.ErrorForCode(c.deny))
		}
		if len(c.pre) > 0 {
			grant(nil, false)
		}
		if after := fingerprint(); after != before {
			t.Fatalf("%s refused but changed what the super user sees:\n before %s\n after  %s", c.name, before, after)
		}

		grant(c.grant, true)
		resp, err = send.Request(ctx, c.req())
		if err != nil {
			t.Fatalf("%s granted: %v", c.name, err)
		}
		if got := c.code(resp); slices.Contains(authCodes, got) {
			t.Errorf("%s with %v: still refused, code %d (%v)", c.name, c.grant, got, kerr.ErrorForCode(got))
		}
		grant(nil, false)
		before = fingerprint() // granted requests may change things
	}

	// authorized_operations tell what a principal may do: READ implies
	// DESCRIBE.
	grant([]aclGrant{topicT(kmsg.ACLOperationRead)}, true)
	md := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr("t")
	md.Topics = append(md.Topics, rt)
	md.IncludeTopicAuthorizedOperations = true
	mresp, err := md.RequestWith(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	ops := kadm.DecodeACLOperations(mresp.Topics[0].AuthorizedOperations)
	if !slices.Equal(ops, []kmsg.ACLOperation{kmsg.ACLOperationRead, kmsg.ACLOperationDescribe}) {
		t.Errorf("topic t's authorized operations for alice with READ: %v, want [READ DESCRIBE]", ops)
	}
}

// checkForNoErr retries fn for up to 10 s until it returns nil.
func checkForNoErr(t *testing.T, fn func() error) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if err = fn(); err == nil {
			return
		}
	}
	t.Fatal(err)
}

// Idempotent producer ids are bound to the principal that obtained them:
// with an authorizer, bob (allowed to write the same topic) cannot write
// with alice's producer id, nor bump its epoch to fence her; his batches
// are refused with INVALID_PRODUCER_ID_MAPPING and nothing is appended,
// and alice's session goes on at the next sequence as if bob had not
// tried.
func TestProducerIDsBoundToPrincipal(t *testing.T) {
	t.Parallel()
	a := startAgent(t, func(c *agent.Config) {
		c.Listeners = []kafka.ListenerSpec{{Name: "SASL", Protocol: kafka.SASLPlaintext, Addr: "127.0.0.1:0"}}
		c.BootstrapUser, c.BootstrapPassword = "admin", "admin-secret"
		c.Authorizer = true
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	addr := a.KafkaAddrs()["SASL"]
	login := func(user, pass string) *kgo.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()), kgo.RequestRetries(0))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		checkForNoErr(t, func() error { _, err := kadm.NewClient(cl).BrokerMetadata(ctx); return err })
		return cl
	}
	adm := kadm.NewClient(login("admin", "admin-secret"))
	for _, u := range []string{"alice", "bob"} {
		if res, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: u, Mechanism: kadm.ScramSha512, Iterations: 4096, Password: u + "-pw"}}); err != nil || res.Error() != nil {
			t.Fatalf("create %s: %v %v", u, err, res.Error())
		}
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "shared"); err != nil {
		t.Fatal(err)
	}
	res, err := adm.CreateACLs(ctx, kadm.NewACLs().Allow("User:alice", "User:bob").Topics("shared").
		Operations(kadm.OpWrite, kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral))
	if err != nil || len(res) == 0 || res[0].Err != nil {
		t.Fatalf("create ACLs: %v %v", err, res)
	}
	alice, bob := login("alice", "alice-pw"), login("bob", "bob-pw")
	initPID := func(cl *kgo.Client) int64 {
		resp, err := kmsg.NewPtrInitProducerIDRequest().RequestWith(ctx, cl)
		if err != nil || resp.ErrorCode != 0 {
			t.Fatalf("InitProducerId: %v %v", err, kerr.ErrorForCode(resp.ErrorCode))
		}
		return resp.ProducerID
	}
	alicePID, bobPID := initPID(alice), initPID(bob)
	if alicePID>>24 == bobPID>>24 || alicePID&(1<<24-1) == 0 {
		t.Fatalf("producer ids %d and %d: want distinct counters and a MAC in the low bits", alicePID, bobPID)
	}
	produceAs := func(cl *kgo.Client, pid int64, epoch int16, seq int32, value string) int16 {
		o := plainBatch()
		o.pid, o.epoch, o.seq = pid, epoch, seq
		resp, err := cl.Broker(int(a.ID())).Request(ctx, produceReq(-1, "shared", 0, mkBatch(o, value)))
		if err != nil {
			t.Fatal(err)
		}
		return resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
	}
	end := func() int64 {
		ends, err := adm.ListEndOffsets(ctx, "shared")
		if err != nil {
			t.Fatal(err)
		}
		o, _ := ends.Lookup("shared", 0)
		return o.Offset
	}
	if code := produceAs(alice, alicePID, 0, 0, "alice-0"); code != 0 {
		t.Fatalf("alice with her own id: %v", kerr.ErrorForCode(code))
	}
	for _, try := range []struct {
		what  string
		epoch int16
		seq   int32
	}{{"the next sequence", 0, 1}, {"epoch + 1 (fencing)", 1, 0}} {
		if code := produceAs(bob, alicePID, try.epoch, try.seq, "forged"); code != kerr.InvalidProducerIDMapping.Code {
			t.Fatalf("bob with alice's id at %s: code %d (%v), want INVALID_PRODUCER_ID_MAPPING", try.what, code, kerr.ErrorForCode(code))
		}
	}
	if got := end(); got != 1 {
		t.Fatalf("log end %d after bob's refused batches, want 1", got)
	}
	if code := produceAs(alice, alicePID, 0, 1, "alice-1"); code != 0 {
		t.Fatalf("alice's next batch after bob's tries: %v", kerr.ErrorForCode(code))
	}
	if code := produceAs(bob, bobPID, 0, 0, "bob-0"); code != 0 {
		t.Fatalf("bob with his own id: %v", kerr.ErrorForCode(code))
	}
	if got := end(); got != 3 {
		t.Fatalf("log end %d, want 3", got)
	}
}
