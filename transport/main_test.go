package transport_test

import (
	"testing"

	"github.com/flashsale/flashsale/internal/testkit/redistest"
	"github.com/flashsale/flashsale/internal/testkit/saletest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// The shared test helpers, under the names these tests use.
const testTimeout = saletest.Timeout

var (
	testContext = saletest.Context
	newPool     = saletest.Pool
	newProduct  = saletest.Product
	rawDo       = saletest.Do
)
