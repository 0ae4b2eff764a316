package agent

import (
	"context"

	"github.com/tlog-io/tlog/agent/controller"
)

// createTopic creates a topic through the controller, as CreateTopics
// does.
func (a *Agent) createTopic(ctx context.Context, name string, partitions int32, rf int16) error {
	spec, err := controller.PlanTopic(a.meta.State(), controller.NewTopic{Name: name, Partitions: partitions, ReplicationFactor: rf}, a.cfg.DefaultPartitions)
	if err != nil {
		return err
	}
	_, err = a.propose(ctx, spec)
	return err
}
