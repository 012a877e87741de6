// Package commands is the flashsale command line: one file per subcommand
// (serve, admin, bench, demo, buy, stock, ping, completion, version), each a
// urfave/cli command whose action returns an error, and ReorderArgs, which
// lets flags follow the arguments. Flags, environment variables, logging
// and output formats live here; purchase semantics and Redis keys live in
// engine, protocol bytes in wire, talking to a server in client, and
// generating load in internal/loadgen.
package commands
