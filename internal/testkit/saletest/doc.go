// Package saletest holds the helpers that the tests of several packages
// share: a context bounded for a test, a pool and an engine on the test
// Redis (see redistest), fresh products, the checks of a sold-out sale, and
// a log sink a test can read.
package saletest
