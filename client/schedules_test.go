package client_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/htq/htq/client"
)

// TestScheduleRoutes drives each schedule method against the real API.
func TestScheduleRoutes(t *testing.T) {
	ctx := t.Context()
	c := newClient(t, newAPI(t))
	if _, _, err := c.PutQueue(ctx, "reports", client.QueueSettings{}); err != nil {
		t.Fatal(err)
	}
	// A name that needs escaping in a path.
	const name = "nightly report"
	req := client.ScheduleRequest{Queue: "reports", Cron: "0 9 * * 1-5", TimeZone: "Europe/Berlin",
		Task: client.TaskRequest{URL: "http://127.0.0.1:9/report", Method: "POST"}, CatchUp: client.D(10 * time.Minute)}
	sc, created, err := c.PutSchedule(ctx, name, req)
	if err != nil || !created || sc.Name != name || sc.Queue != "reports" || sc.TimeZone != "Europe/Berlin" ||
		sc.CatchUp.Std() != 10*time.Minute || len(sc.NextRuns) != 5 || sc.Paused {
		t.Fatalf("PutSchedule: %+v created=%v err=%v", sc, created, err)
	}
	req.Overlap = "allow"
	if sc, created, err = c.PutSchedule(ctx, name, req); err != nil || created || sc.Overlap != "allow" {
		t.Fatalf("PutSchedule update: %+v created=%v err=%v", sc, created, err)
	}
	if _, _, err := c.PutSchedule(ctx, "z", client.ScheduleRequest{Queue: "reports", Cron: "@every 1h",
		Task: client.TaskRequest{URL: "http://127.0.0.1:9/z"}}); err != nil {
		t.Fatal(err)
	}
	page, err := c.ListSchedules(ctx, client.ListOptions{Limit: 1})
	if err != nil || len(page.Schedules) != 1 || page.Schedules[0].Name != name || page.NextCursor == "" {
		t.Fatalf("ListSchedules page 1: %+v %v", page, err)
	}
	if page, err = c.ListSchedules(ctx, client.ListOptions{Limit: 1, Cursor: page.NextCursor}); err != nil || len(page.Schedules) != 1 || page.Schedules[0].Name != "z" {
		t.Fatalf("ListSchedules page 2: %+v %v", page, err)
	}
	if sc, err = c.PauseSchedule(ctx, name); err != nil || !sc.Paused || len(sc.NextRuns) != 0 {
		t.Fatalf("PauseSchedule: %+v %v", sc, err)
	}
	tr, err := c.TriggerSchedule(ctx, name)
	if err != nil || tr.TaskID == "" || tr.Queue != "reports" {
		t.Fatalf("TriggerSchedule: %+v %v", tr, err)
	}
	if sc, err = c.ResumeSchedule(ctx, name); err != nil || sc.Paused || len(sc.NextRuns) != 5 {
		t.Fatalf("ResumeSchedule: %+v %v", sc, err)
	}
	if sc, err = c.GetSchedule(ctx, name); err != nil || sc.LastRun == nil || sc.LastRun.TaskID != tr.TaskID || sc.LastRun.State != client.StateQueued {
		t.Fatalf("GetSchedule: %+v %v", sc, err)
	}
	if err := c.DeleteSchedule(ctx, name); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetSchedule(ctx, name)
	var ae *client.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusNotFound || ae.Code != client.CodeScheduleNotFound || !client.IsNotFound(err) {
		t.Fatalf("GetSchedule of a deleted schedule: %v", err)
	}
	// The API's validation comes back with the field named.
	bad := req
	bad.Cron = "0 25 * * *"
	if _, _, err := c.PutSchedule(ctx, "bad", bad); !errors.As(err, &ae) || ae.Code != client.CodeValidation || ae.Message == "" {
		t.Fatalf("bad cron: %v", err)
	}
	// Refused before anything is sent.
	for _, err := range []error{
		func() error { _, _, err := c.PutSchedule(ctx, "", req); return err }(),
		func() error {
			_, _, err := c.PutSchedule(ctx, "x", client.ScheduleRequest{Queue: "reports"})
			return err
		}(),
		func() error { _, err := c.TriggerSchedule(ctx, ""); return err }(),
		func() error { return c.DeleteSchedule(ctx, "") }(),
	} {
		if err == nil || errors.As(err, &ae) {
			t.Errorf("want a local error, got %v", err)
		}
	}
}
