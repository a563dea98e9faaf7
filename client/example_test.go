package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/htq/htq/client"
	"github.com/htq/htq/internal/apitest"
	"github.com/htq/htq/internal/clock"
	"github.com/htq/htq/internal/store"
)

// htqURL is the API the examples call: a real one, started by TestMain on
// a private redis-server (examples have no *testing.T to start it with).
var htqURL string

func TestMain(m *testing.M) {
	stop, err := startExampleAPI()
	if err != nil {
		fmt.Fprintln(os.Stderr, "client examples:", err)
		os.Exit(1)
	}
	code := m.Run()
	stop()
	os.Exit(code)
}

func startExampleAPI() (func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	dir, err := os.MkdirTemp("", "htq-client-example")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start redis-server (make test installs it): %w", err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port)})
	stop := func() {
		_ = rdb.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = os.RemoveAll(dir)
	}
	ctx := context.Background()
	for i := 0; rdb.Ping(ctx).Err() != nil; i++ {
		if i == 100 {
			stop()
			return nil, fmt.Errorf("redis-server on port %d did not answer", port)
		}
		time.Sleep(50 * time.Millisecond)
	}
	st, err := store.New(rdb, "htq:", clock.Real{})
	if err == nil {
		err = st.Init(ctx)
	}
	if err != nil {
		stop()
		return nil, err
	}
	ts, err := apitest.Serve(st, apitest.Config(token))
	if err != nil {
		stop()
		return nil, err
	}
	htqURL = ts.URL
	return func() { ts.Close(); stop() }, nil
}

// Push one task: HTQ POSTs {"order":42} to the URL, once, retrying on failure.
func ExampleClient_CreateTask() {
	ctx := context.Background()
	c, err := client.New(htqURL, client.WithToken(token))
	if err != nil {
		log.Fatal(err)
	}
	if _, _, err := c.PutQueue(ctx, "orders", client.QueueSettings{Timeout: client.D(10 * time.Second)}); err != nil {
		log.Fatal(err)
	}
	created, err := c.CreateTask(ctx, "orders", client.TaskRequest{
		URL: "https://shop.example/hooks/paid", Method: "POST", Body: json.RawMessage(`{"order":42}`),
		IdempotencyKey: "order-42-paid", // a repeat returns the same task
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(created.Queue, created.State)
	// Output: orders queued
}

// Push a batch, all or nothing; the second task runs in an hour.
func ExampleClient_CreateTasks() {
	ctx := context.Background()
	c, err := client.New(htqURL, client.WithToken(token))
	if err != nil {
		log.Fatal(err)
	}
	if _, _, err := c.PutQueue(ctx, "reports", client.QueueSettings{}); err != nil {
		log.Fatal(err)
	}
	tasks, err := c.CreateTasks(ctx, "reports", []client.TaskRequest{
		{URL: "https://shop.example/report?day=1"},
		{URL: "https://shop.example/report?day=2", Delay: client.D(time.Hour)},
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, t := range tasks {
		fmt.Println(t.State)
	}
	// Output:
	// queued
	// scheduled
}

// Read a queue's dead letters, page by page, and tell a missing queue apart.
func ExampleClient_ListTasks() {
	ctx := context.Background()
	c, err := client.New(htqURL, client.WithToken(token))
	if err != nil {
		log.Fatal(err)
	}
	if _, _, err := c.PutQueue(ctx, "emails", client.QueueSettings{}); err != nil {
		log.Fatal(err)
	}
	opts := client.ListOptions{Limit: 100}
	dead := 0
	for {
		page, err := c.ListTasks(ctx, "emails", client.StateDead, opts)
		if err != nil {
			log.Fatal(err)
		}
		dead += len(page.Tasks)
		if page.NextCursor == "" {
			break
		}
		opts.Cursor = page.NextCursor
	}
	fmt.Println("dead letters:", dead)
	_, err = c.ListTasks(ctx, "nosuch", client.StateDead, client.ListOptions{})
	fmt.Println("not found:", client.IsNotFound(err))
	// Output:
	// dead letters: 0
	// not found: true
}

// Run a report every weekday at 09:00 Berlin time, and once now by hand.
func ExampleClient_PutSchedule() {
	ctx := context.Background()
	c, err := client.New(htqURL, client.WithToken(token))
	if err != nil {
		log.Fatal(err)
	}
	if _, _, err := c.PutQueue(ctx, "daily", client.QueueSettings{}); err != nil {
		log.Fatal(err)
	}
	sc, created, err := c.PutSchedule(ctx, "weekday-report", client.ScheduleRequest{
		Queue: "daily", Cron: "0 9 * * 1-5", TimeZone: "Europe/Berlin",
		Task: client.TaskRequest{URL: "https://shop.example/report", Method: "POST", Body: json.RawMessage(`{"kind":"daily"}`)},
	})
	if err != nil {
		log.Fatal(err)
	}
	next, _ := time.Parse(time.RFC3339, sc.NextRuns[0])
	fmt.Println(created, len(sc.NextRuns), next.Format("15:04"))
	run, err := c.TriggerSchedule(ctx, "weekday-report")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(run.Queue)
	// Output:
	// true 5 09:00
	// daily
}

// Read the dead letters of every queue whose last answer was a 500, then
// run them all again, a thousand at a time.
func ExampleClient_ListDead() {
	ctx := context.Background()
	c, err := client.New(htqURL, client.WithToken(token))
	if err != nil {
		log.Fatal(err)
	}
	filter := client.DeadFilter{Code: 500}
	opts := client.ListOptions{Limit: 1000}
	seen := 0
	for {
		page, err := c.ListDead(ctx, filter, opts)
		if err != nil {
			log.Fatal(err)
		}
		seen += len(page.Tasks)
		if page.NextCursor == "" {
			break
		}
		opts.Cursor = page.NextCursor
	}
	retried := 0
	for {
		r, err := c.RetryDead(ctx, filter, 1000)
		if err != nil {
			log.Fatal(err)
		}
		retried += r.Done
		if r.Remaining == 0 || r.Done == 0 {
			break
		}
	}
	fmt.Println("seen:", seen, "retried:", retried)
	// Output: seen: 0 retried: 0
}
