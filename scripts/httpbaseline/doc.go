// Command httpbaseline is the HTTP ceiling for scripts/perf.sh: a bare
// net/http server whose handler reads the body and answers a fixed JSON
// object, doing nothing else. What flashsale's HTTP path costs above it is
// flashsale's own.
//
//	go run ./scripts/httpbaseline -listen 127.0.0.1:8097
package main
