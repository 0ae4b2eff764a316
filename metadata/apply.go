package metadata

// How commands change the state: each checks itself against the state it
// applies to and changes a copy-on-write transaction, so a refused command
// leaves nothing behind.

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Apply applies cmds to s in place, all or nothing: on error s is
// unchanged. Do not call it on a State shared with other goroutines (such
// as one returned by Store.State); use Next instead.
func (s *State) Apply(cmds ...Command) error {
	n, err := s.Next(cmds...)
	if err != nil {
		return err
	}
	*s = *n
	return nil
}

// Next returns the state after cmds, leaving s untouched. The result shares
// every topic the commands did not change with s (copy-on-write).
func (s *State) Next(cmds ...Command) (*State, error) {
	tx := newTxn(s)
	for i, c := range cmds {
		if isNil(c) {
			return nil, fmt.Errorf("command %d: %w: nil", i, ErrInvalidCommand)
		}
		if err := c.apply(tx); err != nil {
			if len(cmds) > 1 {
				return nil, fmt.Errorf("command %d of %d: %w", i+1, len(cmds), err)
			}
			return nil, err
		}
	}
	tx.s.normalize()
	return tx.s, nil
}

// txn is a copy-on-write view of a state: maps and topics are copied the
// first time a command changes them, so unchanged parts stay shared.
// Slices inside a copied topic are replaced, never written in place.
type txn struct {
	s                                     *State
	agentsOwned, topicsOwned, blocksOwned bool
	usersOwned                            bool
	ownedTopics                           map[uuid.UUID]bool
}

func newTxn(base *State) *txn {
	n := *base
	if n.names == nil && n.Topics != nil {
		n.normalize()
	}
	return &txn{s: &n, ownedTopics: map[uuid.UUID]bool{}}
}

func (tx *txn) agents() map[int32]AgentInfo {
	if !tx.agentsOwned {
		m := make(map[int32]AgentInfo, len(tx.s.Agents)+1)
		maps.Copy(m, tx.s.Agents)
		tx.s.Agents, tx.agentsOwned = m, true
	}
	return tx.s.Agents
}

func (tx *txn) blocks() map[int32]ProducerBlock {
	if !tx.blocksOwned {
		m := make(map[int32]ProducerBlock, len(tx.s.ProducerBlocks)+1)
		maps.Copy(m, tx.s.ProducerBlocks)
		tx.s.ProducerBlocks, tx.blocksOwned = m, true
	}
	return tx.s.ProducerBlocks
}

func (tx *txn) users() map[string]map[string]ScramCredential {
	if !tx.usersOwned {
		m := make(map[string]map[string]ScramCredential, len(tx.s.Users)+1)
		maps.Copy(m, tx.s.Users)
		tx.s.Users, tx.usersOwned = m, true
	}
	return tx.s.Users
}

// topics returns writable topic and name maps.
func (tx *txn) topics() (map[uuid.UUID]*Topic, map[string]uuid.UUID) {
	if !tx.topicsOwned {
		t := make(map[uuid.UUID]*Topic, len(tx.s.Topics)+1)
		maps.Copy(t, tx.s.Topics)
		n := make(map[string]uuid.UUID, len(tx.s.names)+1)
		maps.Copy(n, tx.s.names)
		tx.s.Topics, tx.s.names, tx.topicsOwned = t, n, true
	}
	return tx.s.Topics, tx.s.names
}

func (tx *txn) topic(id uuid.UUID) (*Topic, error) {
	t, ok := tx.s.Topic(id)
	if !ok {
		return nil, fmt.Errorf("topic %s: %w", id, ErrUnknownTopic)
	}
	return t, nil
}

// mutTopic returns a private copy of the topic that the txn may change.
func (tx *txn) mutTopic(id uuid.UUID) (*Topic, error) {
	t, err := tx.topic(id)
	if err != nil {
		return nil, err
	}
	if tx.ownedTopics[id] {
		return t, nil
	}
	c := *t
	c.Partitions = slices.Clone(t.Partitions) // elements share slices; replaced on change
	topics, _ := tx.topics()
	topics[id] = &c
	tx.ownedTopics[id] = true
	return &c, nil
}

// mutPartition returns a writable partition. Its slices are still shared:
// assign new ones instead of writing through them.
func (tx *txn) mutPartition(id uuid.UUID, idx int32) (*Topic, *Partition, error) {
	t, err := tx.topic(id)
	if err != nil {
		return nil, nil, err
	}
	if idx < 0 || int(idx) >= len(t.Partitions) {
		return nil, nil, fmt.Errorf("topic %q partition %d: %w", t.Name, idx, ErrUnknownPartition)
	}
	if t, err = tx.mutTopic(id); err != nil {
		return nil, nil, err
	}
	return t, &t.Partitions[idx], nil
}

// --- validation helpers ---

// ValidateTopicName checks a name the way Kafka does.
func ValidateTopicName(name string) error {
	if name == "" || len(name) > 249 {
		return fmt.Errorf("%w: %q must be 1 to 249 characters", ErrInvalidTopic, name)
	}
	if name == "." || name == ".." {
		return fmt.Errorf("%w: %q is reserved", ErrInvalidTopic, name)
	}
	for _, c := range name { // by rune, so a non-ASCII letter is named whole
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %q contains %q; allowed are [a-zA-Z0-9._-]", ErrInvalidTopic, name, c)
		}
	}
	return nil
}

// collisionName maps '.' to '_': Kafka refuses topics that differ only
// there, because their metric names would collide.
func collisionName(name string) string { return strings.ReplaceAll(name, ".", "_") }

func checkHostPort(field, addr string, required bool) error {
	if addr == "" {
		if required {
			return fmt.Errorf("%w: %s is required", ErrInvalidAgent, field)
		}
		return nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("%w: %s %q is not host:port", ErrInvalidAgent, field, addr)
	}
	return nil
}

func (tx *txn) checkSpec(i int, spec PartitionSpec) error {
	if len(spec.Replicas) == 0 {
		return fmt.Errorf("%w: partition %d has no replicas", ErrInvalidReplicas, i)
	}
	seen := make(map[int32]bool, len(spec.Replicas))
	for _, r := range spec.Replicas {
		if seen[r] {
			return fmt.Errorf("%w: partition %d lists agent %d twice", ErrInvalidReplicas, i, r)
		}
		seen[r] = true
		if _, ok := tx.s.Agents[r]; !ok {
			return fmt.Errorf("%w: partition %d replica %d: %w", ErrInvalidReplicas, i, r, ErrUnknownAgent)
		}
	}
	if !seen[spec.Leader] {
		return fmt.Errorf("%w: partition %d leader %d is not a replica", ErrInvalidReplicas, i, spec.Leader)
	}
	return nil
}

func newPartitions(s *State, first int, specs []PartitionSpec) []Partition {
	out := make([]Partition, len(specs))
	for i, sp := range specs {
		out[i] = Partition{
			Index:             int32(first + i),
			Leader:            sp.Leader,
			LeaderIncarnation: s.Agents[sp.Leader].Incarnation,
			Replicas:          slices.Clone(sp.Replicas),
			ISR:               slices.Clone(sp.Replicas),
		}
	}
	return out
}

// checkISR: members are distinct replicas and include the leader, if any.
func checkISR(p *Partition, leader int32, isr []int32) error {
	seen := make(map[int32]bool, len(isr))
	for _, r := range isr {
		if seen[r] {
			return fmt.Errorf("%w: ISR lists agent %d twice", ErrInvalidReplicas, r)
		}
		seen[r] = true
		if !slices.Contains(p.Replicas, r) {
			return fmt.Errorf("%w: ISR member %d is not a replica", ErrInvalidReplicas, r)
		}
	}
	if leader >= 0 && !seen[leader] {
		return fmt.Errorf("%w: leader %d is not in the ISR", ErrInvalidReplicas, leader)
	}
	if leader < -1 {
		return fmt.Errorf("%w: leader %d", ErrInvalidReplicas, leader)
	}
	return nil
}

func checkConfigKeys(m map[string]string) error {
	for k := range m {
		if k == "" {
			return fmt.Errorf("%w: empty key", ErrInvalidConfig)
		}
	}
	return nil
}

// --- apply ---

func (c RegisterAgent) stamp(now time.Time) Command {
	if c.Agent.Registered.IsZero() {
		c.Agent.Registered = now
	}
	return c
}

func (c RegisterAgent) apply(tx *txn) error {
	a := c.Agent
	if a.ID < 0 {
		return fmt.Errorf("register agent %d: %w: negative id", a.ID, ErrInvalidAgent)
	}
	for _, f := range []struct {
		name, addr string
		required   bool
	}{{"addr", a.Addr, true}, {"peer_addr", a.PeerAddr, false}, {"admin_addr", a.AdminAddr, false}} {
		if err := checkHostPort(f.name, f.addr, f.required); err != nil {
			return fmt.Errorf("register agent %d: %w", a.ID, err)
		}
	}
	tx.agents()[a.ID] = a
	return nil
}

func (c UnregisterAgent) apply(tx *txn) error {
	if _, ok := tx.s.Agents[c.ID]; !ok {
		return fmt.Errorf("unregister agent %d: %w", c.ID, ErrUnknownAgent)
	}
	delete(tx.agents(), c.ID)
	return nil
}

func (c CreateTopic) stamp(now time.Time) Command {
	if c.Created.IsZero() {
		c.Created = now
	}
	return c
}

func (c CreateTopic) apply(tx *txn) error {
	fail := func(err error) error { return fmt.Errorf("create topic %q: %w", c.Name, err) }
	if err := ValidateTopicName(c.Name); err != nil {
		return fail(err)
	}
	if c.ID == uuid.Nil {
		return fail(fmt.Errorf("%w: nil topic id", ErrInvalidCommand))
	}
	if _, ok := tx.s.names[c.Name]; ok {
		return fail(ErrTopicExists)
	}
	if t, ok := tx.s.Topics[c.ID]; ok {
		return fail(fmt.Errorf("%w: id %s is topic %q", ErrTopicExists, c.ID, t.Name))
	}
	cn := collisionName(c.Name)
	for _, t := range tx.s.Topics {
		if collisionName(t.Name) == cn {
			return fail(fmt.Errorf("%w: collides with topic %q ('.' and '_' collide)", ErrInvalidTopic, t.Name))
		}
	}
	if len(c.Partitions) == 0 {
		return fail(fmt.Errorf("%w: no partitions", ErrInvalidPartitions))
	}
	if len(c.Partitions) > math.MaxInt32 {
		return fail(fmt.Errorf("%w: too many partitions", ErrInvalidPartitions))
	}
	for i, sp := range c.Partitions {
		if err := tx.checkSpec(i, sp); err != nil {
			return fail(err)
		}
	}
	if err := checkConfigKeys(c.Configs); err != nil {
		return fail(err)
	}
	cfg := make(map[string]string, len(c.Configs))
	maps.Copy(cfg, c.Configs)
	topics, names := tx.topics()
	topics[c.ID] = &Topic{ID: c.ID, Name: c.Name, Configs: cfg, Partitions: newPartitions(tx.s, 0, c.Partitions), Created: c.Created}
	names[c.Name] = c.ID
	tx.ownedTopics[c.ID] = true
	return nil
}

func (c DeleteTopic) apply(tx *txn) error {
	t, err := tx.topic(c.ID)
	if err != nil {
		return fmt.Errorf("delete topic: %w", err)
	}
	topics, names := tx.topics()
	delete(topics, c.ID)
	delete(names, t.Name)
	delete(tx.ownedTopics, c.ID)
	return nil
}

func (c CreatePartitions) apply(tx *txn) error {
	t, err := tx.topic(c.TopicID)
	if err != nil {
		return fmt.Errorf("create partitions: %w", err)
	}
	fail := func(err error) error { return fmt.Errorf("create partitions of %q: %w", t.Name, err) }
	if len(c.New) == 0 {
		return fail(fmt.Errorf("%w: partitions can only be added", ErrInvalidPartitions))
	}
	if len(t.Partitions)+len(c.New) > math.MaxInt32 {
		return fail(fmt.Errorf("%w: too many partitions", ErrInvalidPartitions))
	}
	for i, sp := range c.New {
		if err := tx.checkSpec(len(t.Partitions)+i, sp); err != nil {
			return fail(err)
		}
	}
	if t, err = tx.mutTopic(c.TopicID); err != nil {
		return fail(err)
	}
	t.Partitions = append(t.Partitions, newPartitions(tx.s, len(t.Partitions), c.New)...)
	return nil
}

func (c AlterTopicConfigs) apply(tx *txn) error {
	t, err := tx.topic(c.TopicID)
	if err != nil {
		return fmt.Errorf("alter topic configs: %w", err)
	}
	fail := func(err error) error { return fmt.Errorf("alter configs of %q: %w", t.Name, err) }
	if err := checkConfigKeys(c.Set); err != nil {
		return fail(err)
	}
	for _, k := range c.Delete {
		if _, both := c.Set[k]; both {
			return fail(fmt.Errorf("%w: %q is both set and deleted", ErrInvalidConfig, k))
		}
	}
	cfg := maps.Clone(t.Configs)
	if cfg == nil {
		cfg = map[string]string{}
	}
	maps.Copy(cfg, c.Set)
	for _, k := range c.Delete {
		delete(cfg, k)
	}
	if t, err = tx.mutTopic(c.TopicID); err != nil {
		return fail(err)
	}
	t.Configs = cfg
	return nil
}

func (c SetCleanedEnd) apply(tx *txn) error {
	t, p, err := tx.mutPartition(c.TopicID, c.Partition)
	if err != nil {
		return fmt.Errorf("set cleaned end: %w", err)
	}
	if c.Offset > p.FlushedEnd || c.Offset < 0 {
		return fmt.Errorf("%w: cleaned end of %s-%d at %d, flushed end %d", ErrInvalidCommand, t.Name, c.Partition, c.Offset, p.FlushedEnd)
	}
	p.CleanedEnd = max(p.CleanedEnd, c.Offset)
	return nil
}

func (c SetLogStart) apply(tx *txn) error {
	t, p, err := tx.mutPartition(c.TopicID, c.Partition)
	if err != nil {
		return fmt.Errorf("set log start: %w", err)
	}
	if c.Offset < p.LogStart {
		return fmt.Errorf("set log start of %s-%d to %d: %w: log start is %d and only moves forward",
			t.Name, c.Partition, c.Offset, ErrOffsetOutOfRange, p.LogStart)
	}
	// The log start may pass flushedEnd (DeleteRecords up to the high
	// watermark); only the leader knows the HW, so it checks the upper bound.
	// Nothing below the log start will ever be flushed, so flushedEnd
	// follows it and logStart ≤ flushedEnd holds.
	p.LogStart = c.Offset
	if p.FlushedEnd < c.Offset {
		p.FlushedEnd = c.Offset
	}
	drop := 0
	for drop < len(p.Segments) && p.Segments[drop].LastOffset < c.Offset {
		drop++
	}
	if drop > 0 {
		p.Segments = slices.Clone(p.Segments[drop:])
	}
	return nil
}

func (c SetLeader) apply(tx *txn) error {
	t, p, err := tx.mutPartition(c.TopicID, c.Partition)
	if err != nil {
		return fmt.Errorf("set leader: %w", err)
	}
	fail := func(err error) error { return fmt.Errorf("set leader of %s-%d: %w", t.Name, c.Partition, err) }
	if c.LeaderEpoch <= p.LeaderEpoch {
		return fail(fmt.Errorf("%w: epoch %d must exceed %d", ErrStaleEpoch, c.LeaderEpoch, p.LeaderEpoch))
	}
	if c.Replicas != nil {
		if err := checkReplicaSet(tx, c.Replicas); err != nil {
			return fail(err)
		}
		np := *p
		np.Replicas = c.Replicas
		if err := checkISR(&np, c.Leader, c.ISR); err != nil {
			return fail(err)
		}
		p.Replicas, p.Target = slices.Clone(c.Replicas), nil
	}
	if c.Leader >= 0 && !slices.Contains(p.Replicas, c.Leader) {
		return fail(fmt.Errorf("%w: leader %d is not a replica", ErrInvalidReplicas, c.Leader))
	}
	if err := checkISR(p, c.Leader, c.ISR); err != nil {
		return fail(err)
	}
	p.Leader, p.LeaderEpoch, p.ISR = c.Leader, c.LeaderEpoch, slices.Clone(c.ISR)
	p.LeaderIncarnation = 0
	if c.Leader >= 0 {
		p.LeaderIncarnation = tx.s.Agents[c.Leader].Incarnation
	}
	p.ISRVersion++
	return nil
}

func (c SetISR) apply(tx *txn) error {
	t, p, err := tx.mutPartition(c.TopicID, c.Partition)
	if err != nil {
		return fmt.Errorf("set ISR: %w", err)
	}
	fail := func(err error) error { return fmt.Errorf("set ISR of %s-%d: %w", t.Name, c.Partition, err) }
	switch {
	case c.LeaderEpoch < p.LeaderEpoch:
		return fail(fmt.Errorf("%w: epoch %d, partition is at %d", ErrStaleEpoch, c.LeaderEpoch, p.LeaderEpoch))
	case c.LeaderEpoch > p.LeaderEpoch:
		return fail(fmt.Errorf("%w: epoch %d, partition is at %d", ErrUnknownLeaderEpoch, c.LeaderEpoch, p.LeaderEpoch))
	case c.ISRVersion != p.ISRVersion:
		return fail(fmt.Errorf("%w: ISR version %d, partition is at %d", ErrStaleEpoch, c.ISRVersion, p.ISRVersion))
	}
	if err := checkISR(p, p.Leader, c.ISR); err != nil {
		return fail(err)
	}
	p.ISR = slices.Clone(c.ISR)
	p.ISRVersion++
	return nil
}

func (c SetAgentFenced) apply(tx *txn) error {
	return tx.updateAgent(c.ID, "fenced", func(a *AgentInfo) {
		if c.Fenced && !a.Fenced {
			a.FencedAt = c.At
		}
		if !c.Fenced {
			a.FencedAt = time.Time{}
		}
		a.Fenced = c.Fenced
	})
}

func (c SetAgentDraining) apply(tx *txn) error {
	return tx.updateAgent(c.ID, "draining", func(a *AgentInfo) { a.Draining = c.Draining })
}

// updateAgent changes a registered agent's info.
func (tx *txn) updateAgent(id int32, what string, change func(*AgentInfo)) error {
	a, ok := tx.s.Agents[id]
	if !ok {
		return fmt.Errorf("set agent %d %s: %w", id, what, ErrUnknownAgent)
	}
	change(&a)
	tx.agents()[id] = a
	return nil
}

// checkReplicaSet: non-empty, distinct, registered agents.
func checkReplicaSet(tx *txn, reps []int32) error {
	if len(reps) == 0 {
		return fmt.Errorf("%w: no replicas", ErrInvalidReplicas)
	}
	seen := make(map[int32]bool, len(reps))
	for _, r := range reps {
		if seen[r] {
			return fmt.Errorf("%w: agent %d listed twice", ErrInvalidReplicas, r)
		}
		seen[r] = true
		if _, ok := tx.s.Agents[r]; !ok {
			return fmt.Errorf("%w: replica %d: %w", ErrInvalidReplicas, r, ErrUnknownAgent)
		}
	}
	return nil
}

func (c Reassign) apply(tx *txn) error {
	t, p, err := tx.mutPartition(c.TopicID, c.Partition)
	if err != nil {
		return fmt.Errorf("reassign: %w", err)
	}
	fail := func(err error) error {
		return fmt.Errorf("reassign %s-%d to %v: %w", t.Name, c.Partition, c.Target, err)
	}
	if err := checkReplicaSet(tx, c.Target); err != nil {
		return fail(err)
	}
	// Agents joining must be live; ones already replicas may be fenced.
	for _, r := range c.Target {
		if !slices.Contains(p.Replicas, r) && tx.s.Agents[r].Fenced {
			return fail(fmt.Errorf("%w: agent %d is fenced", ErrInvalidReplicas, r))
		}
	}
	if sameSet(c.Target, p.Replicas) {
		p.Replicas, p.Target = slices.Clone(c.Target), nil
		p.ISRVersion++
		return nil
	}
	// Replicas keeps the current ones (still serving) plus the joiners.
	reps := slices.Clone(p.Replicas)
	for _, r := range c.Target {
		if !slices.Contains(reps, r) {
			reps = append(reps, r)
		}
	}
	p.Replicas, p.Target = reps, slices.Clone(c.Target)
	p.ISRVersion++
	return nil
}

func sameSet(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

func (c CommitSegment) apply(tx *txn) error {
	t, p, err := tx.mutPartition(c.TopicID, c.Partition)
	if err != nil {
		return fmt.Errorf("commit segment: %w", err)
	}
	r := c.Ref
	fail := func(err error) error {
		return fmt.Errorf("commit segment %s [%d,%d] of %s-%d: %w", r.Object, r.FirstOffset, r.LastOffset, t.Name, c.Partition, err)
	}
	switch {
	case c.LeaderEpoch < p.LeaderEpoch:
		return fail(fmt.Errorf("%w: epoch %d, partition is at %d", ErrStaleEpoch, c.LeaderEpoch, p.LeaderEpoch))
	case c.LeaderEpoch > p.LeaderEpoch:
		return fail(fmt.Errorf("%w: epoch %d, partition is at %d", ErrUnknownLeaderEpoch, c.LeaderEpoch, p.LeaderEpoch))
	case r.Object == "" || r.Offset < 0 || r.Length <= 0 || r.LastOffset < r.FirstOffset:
		return fail(ErrInvalidSegment)
	case r.FirstOffset != p.FlushedEnd:
		return fail(fmt.Errorf("%w: flushed end is %d", ErrNotContiguous, p.FlushedEnd))
	}
	// Clip so append copies: the old slice's spare capacity may be shared.
	p.Segments = append(slices.Clip(p.Segments), r)
	p.FlushedEnd = r.LastOffset + 1
	return nil
}

func (c CommitSegments) apply(tx *txn) error {
	if len(c.Commits) == 0 {
		return fmt.Errorf("commit segments: %w: empty", ErrInvalidCommand)
	}
	// The txn is discarded on error, which makes the batch atomic.
	for i, cs := range c.Commits {
		if err := cs.apply(tx); err != nil {
			return fmt.Errorf("commit segments: %d of %d: %w", i+1, len(c.Commits), err)
		}
	}
	return nil
}

func (c AllocateProducerIDs) apply(tx *txn) error {
	fail := func(err error) error {
		return fmt.Errorf("allocate %d producer ids for agent %d: %w", c.Count, c.Agent, err)
	}
	if _, ok := tx.s.Agents[c.Agent]; !ok {
		return fail(ErrUnknownAgent)
	}
	if c.Count <= 0 {
		return fail(fmt.Errorf("%w: count must be positive", ErrInvalidCommand))
	}
	if tx.s.NextProducerID > math.MaxInt64-c.Count {
		return fail(errors.New("producer ids exhausted"))
	}
	if len(c.Key) > 0 && len(c.Key) < 16 {
		return fail(fmt.Errorf("%w: a producer id key of %d bytes (at least 16)", ErrInvalidCommand, len(c.Key)))
	}
	tx.blocks()[c.Agent] = ProducerBlock{First: tx.s.NextProducerID, Count: c.Count}
	tx.s.NextProducerID += c.Count
	if len(tx.s.ProducerIDKey) == 0 && len(c.Key) > 0 {
		tx.s.ProducerIDKey = slices.Clone(c.Key)
	}
	return nil
}

func (c ReplaceSegments) apply(tx *txn) error {
	t, p, err := tx.mutPartition(c.TopicID, c.Partition)
	if err != nil {
		return fmt.Errorf("replace segments: %w", err)
	}
	r := c.New
	fail := func(err error) error {
		return fmt.Errorf("replace %d ranges of %s-%d with %s [%d,%d]: %w", len(c.Old), t.Name, c.Partition, r.Object, r.FirstOffset, r.LastOffset, err)
	}
	if r.Object == "" || r.Offset < 0 || r.Length <= 0 || r.LastOffset < r.FirstOffset || len(c.Old) == 0 {
		return fail(ErrInvalidSegment)
	}
	i := 0
	for i < len(p.Segments) && p.Segments[i].FirstOffset != r.FirstOffset {
		i++
	}
	j := i + len(c.Old)
	if i == len(p.Segments) || j > len(p.Segments) {
		return fail(fmt.Errorf("%w: the manifest no longer starts a range at %d", ErrNotContiguous, r.FirstOffset))
	}
	for k, obj := range c.Old {
		if p.Segments[i+k].Object != obj {
			return fail(fmt.Errorf("%w: range %d is in %s, not %s", ErrNotContiguous, i+k, p.Segments[i+k].Object, obj))
		}
	}
	if p.Segments[j-1].LastOffset != r.LastOffset {
		return fail(fmt.Errorf("%w: the replaced ranges end at %d", ErrNotContiguous, p.Segments[j-1].LastOffset))
	}
	segs := make([]SegmentRef, 0, len(p.Segments)-len(c.Old)+1)
	segs = append(segs, p.Segments[:i]...)
	segs = append(segs, r)
	segs = append(segs, p.Segments[j:]...)
	p.Segments = segs
	return nil
}
