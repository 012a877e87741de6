package dashboard

import (
	"testing"

	"github.com/flashsale/flashsale/internal/testkit/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }
