package server_test

import (
	"testing"

	"github.com/flashsale/flashsale/internal/testkit/redistest"
	"github.com/flashsale/flashsale/internal/testkit/saletest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// The shared test helpers, under the names these tests use.
const testTimeout = saletest.Timeout

var (
	testContext          = saletest.Context
	newEngine            = saletest.Engine
	newPool              = saletest.Pool
	closedAddr           = saletest.ClosedAddr
	newProduct           = saletest.Product
	purchaseConcurrently = saletest.PurchaseConcurrently
	checkSoldOut         = saletest.CheckSoldOut
)
