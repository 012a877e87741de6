package loadgen

import (
	"testing"

	"github.com/flashsale/flashsale/internal/testkit/redistest"
)

// TestMain stops the Redis the tests shared once they are done.
func TestMain(m *testing.M) { redistest.Main(m) }
