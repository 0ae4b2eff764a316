package agent

import (
	"context"
	"fmt"

	"github.com/tlog-io/tlog/agent/controller"
	"github.com/tlog-io/tlog/metadata"
)

// SetDraining marks agent id to be emptied of replicas and leaders (or
// no longer), through the controller.
func (a *Agent) SetDraining(ctx context.Context, id int32, draining bool) error {
	st := a.meta.State()
	if _, ok := st.Agents[id]; !ok {
		return fmt.Errorf("%w: agent %d", metadata.ErrUnknownAgent, id)
	}
	if draining {
		if err := controller.DrainBlocker(st, id); err != nil {
			return fmt.Errorf("%w: %w", controller.ErrInvalidRequest, err)
		}
	}
	_, err := a.propose(ctx, metadata.SetAgentDraining{ID: id, Draining: draining})
	return err
}
