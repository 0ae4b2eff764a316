package controller

// Tick runs one pass of the controller's loop now, for tests that move a
// fake clock and look at what the next tick decides.
func (ct *Controller) Tick() error { return ct.tick() }
