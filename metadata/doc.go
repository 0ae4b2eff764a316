// Package metadata keeps tlog's cluster metadata in the bucket, which is
// the only shared state: there is no consensus service beside the agents.
//
// Three kinds of object make it up:
//
//   - meta/controller: the controller lease {agent, epoch, renewed_unix_ms,
//     ttl_ms}. Taken with PutIfAbsent when absent, else with PutIfMatch. A
//     challenger takes a lease only after seeing the same ETag for a full
//     TTL on its own monotonic clock, or at once if the lease names its own
//     agent id (a restart) or has ttl 0 (released by Resign). Every take
//     bumps the epoch above both the lease's and the journal's. The holder
//     renews every TTL/3 and stops acting as controller when a renewal
//     loses its precondition, or when none has succeeded for TTL minus a
//     margin, measured from when the last successful renewal was sent.
//   - meta/journal/<seq>: entries {seq, epoch, agent, cmds}, written only by
//     the controller with PutIfAbsent, so one writer wins each seq. Readers
//     apply them in order and skip an entry whose epoch is below the highest
//     applied. A controller that loses a seq re-reads the journal and
//     returns ErrConflict.
//   - meta/snapshot/<seq>: the State as JSON every SnapshotEvery entries,
//     written in the background by the controller, which then deletes the
//     entries at or below it and all but the newest two snapshots. A reader
//     that finds its next entry gone reloads the newest snapshot.
//
// The State is a deterministic state machine: Commands validate against it
// and apply all or nothing, and times are stamped into commands by the
// controller before journaling, never read during apply. The controller
// applies the entry as decoded from the bytes it writes, so it cannot
// diverge from readers through anything JSON does not round-trip.
//
// Safety relies on the holder's deadline (send time + TTL - TTL/10) ending
// before any challenger's (first sight + TTL): clocks must tick at roughly
// the same rate, but their wall times are never compared.
package metadata
