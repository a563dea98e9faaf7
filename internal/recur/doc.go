// Package recur holds recurring schedules without I/O: their definition,
// their plan (a cron expression or an @every interval in a time zone, parsed
// with github.com/robfig/cron/v3) and the decision of which passed
// occurrences the scheduler fires.
//
// # Daylight saving
//
// A cron plan is read in wall-clock time of its zone, with these rules
// (robfig/cron alone differs on the first two; see plan_test.go):
//
//   - A wall-clock time the spring change skips (02:30 in Europe/Berlin on
//     the last Sunday of March) fires once, at the first valid instant after
//     it (03:00 CEST, the instant of the change). Several skipped times fire
//     once together.
//   - A wall-clock time the autumn change repeats (02:30 on the last Sunday
//     of October) fires once, at its first occurrence (02:30 CEST); the
//     repeated hour fires nothing again.
//   - @every intervals ignore the wall clock: they are a fixed number of
//     seconds between instants.
//
// Next computes the next wall-clock time with robfig/cron in a zone without
// daylight saving (UTC stands for "wall-clock time"), then maps it to an
// instant in the schedule's zone: the earliest instant with that wall-clock
// time, or the instant of the change when none has it.
package recur
