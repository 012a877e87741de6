// Command gotest runs go test and says, in one last line, what the run did
// not test: how many Redis-backed tests skipped or ran on the embedded
// store instead of a real Redis, how many browser tests skipped, and how
// to run them. go test alone cannot say it: it hides the output of every
// package that passes, skips included.
//
//	go run ./scripts/gotest -race -count=1 ./...
//	go run ./scripts/gotest -strict -race -count=1 ./...   # CI
//
// Its arguments are go test's; it runs go test -json with them and prints
// what go test prints: an ok, FAIL or ? line per package and, for a
// failing package, the output of its failing tests (in go test -v's order;
// with -v, everything). Then comes the summary, for instance
//
//	tests: 37 Redis-backed tests skipped and 212 ran on the embedded store, not a real Redis: no redis-server on $PATH; install it (apt-get install redis-server / brew install redis) and run again
//	tests: nothing skipped for want of Redis or a browser; Redis 7.0.15 (redis-server)
//
// It recognises the markers that internal/testkit/redistest puts in a test's
// output (see redistest.Skip): a skip message "SKIPPED(need): why", a log
// line "EMBEDDED(redis): …" from a test on the embedded store, and
// "USING(redis): what" from the first test of a package. A test skipped
// with need "norace" (one the race detector would distort) is run again
// at the end without -race: go test -count=1 -run '^(Names)$' packages,
// with none of the other arguments.
//
// The race detector needs cgo, which go turns off when it finds no C
// compiler: on such a machine gotest drops -race, says so in its first
// line, and runs the rest as asked.
//
// The exit code is go test's (go run turns any failure into 1). Flags of
// its own, before go test's:
//
//	-strict  fail also when a test skipped for want of Redis or a browser,
//	         or ran on the embedded store, or -race had to be dropped
//	         (CI sets it)
//
// Its report is tested on the canned streams in testdata/gotest.
package main
