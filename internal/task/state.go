package task

// State is where a task is in its life.
type State string

// Task states. A task is scheduled (waiting for its run-at time or its next
// variable call), queued (in its queue's stream), active (being called),
// retrying (failed, waiting for its next attempt), then ends succeeded, dead
// (attempts exhausted or a permanent failure) or cancelled.
const (
	StateScheduled State = "scheduled"
	StateQueued    State = "queued"
	StateActive    State = "active"
	StateRetrying  State = "retrying"
	StateSucceeded State = "succeeded"
	StateDead      State = "dead"
	StateCancelled State = "cancelled"
)

// ListableStates are the states that can be listed per queue; finished tasks
// are kept only for the retention period and are looked up by id.
var ListableStates = []State{StateScheduled, StateQueued, StateActive, StateDead}

// Terminal reports whether no further call will be made for a task in s.
func (s State) Terminal() bool {
	return s == StateSucceeded || s == StateDead || s == StateCancelled
}
