package store

// PublishesEvents reports whether s runs the script variants that publish
// task events (listeners.go), for tests that wait for a store's poll.
func PublishesEvents(s *Store) bool { return s.listen.publishing() }
