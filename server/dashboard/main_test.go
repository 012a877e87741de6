package dashboard

import (
	"testing"

	"github.com/flashsale/flashsale/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }
