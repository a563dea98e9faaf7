// Package task holds HTQ's domain types and rules: task specs and ids, queue
// configuration, task states, the variable-queue gap rule and the retry
// policy. It does no I/O, so every rule here can be tested on its own and used
// by the API, the scheduler and the dispatcher alike.
package task
