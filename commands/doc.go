// Package commands is the flashsale command line: one file per subcommand
// (serve, admin, bench, demo), each a urfave/cli command whose action
// returns an error. Flags, environment variables, logging and output
// formats live here; purchase semantics and Redis keys live in engine, and
// protocol bytes in wire.
package commands
