package dispatch

// QueueWriter is what an owner writes through (for tests that wrap it).
type QueueWriter = queueWriter

// WrapWriters makes d's owners write through wrap(their writer); call it
// before Run.
func WrapWriters(d *Dispatcher, wrap func(QueueWriter) QueueWriter) { d.wrap = wrap }

// ClaimersStarted returns how many claim goroutines d has started.
func ClaimersStarted(d *Dispatcher) int64 { return d.claimers.started.Load() }

// ClaimersRunning returns how many claim goroutines d has now.
func ClaimersRunning(d *Dispatcher) int32 { return d.claimers.running.Load() }
