package redistest_test

import (
	"errors"
	"testing"

	"github.com/htq/htq/internal/redistest"
)

// A server started on a port that another test's server took meanwhile must
// not be mistaken for its own: Answers tells the two apart by pid.
func TestAnswersTellsServersApart(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	c := s.Client(t)
	if err := redistest.Answers(t.Context(), c, s.Pid()); err != nil {
		t.Fatalf("own server: %v", err)
	}
	if err := redistest.Answers(t.Context(), c, s.Pid()+1); !errors.Is(err, redistest.ErrOtherServer) {
		t.Fatalf("another pid: err = %v, want ErrOtherServer", err)
	}
}
