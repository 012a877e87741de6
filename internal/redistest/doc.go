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
//
// All tests of a package share one Redis, so each test works on its own
// product ids (see Product). A package that uses it runs its tests through
// Main, which stops the throwaway server at the end.
//
// StartCluster gives a test a Redis Cluster of its own, built from the same
// redis-server: masters, replicas, and the moves a cluster test needs
// (reshard a slot, leave it mid-migration, fail over, kill a master). Slot
// computes a key's hash slot as Redis does.
package redistest
