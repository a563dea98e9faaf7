// Package taskimport moves tasks from an NDJSON or CSV stream into a queue
// through the batch route, resumably and without duplicates.
//
// # Pipeline and concurrency
//
// One goroutine (the reader) parses lines in order and cuts them into
// batches numbered 0, 1, 2, …; Parallel workers send batches concurrently;
// Run's own goroutine collects the results. Every goroutine is started and
// waited for by Run. Batches finish out of order, so the checkpoint is a
// watermark: the last line of the highest batch n such that every batch up
// to n has been accepted. Lines past the watermark may or may not have been
// accepted when the run stops (a SIGINT cancels requests in flight).
//
// # Exactly once
//
// A re-run skips the lines up to the checkpoint's watermark and sends the
// rest again. Each task carries an idempotency key derived from the source's
// identity, the line number and the line's bytes (unless the line brings its
// own key), so a line accepted by the stopped run is answered "existed" by
// the API instead of being created twice (within the server's
// queues.idempotency_window, 24 h by default). Losing nothing follows from
// the watermark: no line past it is skipped.
//
// A batch is all or nothing. When the API refuses one task of a batch (422
// "tasks[i]: …"), that line is reported bad and the batch is sent again
// without it.
package taskimport
