package store

import "context"

// PublishesEvents reports whether s runs the script variants that publish
// task events (listeners.go), for tests that wait for a store's poll.
func PublishesEvents(s *Store) bool { return s.listen.publishing() }

// DropNames runs the listing's clean-up as if none of names had a queue
// when the listing read them.
func DropNames(s *Store, ctx context.Context, names []string) { s.dropNames(ctx, names, nil) }
