// Package redistest gives tests a Redis to talk to, in this order:
//
//  1. REDIS_ADDR, when set: a Redis someone runs for the tests;
//  2. a throwaway redis-server (from $PATH) on a free loopback port;
//  3. a container started with testcontainers-go, when a Docker engine answers;
//  4. the embedded miniredis store, with a loud warning that the run did not
//     use a real Redis.
//
// Setting FLASHSALE_TEST_REDIS=real forbids the last fallback: tests fail
// instead of quietly running without Redis. CI sets it.
// FLASHSALE_TEST_REDIS=embedded does the opposite: the run behaves as on a
// machine without Redis (the embedded store, and tests that need a
// redis-server of their own skip).
//
// A test skipped for want of something (a real Redis, a browser, a build
// without -race) is skipped through Skip or SkipUnlessReal, whose message
// carries a marker such as "SKIPPED(redis): "; a test that got the
// embedded store logs "EMBEDDED(redis): ", and the first test of a package
// logs "USING(redis): " and what Redis it got. scripts/gotest, the test
// runner, counts these and says in one line what a run did not test.
//
// All tests of a package share one Redis, so each test works on its own
// product ids (see Product). A package that uses it runs its tests through
// Main, which stops the throwaway server at the end.
//
// StartCluster gives a test a Redis Cluster of its own, built from the same
// redis-server: masters, replicas, and the moves a cluster test needs
// (reshard a slot, leave it mid-migration, fail over, kill a master). Slot
// computes a key's hash slot as Redis does. StartSentinels gives a test a
// primary, its replicas and the Redis Sentinels that watch them, and the
// failovers a Sentinel test needs.
package redistest
