// Command luasrc prints the Lua source of one of the engine's scripts, as
// the engine loads it (its libraries included), so that scripts/perf.sh
// can SCRIPT LOAD it and call it with redis-benchmark:
//
//	go run ./scripts/luasrc purchase | redis-cli -x SCRIPT LOAD
//
// With no argument it lists the scripts' names.
package main
