package transport

import (
	"errors"
	"testing"

	"github.com/gomodule/redigo/redis"

	"github.com/flashsale/flashsale/engine"
)

// TestClassifyRefusals classifies the error replies of Redis 7, verbatim:
// a refusal proves nothing ran (engine.ErrRefused, never
// ErrOutcomeUnknown); an error raised by a script that ran stays as it is.
func TestClassifyRefusals(t *testing.T) {
	for _, tc := range []struct {
		reply   string
		refused bool
		cause   Cause
	}{
		{"ERR max number of clients reached", true, CauseMaxClients},
		{"LOADING Redis is loading the dataset in memory", true, CauseLoading},
		{"READONLY You can't write against a read only replica.", true, CauseReadOnly},
		{"READONLY You can't write against a read only replica. script: 1b9a7a8f, on @user_script:12.", true, CauseReadOnly},
		{"MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.", true, CauseMasterDown},
		{"OOM command not allowed when used memory > 'maxmemory'.", true, CauseOOM},
		{"OOM command not allowed when used memory > 'maxmemory'. script: 1b9a7a8f, on @user_script:30.", true, CauseOOM},
		{"MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.", true, CauseMisconf},
		{"BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.", true, CauseBusy},
		{"NOSCRIPT No matching script. Please use EVAL.", true, CauseNoScript},
		{"ERR Error running script (call to f_1b9a7a8f): @user_script:3: bad argument", false, 0},
		{"WRONGTYPE Operation against a key holding the wrong kind of value", false, 0},
		{"BUSYKEY Target key name already exists.", false, 0},
		{"BUSYGROUP Consumer Group name already exists", false, 0},
		{"ERR unknown command 'FOO'", false, 0},
		{"OOMKILLED not a refusal", false, 0},
	} {
		t.Run(tc.reply, func(t *testing.T) {
			err := classify(redis.Error(tc.reply))
			if errors.Is(err, engine.ErrOutcomeUnknown) {
				t.Fatalf("classify(%q) = %v: outcome unknown", tc.reply, err)
			}
			var r *Refusal
			if got := errors.As(err, &r); got != tc.refused {
				t.Fatalf("classify(%q) = %v: refusal %v, want %v", tc.reply, err, got, tc.refused)
			}
			if !tc.refused {
				if errors.Is(err, engine.ErrUnavailable) {
					t.Errorf("classify(%q) = %v: unavailable", tc.reply, err)
				}
				return
			}
			if r.Cause != tc.cause || !errors.Is(err, tc.cause.Err()) || !errors.Is(err, engine.ErrRefused) || !errors.Is(err, engine.ErrUnavailable) {
				t.Errorf("classify(%q) = %v (cause %v), want cause %v wrapping ErrRefused and ErrUnavailable", tc.reply, err, r.Cause, tc.cause)
			}
			if res, want := engine.Fail(err), wantCode(tc.cause); res.Code != want {
				t.Errorf("Fail(%v).Code = %s, want %s", err, res.Code, want)
			}
			if full := errors.Is(err, engine.ErrStoreFull); full != (tc.cause == CauseOOM) {
				t.Errorf("classify(%q) = %v: store full %v, want %v", tc.reply, err, full, tc.cause == CauseOOM)
			}
		})
	}
}

// wantCode is the code a purchase refused for cause c is answered:
// STORE_FULL for out of memory, UNAVAILABLE for the rest.
func wantCode(c Cause) string {
	if c == CauseOOM {
		return engine.CodeStoreFull
	}
	return engine.CodeUnavailable
}

// TestCauseLabels checks every cause has a label and a sentinel.
func TestCauseLabels(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range Causes() {
		if c.String() == "unknown" || c.Err() == nil || seen[c.String()] {
			t.Errorf("cause %d: label %q, err %v", c, c.String(), c.Err())
		}
		seen[c.String()] = true
	}
}
